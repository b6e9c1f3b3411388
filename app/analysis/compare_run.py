"""One hallucination check of an original/synthesized pair (and optional reference): maps, regions, metrics.

Batch "logic" in the 3D Slicer sense: the CLI, the HTML report and the viewer's panel all call
``run_compare`` and show its ``CompareResult``; none of them computes anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.analysis.difference_maps import DifferenceMaps, difference_maps, same_kind
from app.analysis.metrics import Metrics, compute_metrics
from app.analysis.residual_regions import Region, ResidualSettings, default_threshold, find_regions
from app.core.resample import resample_like
from app.core.volume import Volume


@dataclass
class CompareResult:
    """Everything one check produced; ``regions`` are found on ``residual_map``'s grid."""

    original: Volume
    synthesized: Volume
    reference: Volume | None
    settings: ResidualSettings
    input_difference: DifferenceMaps
    reference_difference: DifferenceMaps | None
    residual_map: Volume  # what the regions were found in (see ``residual_source``)
    residual_source: str
    regions: list[Region]
    label_map: np.ndarray
    metrics: dict[str, Metrics] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def with_threshold(self, threshold: float) -> CompareResult:
        """The same check with another threshold (only the regions are recomputed)."""
        settings = ResidualSettings(
            threshold, self.settings.smoothing_sigma_mm, self.settings.min_volume_ml, self.settings.signed
        )
        regions, labels = find_regions(self.residual_map.voxels, self.residual_map.geometry, settings)
        return CompareResult(
            self.original,
            self.synthesized,
            self.reference,
            settings,
            self.input_difference,
            self.reference_difference,
            self.residual_map,
            self.residual_source,
            regions,
            labels,
            self.metrics,
            list(self.notes),
        )

    def to_dict(self) -> dict:
        """The JSON contract of ``main.py compare``: flagged regions and metrics, with settings and provenance."""
        provenance = self.synthesized.provenance
        return {
            "original": _describe(self.original),
            "synthesized": _describe(self.synthesized),
            "reference": _describe(self.reference) if self.reference is not None else None,
            "synthesized_provenance": provenance.to_dict() if provenance else None,
            "residual_source": self.residual_source,
            "settings": self.settings.to_dict(),
            "input_difference_meaningful": self.input_difference.meaningful,
            "notes": list(self.notes),
            "region_count": len(self.regions),
            "regions": [r.to_dict() for r in self.regions],
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
        }


def _describe(volume: Volume) -> dict:
    return {
        "name": volume.name,
        "modality": volume.modality,
        "units": volume.units,
        "shape_kji": list(volume.shape_kji),
        "spacing_mm": [float(s) for s in volume.geometry.spacing_mm],
        "origin_lps_mm": [float(s) for s in volume.geometry.origin_lps_mm],
        "orientation": volume.geometry.orientation_code(),
        "synthetic": volume.provenance is not None,
    }


def run_compare(
    original: Volume,
    synthesized: Volume,
    reference: Volume | None = None,
    threshold: float | None = None,
    smoothing_sigma_mm: float = 1.0,
    min_volume_ml: float = 0.0,
) -> CompareResult:
    """Compute maps, regions and metrics.

    Regions come from the reference difference when a reference is given (output vs truth on
    the reference grid), else from the pseudo-healthy residual original - synthesized when the
    two are the same kind of image; for a cross-modality pair without reference there is no
    meaningful residual and no regions are flagged (a note says so). ``threshold`` defaults to
    10 % of the base image's robust intensity range.
    """
    notes: list[str] = []
    input_difference = difference_maps(original, synthesized)
    if not input_difference.meaningful:
        notes.append(input_difference.reason)
    reference_difference = None
    metrics: dict[str, Metrics] = {}
    if reference is not None:
        reference_difference = difference_maps(reference, synthesized)
        if not reference_difference.meaningful:
            notes.append(f"reference: {reference_difference.reason}")
        base = reference
        # Residual = truth - output on the reference grid (positive where the output lost signal).
        residual_values = -reference_difference.signed.voxels
        source = "reference - synthesized"
        on_reference = resample_like(synthesized, reference).voxels
        metrics["synthesized_vs_reference"] = compute_metrics(reference.voxels, on_reference)
    else:
        base = original
        residual_values = -input_difference.signed.voxels
        source = "original - synthesized"
    if input_difference.meaningful:
        on_original = resample_like(synthesized, original).voxels
        metrics["synthesized_vs_original"] = compute_metrics(original.voxels, on_original)
    residual_map = Volume(
        np.asarray(residual_values, dtype=np.float32),
        base.geometry,
        base.modality,
        base.units,
        f"residual {source}",
        synthesized.provenance,
        {"map": "residual", "source": source},
    )
    if threshold is None:
        threshold = default_threshold(base.voxels)
    settings = ResidualSettings(float(threshold), smoothing_sigma_mm, min_volume_ml)
    usable = (
        reference_difference.meaningful if reference_difference is not None else input_difference.meaningful
    )
    if usable:
        regions, labels = find_regions(residual_map.voxels, residual_map.geometry, settings)
    else:
        regions, labels = [], np.zeros(base.shape_kji, dtype=np.int32)
        notes.append("no regions flagged: no same-modality pair to compare (load a reference acquisition)")
    ok, _ = same_kind(original, synthesized)
    if ok and not synthesized.provenance:
        notes.append(
            "the 'synthesized' volume carries no synthesis provenance; is it really a generator output?"
        )
    return CompareResult(
        original,
        synthesized,
        reference,
        settings,
        input_difference,
        reference_difference,
        residual_map,
        source,
        regions,
        labels,
        metrics,
        notes,
    )
