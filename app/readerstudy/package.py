"""Blinding: turn a study definition into a reading package that readers open.

Layout written by ``create_study(definition, out_dir, ...)``::

    out_dir/truth.json            coordinator only: opaque ids -> source paths, truth, modality,
                                  finding (the only place the truth is written)
    out_dir/answers.db            default SQLite database (WAL) unless a URL is given: the
                                  package and the readers' answers, no truth
    out_dir/reading/study.json    what the reading session opens: questions, options, items
    out_dir/reading/images/<opaque id>.nii.gz

What is normalised or stripped from every image a reader sees, so nothing but the pixels can
tell synthetic from real: file name and path (opaque random ids), series description, UIDs and
every header field (only voxels and geometry are kept), provenance and its sidecar, the plugin
name, the data type (all float32), and optionally the voxel spacing (``common_spacing_mm``) and
the value range (``intensity_normalisation: percentile``: each case's 1st-99th percentiles mapped
to a common range and quantised alike, so offsets, scale and quantisation say nothing).
The item list in ``study.json`` is sorted by opaque id, so its order carries no truth; modality
names (which may be plugin names) stay in the truth file.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.resample import resample_onto
from app.core.volume import Geometry, Volume
from app.io.atomic import atomic_folder
from app.readerstudy.definition import BLINDING_ONLY_OPTIONS, StudyDefinition, StudyOptions
from app.readerstudy.storage import StudyStore
from app.readerstudy.truth import TRUTH_FILE, write_truth

PACKAGE_FILE = "study.json"
READING_DIR = "reading"
DEFAULT_DATABASE = "answers.db"
INTENSITY_LEVELS = 4096  # 12 bits, as CT and most MR series store

LoadVolume = Callable[[Path], Volume]
SaveVolume = Callable[[Volume, Path], object]


@dataclass
class CreatedStudy:
    study_id: str
    reading_dir: Path
    truth_path: Path
    database_url: str
    warnings: list[str] = field(default_factory=list)


def opaque_id(prefix: str) -> str:
    """A random identifier that says nothing about the case (not derived from names or order)."""
    return f"{prefix}{secrets.token_hex(4).upper()}"


def pair_side_swapped(study_seed: int, blinding_key: str, case_id: str) -> bool:
    """Whether a 2AFC pair's images are stored partner first: one bit per pair drawn from the study
    seed and the coordinator's blinding key, so ``image_ids`` (in study.json, the database and every
    reader's order record) never follows the definition's ``path`` / ``paired_path`` order."""
    digest = hashlib.sha256(f"{study_seed}:{blinding_key}:{case_id}".encode()).digest()
    return bool(digest[0] & 1)


def normalise_intensity(
    voxels: np.ndarray,
    percentiles: tuple[float, float] = (1.0, 99.0),
    value_range: tuple[float, float] = (0.0, 4095.0),
    levels: int = INTENSITY_LEVELS,
) -> np.ndarray:
    """Map the case's own [low, high] percentiles to ``value_range``, clip, and quantise to
    ``levels`` evenly spaced values (whole numbers for the default 0-4095).

    Every case then spans the same range with the same quantisation, whatever its source's
    offset, scale, units or data type (integers for acquired, continuous values for generated
    images). Non-finite voxels become the low end. float32 out."""
    values = np.asarray(voxels, dtype=np.float64)
    finite = np.isfinite(values)
    low_out, high_out = float(value_range[0]), float(value_range[1])
    out = np.full(values.shape, low_out, dtype=np.float64)
    if finite.any():
        low, high = np.percentile(values[finite], [float(percentiles[0]), float(percentiles[1])])
        if high > low:
            out[finite] = (values[finite] - low) * ((high_out - low_out) / (high - low)) + low_out
        np.clip(out, low_out, high_out, out=out)
        step = (high_out - low_out) / (levels - 1)
        out = np.round((out - low_out) / step) * step + low_out
    return out.astype(np.float32)


def blinded_volume(
    volume: Volume, image_id: str, common_spacing_mm: float | None = None, options: StudyOptions | None = None
) -> Volume:
    """The pixels and geometry only, as float32, named by the opaque id, no provenance or metadata
    but the flag every package image carries (``blinded_study_image``: may be synthetic); resampled to ``common_spacing_mm`` and intensity-normalised as ``options`` say."""
    if common_spacing_mm is None and options is not None:
        common_spacing_mm = options.common_spacing_mm
    if common_spacing_mm:
        low, high = volume.bounds_lps_mm()
        spacing = np.full(3, float(common_spacing_mm))
        extent = np.abs(volume.geometry.direction.T @ (high - low))
        size_ijk = np.floor(extent / spacing + 1e-6).astype(int) + 1  # stays inside the source
        # Keep the direction; choose the grid that covers the same extent at the new spacing.
        origin = volume.geometry.origin_lps_mm
        geometry = Geometry(origin, spacing, volume.geometry.direction)
        volume = resample_onto(
            volume, geometry, (int(size_ijk[2]), int(size_ijk[1]), int(size_ijk[0])), fill_value=0.0
        )
    if options is not None and options.intensity_normalisation == "percentile":
        voxels = normalise_intensity(volume.voxels, options.intensity_percentiles, options.intensity_range)
    else:
        voxels = np.asarray(volume.voxels, dtype=np.float32).copy()
    geometry = volume.geometry
    # The one mark every package image carries alike: outside the study it may be synthetic.
    metadata = {"blinded_study_image": True}
    return Volume(
        voxels=voxels, geometry=geometry, modality="", name=image_id, provenance=None, metadata=metadata
    )


def _leak_warnings(described: list[tuple[str, Volume]], normalised: bool = False) -> list[str]:
    """Differences between real and synthetic sources that blinding does not remove by itself."""
    warnings = []
    by_truth: dict[str, dict[str, set]] = {"real": {}, "synthetic": {}}
    for truth, volume in described:
        bucket = by_truth[truth]
        bucket.setdefault("spacing", set()).add(tuple(np.round(volume.geometry.spacing_mm, 3)))
        bucket.setdefault("shape", set()).add(volume.shape_kji)
        sample = np.asarray(volume.voxels).ravel()[:: max(1, volume.voxels.size // 20000)]
        sample = sample[np.isfinite(sample)]
        bucket.setdefault("value quantisation (whole numbers or not)", set()).add(
            bool(np.all(sample == np.round(sample)))
        )
    hints = {
        "spacing": " (set options.common_spacing_mm)",
        "value quantisation (whole numbers or not)": " (set options.intensity_normalisation: percentile)",
    }
    for key in ("spacing", "shape", "value quantisation (whole numbers or not)"):
        if normalised and key.startswith("value"):
            continue  # normalisation quantises every case alike
        real, synthetic = by_truth["real"].get(key, set()), by_truth["synthetic"].get(key, set())
        if real and synthetic and real.isdisjoint(synthetic):
            warnings.append(f"every real case differs from every synthetic one in {key}{hints.get(key, '')}")
    return warnings


def _write_images(
    jobs: list,
    definition: StudyDefinition,
    images_dir: Path,
    load_volume: LoadVolume,
    save_volume: SaveVolume,
) -> list[tuple[str, Volume]]:
    """Load and write every image, in a random order: file times and inode numbers follow the
    writing order and readers can list them, so case, truth or pair order must not show there.
    (``images_dir`` is inside the partial reading folder: a failure leaves no orphans.)"""
    jobs = list(jobs)
    secrets.SystemRandom().shuffle(jobs)
    described = []
    for case, path, truth, image_id in jobs:
        try:
            volume = load_volume(definition.resolve(path))
        except Exception as error:  # a loader may raise anything: name the case, not a traceback
            raise ValueError(f"case {case.id}: cannot load {path}: {error}") from None
        described.append((truth, volume))
        save_volume(
            blinded_volume(volume, image_id, options=definition.options), images_dir / f"{image_id}.nii.gz"
        )
    return described


def create_study(
    definition: StudyDefinition,
    out_dir: str | Path,
    load_volume: LoadVolume,
    save_volume: SaveVolume,
    database: str | Path | None = None,
    replace: bool = False,
) -> CreatedStudy:
    """Write the blinded reading package and truth file, and register the study in the database.

    The reading folder is filled beside its place and renamed when the truth file is written and
    the study registered (``app.io.atomic``): a failed or killed run leaves no half package.
    ``replace`` lets it replace an earlier package and truth file (the caller's ``--force``).
    """
    definition.validate()
    out_dir = Path(out_dir)
    reading_dir = out_dir / READING_DIR
    earlier = [reading_dir, out_dir / TRUTH_FILE] + ([out_dir / DEFAULT_DATABASE] if database is None else [])
    if not replace and any(path.exists() for path in earlier):
        raise FileExistsError(
            f"{out_dir} already holds a study (reading package, truth file or answers database)"
        )
    with atomic_folder(reading_dir, replace=replace) as partial:
        return _create_study(definition, out_dir, partial, load_volume, save_volume, database)


def _create_study(
    definition: StudyDefinition,
    out_dir: Path,
    partial_reading_dir: Path,
    load_volume: LoadVolume,
    save_volume: SaveVolume,
    database: str | Path | None,
) -> CreatedStudy:
    reading_dir = out_dir / READING_DIR
    images_dir = partial_reading_dir / "images"
    images_dir.mkdir()
    study_id = opaque_id("S")
    # Coordinator-only: with the (public) study seed it decides each pair's sides, so readers,
    # who see the seed, cannot recompute them.
    blinding_key = secrets.token_hex(16)
    items, truth_items, jobs = [], {}, []
    for case in definition.cases:
        item_id = opaque_id("K")
        sources = [(case.path, case.truth)]
        if case.paired_path:
            other = "real" if case.truth == "synthetic" else "synthetic"
            sources.append((case.paired_path, other))
        if len(sources) == 2 and pair_side_swapped(definition.seed, blinding_key, case.id):
            sources.reverse()
        image_ids = [opaque_id("I") for _ in sources]
        jobs += [
            (case, path, truth, image_id) for (path, truth), image_id in zip(sources, image_ids, strict=True)
        ]
        synthetic_image = next(
            (i for (_, t), i in zip(sources, image_ids, strict=True) if t == "synthetic"), None
        )
        items.append({"item_id": item_id, "image_ids": image_ids, "practice": case.practice})
        truth_items[item_id] = {
            "case": case.id,
            "sources": [str(definition.resolve(p)) for p, _ in sources],
            "truth": case.truth,
            "synthetic_image_id": synthetic_image if case.paired_path else None,
            "modality": case.modality,
            "mrmc_case": case.mrmc_case or case.id,
            "practice": case.practice,
            "finding_lps_mm": None
            if case.finding_lps_mm is None
            else [float(x) for x in case.finding_lps_mm],
            "tolerance_mm": float(definition.options.localisation_tolerance_mm),
        }
    described = _write_images(jobs, definition, images_dir, load_volume, save_volume)
    options = {k: v for k, v in definition.to_dict()["options"].items() if k not in BLINDING_ONLY_OPTIONS}
    package = {
        "format": "synthview-reading-package/1",
        "study_id": study_id,
        "seed": definition.seed,
        "questions": definition.to_dict()["questions"],
        "options": options,
        "items": sorted(items, key=lambda item: item["item_id"]),
        "database": f"../{DEFAULT_DATABASE}" if database is None else None,
    }
    (partial_reading_dir / PACKAGE_FILE).write_text(json.dumps(package, indent=2), encoding="utf-8")
    truth_path = write_truth(
        out_dir / TRUTH_FILE, study_id, definition.name, truth_items, {"blinding_key": blinding_key}
    )
    store = StudyStore(database if database is not None else out_dir / DEFAULT_DATABASE)
    try:
        store.register_study(study_id, package)
        url = store.url
    finally:
        store.close()
    normalised = definition.options.intensity_normalisation != "none"
    return CreatedStudy(study_id, reading_dir, truth_path, url, _leak_warnings(described, normalised))


def load_package(reading_dir: str | Path) -> tuple[dict, Path]:
    """The reading package (``study.json``) of a reading folder or file, and its folder."""
    path = Path(reading_dir)
    if path.is_dir():
        if not (path / PACKAGE_FILE).exists() and (path / "reading" / PACKAGE_FILE).exists():
            # The study folder `study create` wrote, which also holds the truth: readers get its
            # reading/ subfolder.
            raise ValueError(f"{path} is the coordinator's study folder; readers open {path / 'reading'}")
        path = path / PACKAGE_FILE
    try:
        package = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"not a reading package: {path} ({error})") from None
    if package.get("format") != "synthview-reading-package/1":
        raise ValueError(f"not a reading package: {path}")
    return package, path.parent
