"""Out-of-distribution check: does an input look like what the generator was trained on?

The training domain is a plain dict (what ``PluginManifest.declared_training_domain()`` returns,
or a manifest's ``training_domain`` block): ``modalities``, ``contrasts``, ``spacing_mm`` or
``spacing_mm_min``/``spacing_mm_max`` (i, j, k), ``intensity_range`` [low, high],
``intensity_mean`` / ``intensity_std``. Missing keys are simply not checked. Warnings are
sentences a radiologist can act on, shown before the generator runs.

No DICOM attribute states an MR image's contrast: it is read from the words of its series
description (``mr_contrast``), as a reader does; a description that names none, or several that
disagree, leaves the contrast unknown and unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from app.core.volume import Volume

SPACING_TOLERANCE = 0.25  # relative difference from a declared spacing that still counts as in-domain
MEAN_TOLERANCE_SD = 2.0  # input mean further than this many training SDs from the training mean
RANGE_OUTSIDE_FRACTION = 0.05  # fraction of voxels outside the declared intensity range


@dataclass
class DomainCheck:
    """The warnings (empty when in domain) and the input statistics they were based on."""

    warnings: list[str] = field(default_factory=list)
    statistics: dict = field(default_factory=dict)

    @property
    def in_domain(self) -> bool:
        return not self.warnings


def _as_domain(domain) -> dict:
    if isinstance(domain, dict):
        return domain
    if hasattr(domain, "declared_training_domain"):
        return dict(domain.declared_training_domain())
    raise TypeError("domain must be a dict or have declared_training_domain()")


def intensity_statistics(voxels: np.ndarray, max_samples: int = 2_000_000) -> dict:
    """Mean, SD and 1/99 percentiles of the finite voxels (from a strided sample when large)."""
    flat = np.asarray(voxels).reshape(-1)
    flat = flat[:: max(1, flat.size // max_samples)].astype(np.float64)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "p1": float("nan"), "p99": float("nan")}
    p1, p99 = np.percentile(flat, [1, 99])
    return {
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "p1": float(p1),
        "p99": float(p99),
        "values": flat,
    }


# Words of an MR series description (whole words, case ignored) and the contrast they name.
CONTRAST_WORDS = {
    "T1": "T1", "T1W": "T1", "MPRAGE": "T1", "SPGR": "T1", "BRAVO": "T1",
    "T2": "T2", "T2W": "T2",
    "FLAIR": "FLAIR",
    "PD": "PD", "PDW": "PD",
    "DWI": "DWI", "DTI": "DWI", "ADC": "DWI",
}  # fmt: skip


def mr_contrast(volume: Volume) -> str:
    """'T1', 'T2', 'FLAIR', 'PD' or 'DWI' as the series description of an MR volume names it, or
    '' (unknown): not MR, no description, none of these words, or words that disagree. 'T2 FLAIR'
    is FLAIR (a T2-weighted FLAIR); 'MP-RAGE' is T1."""
    if volume.modality.upper() != "MR":
        return ""
    description = str(volume.metadata.get("SeriesDescription", "")).upper().replace("MP-RAGE", "MPRAGE")
    named = {CONTRAST_WORDS[word] for word in re.split(r"[^A-Z0-9]+", description) if word in CONTRAST_WORDS}
    if named == {"T2", "FLAIR"}:
        return "FLAIR"
    return named.pop() if len(named) == 1 else ""


SHARP_AXIS_RATIO = 0.5  # weakest axis's edge energy / strongest: above it, no axis is blurred


def axis_sharpness(voxels: np.ndarray) -> np.ndarray:
    """Mean squared neighbour difference along k, j, i over the brighter half of the image (a
    thick-slice volume interpolated to fine spacing has little along the slice axis)."""
    values = np.nan_to_num(np.asarray(voxels, dtype=np.float32), nan=0.0)
    step = max(1, int(round((values.size / 4_000_000) ** (1 / 3))))
    values = values[::step, ::step, ::step] if step > 1 else values
    bright = values > np.percentile(values, 50)
    energies = []
    for axis in range(3):
        if values.shape[axis] < 2:
            energies.append(0.0)
            continue
        diff = np.diff(values, axis=axis) ** 2
        both = np.delete(bright, 0, axis=axis) & np.delete(bright, -1, axis=axis)
        energies.append(float(diff[both].mean()) if both.any() else 0.0)
    return np.asarray(energies)


def _already_fine_warning(volume: Volume, target_mm: float) -> str:
    """A super-resolution plugin given an input that is already at (or finer than) its target
    spacing and sharp along every axis: there is no detail to restore, only an image to rewrite."""
    spacing = np.asarray(volume.geometry.spacing_mm, dtype=float)
    if float(spacing.max()) > target_mm * (1 + SPACING_TOLERANCE):
        return ""
    energies = axis_sharpness(volume.voxels)
    ratio = float(energies.min() / energies.max()) if energies.max() > 0 else 1.0
    if ratio < SHARP_AXIS_RATIO:
        return ""  # thick slices interpolated to the fine grid: what the plugin is for
    return (
        f"spacing {_mm(spacing)} mm is already at or finer than this super-resolution plugin's"
        f" {target_mm:g} mm target and the image is sharp along every axis (weakest/strongest edge"
        f" energy {ratio:.2f}): there is no through-plane detail to restore; the plugin would"
        " rewrite a sharp image"
    )


def check_domain(volume: Volume, domain) -> DomainCheck:
    """Compare ``volume`` with a training domain; see the module docstring for the keys."""
    domain = _as_domain(domain)
    check = DomainCheck()
    stats = intensity_statistics(volume.voxels)
    values = stats.pop("values", np.empty(0))
    check.statistics = {
        **stats,
        "modality": volume.modality,
        "spacing_mm": [float(s) for s in volume.geometry.spacing_mm],
    }

    modalities = [str(m).upper() for m in domain.get("modalities", [])]
    if modalities and volume.modality and volume.modality.upper() not in modalities:
        check.warnings.append(
            f"modality {volume.modality} is not in the training domain ({', '.join(modalities)})"
        )
    elif modalities and not volume.modality:
        check.warnings.append(f"input modality unknown; the generator was trained on {', '.join(modalities)}")

    contrasts = [str(c).upper() for c in domain.get("contrasts", [])]
    contrast = mr_contrast(volume)
    check.statistics["contrast"] = contrast  # '' when the description does not say
    if contrasts and contrast and contrast not in contrasts:
        description = volume.metadata.get("SeriesDescription", "")
        check.warnings.append(
            f"contrast {contrast} (series description '{description}') is not in the training domain"
            f" ({', '.join(contrasts)})"
        )

    spacing = volume.geometry.spacing_mm
    declared = domain.get("spacing_mm")
    if declared:
        declared = np.resize(np.asarray(declared, dtype=float), 3)
        relative = np.abs(spacing - declared) / declared
        if np.any(relative > SPACING_TOLERANCE):
            check.warnings.append(
                f"spacing {_mm(spacing)} mm differs by more than {SPACING_TOLERANCE:.0%} from the trained {_mm(declared)} mm"
            )
    low, high = domain.get("spacing_mm_min"), domain.get("spacing_mm_max")
    if low and np.any(spacing < np.resize(np.asarray(low, dtype=float), 3) - 1e-6):
        check.warnings.append(f"spacing {_mm(spacing)} mm is finer than the training minimum {_mm(low)} mm")
    if high and np.any(spacing > np.resize(np.asarray(high, dtype=float), 3) + 1e-6):
        check.warnings.append(
            f"spacing {_mm(spacing)} mm is coarser than the training maximum {_mm(high)} mm"
        )

    target = domain.get("super_resolution_target_mm")
    if target and (warning := _already_fine_warning(volume, float(target))):
        check.warnings.append(warning)

    intensity_range = domain.get("intensity_range")
    if intensity_range and values.size:
        lo, hi = float(intensity_range[0]), float(intensity_range[1])
        outside = float(np.mean((values < lo) | (values > hi)))
        if outside > RANGE_OUTSIDE_FRACTION:
            check.warnings.append(
                f"{outside:.0%} of voxels lie outside the trained intensity range [{lo:g}, {hi:g}]"
                " (wrong units, rescale or normalisation?)"
            )
    train_mean, train_sd = domain.get("intensity_mean"), domain.get("intensity_std")
    if train_mean is not None and train_sd and np.isfinite(stats["mean"]):
        distance = abs(stats["mean"] - float(train_mean)) / float(train_sd)
        if distance > MEAN_TOLERANCE_SD:
            check.warnings.append(
                f"mean intensity {stats['mean']:.4g} is {distance:.1f} training SDs from the training mean"
                f" {float(train_mean):.4g}"
            )
    return check


def _mm(values) -> str:
    return " x ".join(f"{float(v):g}" for v in values)
