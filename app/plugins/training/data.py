"""The offline anatomy the shipped plugins learn from: two different heads, both T1, 1 mm.

* Colin27 ``ch2`` T1 (Debian package ``mricron-data``) — the TRAINING head: a whole head
  (scalp, skull, face, neck). Its brain mask is the non-zero part of the brain-extracted ``ch2bet``.
* MNI152 2009a T1 (bundled inside the ``nilearn`` package) — the HELD-OUT head, a different
  brain (an average of 152 subjects) that is already skull-stripped. Its brain mask is grey +
  white matter probability (also bundled) above 0.5. The demo study is built from this volume,
  so running a shipped plugin on the demo is a run on anatomy it never saw.

Volumes are read through ``app.io.nifti`` (the only place that knows NIfTI) and cached as one
``.npz`` so a training machine without nibabel (the GPU box) can train from the cache alone.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = REPO_ROOT / "build" / "training_data" / "templates.npz"
COLIN_DIR = Path("/usr/share/mricron/templates")
MNI_T1_NAME = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
MNI_GM_NAME = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
MNI_WM_NAME = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"


class TemplateDataMissing(RuntimeError):
    """A template file is not installed; the message says which package provides it."""


@dataclass(frozen=True)
class Head:
    """One T1 head: voxels[k, j, i] (float32, scanner units), brain mask, and its direction."""

    name: str
    t1: np.ndarray
    brain_mask: np.ndarray
    direction: np.ndarray
    spacing_mm: tuple[float, float, float]


def nilearn_data_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")  # locate the package without importing it (slow)
    if spec is None or not spec.submodule_search_locations:
        raise TemplateDataMissing("the MNI152 template ships with the 'nilearn' package; pip install nilearn")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def template_paths() -> dict[str, Path]:
    data = nilearn_data_dir()
    paths = {
        "mni_t1": data / MNI_T1_NAME,
        "mni_gm": data / MNI_GM_NAME,
        "mni_wm": data / MNI_WM_NAME,
        "colin_t1": COLIN_DIR / "ch2.nii.gz",
        "colin_bet": COLIN_DIR / "ch2bet.nii.gz",
    }
    for key, path in paths.items():
        if not path.is_file():
            origin = "apt-get install mricron-data" if key.startswith("colin") else "pip install nilearn"
            raise TemplateDataMissing(f"{path} not found ({origin})")
    return paths


def _read(path: Path):
    # The offline training tools read the template heads' NIfTI files through app.io: the one
    # declared exception to "only app.io touches file-format libraries" (pyproject.toml).
    from app.io.nifti import load_nifti

    return load_nifti(path)


def heads_from_files() -> tuple[Head, Head]:
    """(training Colin27, held-out MNI152) read from the installed packages."""
    paths = template_paths()
    colin = _read(paths["colin_t1"])
    colin_mask = np.asarray(_read(paths["colin_bet"]).voxels) > 0
    return (
        _head("Colin27-ch2", colin, colin_mask),
        _mni_head(paths["mni_t1"], paths["mni_gm"], paths["mni_wm"]),
    )


def heldout_head_from_files() -> Head:
    """Only the held-out MNI152 head (what the shipped-plugin regression tests need)."""
    data = nilearn_data_dir()
    return _mni_head(data / MNI_T1_NAME, data / MNI_GM_NAME, data / MNI_WM_NAME)


def _mni_head(t1_path: Path, gm_path: Path, wm_path: Path) -> Head:
    """The MNI152 T1 with its brain mask from the grey and white matter probability maps."""
    gm = np.asarray(_read(gm_path).voxels, dtype=np.float32)
    wm = np.asarray(_read(wm_path).voxels, dtype=np.float32)
    return _head("MNI152-2009a", _read(t1_path), _mni_brain_mask(gm, wm))


def _head(name: str, volume, brain_mask: np.ndarray) -> Head:
    geometry = volume.geometry
    return Head(
        name,
        np.asarray(volume.voxels, np.float32),
        brain_mask,
        geometry.direction,
        tuple(geometry.spacing_mm),
    )


def _mni_brain_mask(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    grey, white = _as_probabilities(gm, wm)
    return grey + white > 0.5


def _as_probabilities(gm: np.ndarray, wm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nilearn stores the MNI152 probability maps as 0-255: divided back to 0-1 (a threshold of
    0.5 on the stored values would take nearly every voxel of the brain as both tissues)."""
    scale = max(float(gm.max()), float(wm.max()), 1.0)
    scale = scale if scale > 1.5 else 1.0
    return gm / scale, wm / scale


def mni_tissue_probabilities() -> tuple[np.ndarray, np.ndarray]:
    """nilearn's grey and white matter probability maps of the held-out MNI152 head, 0-1,
    voxels[k, j, i] on the T1's grid (the reference the tissue segmentation is evaluated on)."""
    data = nilearn_data_dir()
    grey, white = (np.asarray(_read(data / name).voxels, np.float32) for name in (MNI_GM_NAME, MNI_WM_NAME))
    return _as_probabilities(grey, white)


def heldout_t1_volume():
    """The held-out MNI152 T1 as the app reads it (a Volume with its geometry)."""
    return _read(nilearn_data_dir() / MNI_T1_NAME)


def write_cache(path: Path = DEFAULT_CACHE) -> Path:
    train, heldout = heads_from_files()
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for role, head in (("train", train), ("heldout", heldout)):
        arrays[f"{role}_t1"] = head.t1.astype(np.float32)
        arrays[f"{role}_mask"] = head.brain_mask.astype(np.uint8)
        arrays[f"{role}_direction"] = np.asarray(head.direction, np.float64)
        arrays[f"{role}_spacing_mm"] = np.asarray(head.spacing_mm, np.float64)
        arrays[f"{role}_name"] = np.asarray(head.name)
    np.savez_compressed(path, **arrays)
    return path


def load_heads(cache: Path | None = None) -> tuple[Head, Head]:
    """(train, held-out) heads from the cache when present, else from the installed files."""
    cache = Path(cache) if cache else DEFAULT_CACHE
    if not cache.is_file():
        return heads_from_files()
    with np.load(cache) as stored:
        heads = tuple(
            Head(
                str(stored[f"{role}_name"]),
                stored[f"{role}_t1"],
                stored[f"{role}_mask"].astype(bool),
                stored[f"{role}_direction"],
                tuple(float(v) for v in stored[f"{role}_spacing_mm"]),
            )
            for role in ("train", "heldout")
        )
    return heads  # type: ignore[return-value]


def robust_max(voxels: np.ndarray, percentile: float = 99.5) -> float:
    """The intensity the shipped plugins map to 1 (the manifests' percentile normalisation)."""
    return float(np.percentile(voxels, percentile))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cache the MNI152 and Colin27 T1 heads for training.")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    path = write_cache(args.cache)
    train, heldout = load_heads(path)
    for head in (train, heldout):
        print(
            f"{head.name}: shape {head.t1.shape}, spacing {head.spacing_mm} mm, brain {int(head.brain_mask.sum())} voxels"
        )
    print(f"cache written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
