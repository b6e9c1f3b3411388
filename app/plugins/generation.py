"""Sampling from a generation plugin with recorded seeds, and export of samples as study cases.

Each sample is made from its own seed (latent vector = ``torch.randn`` from a CPU generator
seeded with it), so a seed reproduces its image exactly on any machine; the seed travels with
the image everywhere. Exported cases carry the truth label ``synthetic`` in their JSON (for the
reader-study engine, which blinds readers to it) and in the NIfTI sidecar's provenance; the
pixels carry no visible mark, because a visual Turing test must not give the answer away.

torch is imported lazily: the gallery widget imports this module at start-up.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume

TRUTH_SYNTHETIC = "synthetic"

VolumeWriter = Callable[..., Path]  # (volume, path, extra_sidecar=dict) -> path written


@dataclass(frozen=True)
class GeneratedSample:
    """One generated image (rows, cols), in the manifest's output units, with its origin."""

    seed: int
    image: np.ndarray
    plugin_name: str
    plugin_version: str
    weights_sha256: str
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0)

    @property
    def case_id(self) -> str:
        return f"{self.plugin_name}-seed{self.seed}"

    def provenance(self) -> Provenance:
        return Provenance(
            plugin_name=self.plugin_name,
            plugin_version=self.plugin_version,
            task="generation",
            weights_sha256=self.weights_sha256,
            device="cpu",
            parameters={"latent": "torch.randn(latent_dim) from torch.Generator().manual_seed(seed)"},
            seed=self.seed,
            source_description="generated from noise (no source image)",
        )

    def as_volume(self) -> Volume:
        """A one-slice axial Volume: rows run anterior->posterior, columns right->left."""
        spacing_row, spacing_col = self.pixel_spacing_mm
        geometry = Geometry(np.zeros(3), np.array([spacing_col, spacing_row, 1.0]), np.eye(3))
        return Volume(
            voxels=np.ascontiguousarray(self.image[None].astype(np.float32)),
            geometry=geometry,
            modality="MR",
            name=self.case_id,
            provenance=self.provenance(),
        )


class SampleGenerator:
    """A loaded generation plugin: ``sample(seeds)`` gives one image per seed, on the CPU."""

    def __init__(self, plugin: str | Path) -> None:
        from app.plugins.errors import PluginError
        from app.plugins.loading import load_plugin
        from app.plugins.manifest import load_manifest

        self.manifest = load_manifest(plugin)
        if self.manifest.task != "generation":
            raise PluginError(
                f"{self.manifest.name} is a {self.manifest.task} plugin, not a generator from noise"
            )
        loaded = load_plugin(self.manifest)
        self._module = loaded.generator.module
        self.weights_sha256 = loaded.weights_sha256
        latent_dim = getattr(self._module, "latent_dim", None)
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise PluginError(
                f"{self.manifest.name}: the TorchScript generator must expose an int 'latent_dim'"
            )
        self.latent_dim = latent_dim
        spacing = self.manifest.spacing_mm or (1.0, 1.0)
        self.pixel_spacing_mm = (float(spacing[0]), float(spacing[1]))

    def latent(self, seed: int):
        import torch

        return torch.randn(self.latent_dim, generator=torch.Generator(device="cpu").manual_seed(int(seed)))

    def sample(self, seeds: Sequence[int], batch_size: int = 32) -> list[GeneratedSample]:
        import torch

        from app.plugins.normalization import FittedScaling, from_network

        low, high = self.manifest.normalization.get("network_range", (-1.0, 1.0))
        fitted = FittedScaling("none", float(low), float(high), float(low), float(high))
        samples = []
        seeds = [int(s) for s in seeds]
        for start in range(0, len(seeds), batch_size):
            chunk = seeds[start : start + batch_size]
            z = torch.stack([self.latent(seed) for seed in chunk])
            images = self._run(z, chunk)
            for seed, image in zip(chunk, images, strict=True):
                values = from_network(image, self.manifest.normalization, fitted)
                samples.append(
                    GeneratedSample(
                        seed,
                        values,
                        self.manifest.name,
                        self.manifest.version,
                        self.weights_sha256,
                        self.pixel_spacing_mm,
                    )
                )
        return samples

    def _run(self, z, seeds: Sequence[int]) -> np.ndarray:
        """The first channel of the module's output for noise ``z``, checked: (n, rows, cols), finite."""
        import torch

        from app.plugins.errors import PluginError, error_summary

        name = self.manifest.name
        try:
            with torch.inference_mode():
                output = self._module(z).float().cpu().numpy()
        except Exception as error:  # the researcher's module raised: say so in one line
            raise PluginError(
                f"{name}: the generator failed on noise of latent_dim {self.latent_dim}"
                f" (does its 'latent_dim' match the network?): {error_summary(error)}"
            ) from error
        if output.ndim != 4 or output.shape[0] != len(seeds):
            raise PluginError(f"{name}: noise {tuple(z.shape)} gave shape {output.shape}, not (n, C, H, W)")
        finite = np.isfinite(output).reshape(len(seeds), -1).all(axis=1)
        if not finite.all():
            bad = ", ".join(str(seed) for seed, ok in zip(seeds, finite, strict=True) if not ok)
            raise PluginError(f"{name}: the generator gave NaN or infinite values for seeds {bad}")
        return output[:, 0]


def png_bytes(image_unit: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """An 8-bit greyscale PNG of an image scaled to [0, 1], with optional tEXt metadata."""
    pixels = (np.clip(np.asarray(image_unit, np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    rows, cols = pixels.shape

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(rows))
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0))]
    for key, value in (text or {}).items():
        parts.append(chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", "replace")))
    parts += [chunk(b"IDAT", zlib.compress(raw, 9)), chunk(b"IEND", b"")]
    return b"".join(parts)


def export_cases(
    samples: Sequence[GeneratedSample],
    folder: str | Path,
    formats: Sequence[str] = ("nifti", "png"),
    write_nifti: VolumeWriter | None = None,
) -> list[Path]:
    """Write each sample as a reader-study case (NIfTI and/or PNG + JSON); returns the JSONs.

    Also writes ``cases.json`` listing every case in the folder with its truth label. NIfTI
    files are written by ``write_nifti`` (``app.io.nifti.save_nifti``, which the caller hands in).
    """
    unknown = set(formats) - {"nifti", "png"}
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; use 'nifti' and/or 'png'")
    if "nifti" in formats and write_nifti is None:
        # Only app.io writes files of a format: the entry point hands its writer in.
        raise ValueError("no NIfTI writer was given (app.io.nifti.save_nifti, from the entry point)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in samples:
        record = {
            "case_id": sample.case_id,
            "truth": TRUTH_SYNTHETIC,
            "seed": sample.seed,
            "plugin": sample.plugin_name,
            "plugin_version": sample.plugin_version,
            "weights_sha256": sample.weights_sha256,
            "pixel_spacing_mm": list(sample.pixel_spacing_mm),
            "files": {},
        }
        if "nifti" in formats:
            name = f"{sample.case_id}.nii.gz"
            write_nifti(
                sample.as_volume(),
                folder / name,
                extra_sidecar={"truth": TRUTH_SYNTHETIC, "seed": sample.seed},
            )
            record["files"]["nifti"] = name
        if "png" in formats:
            name = f"{sample.case_id}.png"
            metadata = {
                "Source": f"{sample.plugin_name} {sample.plugin_version} seed {sample.seed}",
                "Truth": TRUTH_SYNTHETIC,
            }
            (folder / name).write_bytes(png_bytes(sample.image, metadata))
            record["files"]["png"] = name
        record["provenance"] = sample.provenance().to_dict()
        json_path = folder / f"{sample.case_id}.case.json"
        json_path.write_text(json.dumps(record, indent=2))
        written.append(json_path)
    index_path = folder / "cases.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"cases": []}
    known = {case["case_id"] for case in index["cases"]}
    for path in written:
        record = json.loads(path.read_text())
        if record["case_id"] not in known:
            index["cases"].append({"case_id": record["case_id"], "truth": record["truth"], "json": path.name})
    index_path.write_text(json.dumps(index, indent=2))
    return written
