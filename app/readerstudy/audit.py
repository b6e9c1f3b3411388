"""Blinding audit: can anything but the picture tell a real image of a reading package from a
synthetic one?

For every image the package holds, file-level features (size, write order, position in the
package, every NIfTI header field, dtype, shape, spacing) and simple image statistics (number of
distinct values, minimum, maximum, range, share of whole numbers, noise floor) are measured, and
each feature's separation of real from synthetic is given as an AUC (synthetic = positive; a
category is scored by its share of synthetic images, so its AUC is 1 exactly when the real and
synthetic images never share a value). AUC 0 or 1 is a perfect separation: an adversary with
only the package would name every image. ``study create`` refuses to ship such a package when
there are enough cases for a perfect split to mean something (see ``chance_of_perfect_split``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.volume import Volume

LoadVolume = Callable[[Path], Volume]
HeaderFields = Callable[[Path], dict[str, str]]
HEADER_BYTES = 352  # a NIfTI-1 header and its extension flag; compared whole, whatever the format

# A perfect split counts as a leak only when chance alone would give one this rarely.
LEAK_CHANCE = 0.001
HINTS = {
    "spacing_mm": "set common_spacing_mm (--common-spacing-mm)",
    "shape": "set common_shape (--common-shape)",
    "levels": "set intensity_normalisation: percentile (--intensity-normalisation percentile)",
    "whole-number share (quantisation)": "set intensity_normalisation: percentile",
    "maximum": "set intensity_normalisation: percentile",
    "minimum": "set intensity_normalisation: percentile",
    "range": "set intensity_normalisation: percentile",
    "dtype": "set intensity_normalisation: percentile",
    "file size": "give every image one grid (common_spacing_mm and common_shape)",
    "header bytes": "give every image one grid (common_spacing_mm and common_shape)",
}


@dataclass(frozen=True)
class AuditImage:
    path: Path
    truth: str  # "real" or "synthetic"
    package_position: int  # index of its item in study.json


@dataclass(frozen=True)
class FeatureSeparation:
    feature: str
    kind: str  # "number" or "category"
    auc: float
    real: str  # summary of the real images' values
    synthetic: str

    @property
    def perfect(self) -> bool:
        return self.auc in (0.0, 1.0)


@dataclass
class AuditReport:
    real: int
    synthetic: int
    features: list[FeatureSeparation] = field(default_factory=list)

    @property
    def chance_of_perfect_split(self) -> float:
        """Probability that one feature with no real difference splits the classes perfectly."""
        if min(self.real, self.synthetic) == 0:
            return 1.0
        return min(1.0, 2.0 / math.comb(self.real + self.synthetic, self.synthetic))

    @property
    def enough_cases(self) -> bool:
        return self.chance_of_perfect_split < LEAK_CHANCE

    def perfect(self) -> list[FeatureSeparation]:
        return [f for f in self.features if f.perfect]

    def leaks(self) -> list[FeatureSeparation]:
        """Perfect separations, when there are enough cases for one to be a leak, not chance."""
        return self.perfect() if self.enough_cases else []

    def table(self) -> str:
        width = max((len(f.feature) for f in self.features), default=10)
        lines = [
            f"blinding audit: {self.real} real, {self.synthetic} synthetic images "
            f"(AUC of real vs synthetic; 0.5 = no separation, 0 or 1 = perfect)",
            f"{'feature':<{width}}  {'AUC':>5}  real | synthetic",
        ]
        for entry in self.features:
            flag = "  <- separates perfectly" if entry.perfect else ""
            lines.append(
                f"{entry.feature:<{width}}  {entry.auc:5.3f}  {entry.real} | {entry.synthetic}{flag}"
            )
        if self.perfect() and not self.enough_cases:
            lines.append(
                f"(too few cases to call a perfect split a leak: chance alone gives one with "
                f"probability {self.chance_of_perfect_split:.3g} per feature)"
            )
        return "\n".join(lines)

    def leak_message(self) -> str:
        named = ", ".join(
            f"{f.feature} ({HINTS[f.feature]})" if f.feature in HINTS else f.feature for f in self.leaks()
        )
        return f"blinding leak: every real image differs from every synthetic one in {named}"


def _noise_floor(voxels: np.ndarray) -> float:
    """Robust noise estimate: median absolute difference of neighbouring voxels along i, scaled
    to a standard deviation."""
    if voxels.shape[-1] < 2:
        return 0.0
    difference = np.abs(np.diff(voxels, axis=-1)).ravel()
    difference = difference[np.isfinite(difference)]
    return float(np.median(difference) / (0.6745 * math.sqrt(2))) if difference.size else 0.0


def image_features(
    image: AuditImage, write_rank: int, load_volume: LoadVolume, header_fields: HeaderFields | None
) -> dict[str, float | str]:
    """Every feature of one package image. The file's leading bytes are compared whole; with
    ``header_fields`` (the file format's reader, from app.io) each header field also on its own."""
    volume = load_volume(image.path)
    voxels = np.asarray(volume.voxels)
    finite = voxels[np.isfinite(voxels)].astype(np.float64)
    features: dict[str, float | str] = {
        "file size": float(image.path.stat().st_size),
        "file write order": float(write_rank),
        "position in package": float(image.package_position),
        "dtype": str(voxels.dtype),
        "shape": "x".join(str(n) for n in voxels.shape),
        "spacing_mm": " ".join(f"{x:.4g}" for x in volume.geometry.spacing_mm),
        "levels": float(np.unique(finite).size),
        "minimum": float(finite.min()) if finite.size else 0.0,
        "maximum": float(finite.max()) if finite.size else 0.0,
        "range": float(np.ptp(finite)) if finite.size else 0.0,
        "whole-number share (quantisation)": float(np.mean(finite == np.round(finite)))
        if finite.size
        else 1.0,
        "noise floor": _noise_floor(voxels.astype(np.float64)),
    }
    with image.path.open("rb") as handle:
        features["header bytes"] = handle.read(HEADER_BYTES).hex()
    for name, value in (header_fields(image.path) if header_fields else {}).items():
        features[f"header.{name}"] = value
    return features


def _auc(scores: list[float], synthetic: list[bool]) -> float:
    values = np.asarray(scores, dtype=float)
    positive, negative = values[np.asarray(synthetic)], values[~np.asarray(synthetic)]
    difference = positive[:, None] - negative[None, :]
    return float(((difference > 0) + 0.5 * (difference == 0)).mean())


def _summary(values: list) -> str:
    if all(isinstance(v, float) for v in values):
        return f"{min(values):.4g}-{max(values):.4g}" if values else "-"
    distinct = sorted({str(v) for v in values})
    text = ", ".join(distinct[:3]) + (f" (+{len(distinct) - 3})" if len(distinct) > 3 else "")
    return text if len(text) <= 40 else text[:37] + "..."


def separation(name: str, values: list, synthetic: list[bool]) -> FeatureSeparation:
    real_values = [v for v, s in zip(values, synthetic, strict=True) if not s]
    synthetic_values = [v for v, s in zip(values, synthetic, strict=True) if s]
    if all(isinstance(v, float) for v in values):
        return FeatureSeparation(
            name, "number", _auc(values, synthetic), _summary(real_values), _summary(synthetic_values)
        )
    # A category scores its share of synthetic images: AUC 1 exactly when no value is shared.
    share = {}
    for value in {str(v) for v in values}:
        members = [s for v, s in zip(values, synthetic, strict=True) if str(v) == value]
        share[value] = sum(members) / len(members)
    scores = [share[str(v)] for v in values]
    return FeatureSeparation(
        name, "category", _auc(scores, synthetic), _summary(real_values), _summary(synthetic_values)
    )


def audit_images(
    images: list[AuditImage], load_volume: LoadVolume, header_fields: HeaderFields | None = None
) -> AuditReport:
    """Measure every feature of every image and how well each separates real from synthetic."""
    by_write = sorted(images, key=lambda i: (i.path.stat().st_mtime_ns, os.stat(i.path).st_ino))
    rank = {image.path: index for index, image in enumerate(by_write)}
    rows = [image_features(image, rank[image.path], load_volume, header_fields) for image in images]
    synthetic = [image.truth == "synthetic" for image in images]
    report = AuditReport(real=synthetic.count(False), synthetic=synthetic.count(True))
    if not report.real or not report.synthetic:
        return report
    names = list(dict.fromkeys(name for row in rows for name in row))
    for name in names:
        values = [row.get(name, "") for row in rows]
        report.features.append(separation(name, values, synthetic))
    return report


def audit_package(
    study_dir: str | Path,
    load_volume: LoadVolume,
    header_fields: HeaderFields | None = None,
    truth_path: str | Path | None = None,
) -> AuditReport:
    """The audit of a created study: its ``reading/`` package joined with the truth file."""
    from app.readerstudy.package import load_package
    from app.readerstudy.truth import find_truth_file, load_truth

    study_dir = Path(study_dir)
    reading_dir = study_dir / "reading" if (study_dir / "reading").is_dir() else study_dir
    package, reading_dir = load_package(reading_dir)
    truth = load_truth(truth_path or find_truth_file(study_dir))
    suffix = package.get("image_suffix", ".nii.gz")
    images = []
    for position, item in enumerate(package["items"]):
        entry = truth.items.get(item["item_id"])
        if entry is None:
            raise ValueError(f"item {item['item_id']} is not in the truth file: another study's?")
        for image_id in item["image_ids"]:
            if entry.synthetic_image_id:
                label = "synthetic" if image_id == entry.synthetic_image_id else "real"
            else:
                label = "synthetic" if entry.truth == 1 else "real"
            images.append(AuditImage(reading_dir / "images" / f"{image_id}{suffix}", label, position))
    return audit_images(images, load_volume, header_fields)
