"""One hallucination check of an original/synthesized pair (and optional reference): maps, regions, metrics.

Batch "logic" in the 3D Slicer sense: the CLI, the HTML report and the viewer's panel all call
``run_compare`` and show its ``CompareResult``; none of them computes anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from app.analysis.detection import (
    DEFAULT_FALSE_REGIONS_PER_VOLUME,
    RESIDUAL_SLAB_CONSISTENCY,
    NullCalibration,
    OperatingPoint,
    ZMap,
    operating_point,
    residual_z_map,
    slab_consistency_residual,
    slab_structure,
)
from app.analysis.difference_maps import DifferenceMaps, difference_maps, same_kind
from app.analysis.metrics import Metrics, compute_metrics
from app.analysis.residual_regions import (
    REGION_OUTSIDE_RANGE,
    Region,
    ResidualSettings,
    find_regions,
    outside_range_regions,
)
from app.analysis.uncertainty import voxel_sd
from app.core.quantity_map import MapKind, QuantityMap
from app.core.resample import resample_like
from app.core.study import source_study
from app.core.volume import Volume

NO_RESIDUAL = "none"
OUTSIDE_RANGE_MARGIN = 0.02  # of the plugin's input range: beyond it a voxel was clipped for real
OUTSIDE_RANGE_MIN_ML = 0.005  # 5 mm^3: a lesion, not a few hot voxels


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
    extra_maps: dict[str, Volume] = field(default_factory=dict)  # cycle residual, ensemble SD (residual grid)
    z: ZMap | None = None  # the calibrated statistic (settings.statistic == "z")
    operating: OperatingPoint | None = None  # how the z threshold was chosen
    outside_range: list[Region] = field(default_factory=list)  # input the plugin never saw
    outside_labels: np.ndarray | None = None

    def with_threshold(self, threshold: float) -> CompareResult:
        """The same check with another threshold, in the statistic's units (z, or image units
        for ``statistic == "residual"``); only the regions are recomputed."""
        settings = replace(self.settings, threshold=float(threshold))
        if self.residual_source == NO_RESIDUAL:
            return replace(self, settings=settings)
        regions, labels = find_regions(
            self.residual_map.voxels,
            self.residual_map.geometry,
            settings,
            self.z.z if settings.statistic == "z" and self.z is not None else None,
        )
        regions, labels, outside, outside_labels = _with_outside(
            regions, labels, self.outside_range, self.outside_labels
        )
        return replace(
            self,
            settings=settings,
            regions=regions,
            label_map=labels,
            notes=list(self.notes),
            outside_range=outside,
            outside_labels=outside_labels,
        )

    @property
    def flag_level(self) -> float:
        """The change in image units the check flags at its threshold (typical tissue, 6 mm)."""
        if self.settings.statistic == "z" and self.z is not None:
            return self.z.flag_level(self.settings.threshold)
        return float(self.settings.threshold) if self.residual_source != NO_RESIDUAL else 0.0

    def shown_region_indices(self, limit: int) -> list[int]:
        """The regions a summary lists: the first ``limit``, and every outside-input-range region
        after them (input the generator never saw is always shown, however many changes rank first)."""
        return [
            index
            for index, region in enumerate(self.regions)
            if index < limit or region.kind == REGION_OUTSIDE_RANGE
        ]

    def region_mask(self, region: Region) -> np.ndarray:
        """The voxels of ``region`` on the residual's grid. A lesion above the plugin's range that
        the generator removed is both a residual region and an outside-range one: each keeps its
        own voxels (the label map holds the residual's, ``outside_labels`` the other's)."""
        if region.kind == REGION_OUTSIDE_RANGE and self.outside_labels is not None:
            return self.outside_labels == region.label
        return self.label_map == region.label

    def region_map_means(self) -> list[dict[str, float]]:
        """For every region, the mean of each extra map (uncertainty, cycle residual) inside it."""
        result = []
        for region in self.regions:
            inside = self.region_mask(region)
            result.append({name: float(np.nanmean(m.voxels[inside])) for name, m in self.extra_maps.items()})
        return result

    def sign_meaning(self, sign: str) -> str:
        """What a residual region's sign says, for the residual actually read (the base is the
        reference when one is given; a cycle residual compares the reconstruction)."""
        compared = "the cycle reconstruction" if "cycle reconstruction" in self.residual_source else "the synthesized image"
        base = "the reference" if self.residual_source.startswith("reference") else "the original"
        if sign == "+":
            return f"+ ({compared} is darker than {base}: signal removed)"
        return f"- ({compared} is brighter than {base}: signal added)"

    @property
    def sign_convention(self) -> str:
        """One line for the JSON and the console; the report says the same per region."""
        if self.residual_source == NO_RESIDUAL:
            return "no residual was read (no same-kind pair): no sign"
        return f"residual = {self.residual_source}: {self.sign_meaning('+')}, {self.sign_meaning('-')}"

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
            "sign_convention": self.sign_convention,
            "operating_point": self.operating.to_dict() if self.operating else None,
            "flag_level_image_units": self.flag_level,
            "input_difference_meaningful": self.input_difference.meaningful,
            "notes": list(self.notes),
            "region_count": len(self.regions),
            "regions": [
                {**r.to_dict(), "map_means": means}
                for r, means in zip(self.regions, self.region_map_means(), strict=True)
            ],
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "maps": {name: _summary(m.voxels) for name, m in self.extra_maps.items()},
        }


def _summary(values: np.ndarray) -> dict:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {"max": None, "mean": None, "p99": None}
    return {"max": float(finite.max()), "mean": float(finite.mean()), "p99": float(np.percentile(finite, 99))}


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
    cycle_reconstruction: Volume | None = None,
    ensemble: list[Volume] | None = None,
    extra_maps: dict[str, Volume] | None = None,
    false_regions_per_volume: float = DEFAULT_FALSE_REGIONS_PER_VOLUME,
    calibration: NullCalibration | None = None,
) -> CompareResult:
    """Compute maps, regions and metrics.

    Regions come from the first meaningful residual of: the reference difference (output vs a
    real acquisition, on the reference grid), the pseudo-healthy residual original - synthesized
    (same kind of image only), the cycle residual original - G_BA(G_AB(original)) when
    ``cycle_reconstruction`` is given. A cross-modality pair with none of these flags nothing,
    and a note says so. ``ensemble`` (other outputs of the same task: checkpoints, MC-dropout or
    TTA runs) adds a per-voxel SD map over them and ``synthesized``; ``extra_maps`` (e.g. a TTA
    SD or perturbation change map computed by the caller) are shown and summarised per region,
    resampled onto the residual's grid.

    Without ``threshold`` the regions come from the calibrated z map (``app.analysis.detection``)
    at ``false_regions_per_volume`` expected false regions on a healthy pair, raised to the
    plugin's ``calibration`` when given; ``threshold`` (image units) flags the smoothed residual
    instead. Where the synthesized volume's provenance records the plugin's input range, input
    voxels well outside it are listed as their own region kind: the generator never saw them.
    """
    notes: list[str] = []
    original, synthesized = _finite_or_missing(original, "original", notes), _finite_or_missing(
        synthesized, "synthesized", notes
    )
    if reference is not None:
        reference = _finite_or_missing(reference, "reference", notes)
    if cycle_reconstruction is not None:
        cycle_reconstruction = _finite_or_missing(cycle_reconstruction, "cycle reconstruction", notes)
    input_difference = difference_maps(original, synthesized)
    _require_overlap(input_difference, "the synthesized volume", "the original")
    if not input_difference.meaningful:
        notes.append(input_difference.reason)
    reference_difference = None
    metrics: dict[str, Metrics] = {}
    base = original
    residual_values = None
    source = NO_RESIDUAL
    if reference is not None:
        if reference.provenance is not None:
            notes.append(
                f"the reference is marked synthetic ({reference.provenance.label()}): it is no acquisition,"
                " so the regions compare one generated image with another, not the output with the truth"
            )
        reference_difference = difference_maps(reference, synthesized)
        _require_overlap(reference_difference, "the synthesized volume", "the reference")
        base = reference
        if reference_difference.meaningful:
            # truth - output on the reference grid (positive where the output lost signal)
            residual_values = -reference_difference.signed.voxels
            source = "reference - synthesized"
            on_reference = resample_like(synthesized, reference).voxels
            metrics["synthesized_vs_reference"] = compute_metrics(reference.voxels, on_reference)
        else:
            notes.append(f"reference: {reference_difference.reason}")
    if input_difference.meaningful:
        on_original = resample_like(synthesized, original).voxels
        metrics["synthesized_vs_original"] = compute_metrics(original.voxels, on_original)
        if residual_values is None:
            residual_values = resample_like(
                _with_values(original, -input_difference.signed.voxels), base
            ).voxels
            source = "original - synthesized"
            if calibration is not None and calibration.model.residual == RESIDUAL_SLAB_CONSISTENCY:
                consistent = _slab_consistency(original, synthesized, on_original) if base is original else None
                if consistent is None:
                    notes.append(
                        f"{calibration.source}: this plugin's calibration reads the slab-consistency"
                        " residual, but the original shows no thick slices (neither a coarse slice"
                        " spacing nor slices interpolated onto a fine grid): the plain residual is read"
                        " against random-field theory only"
                    )
                    calibration = None
                else:
                    residual_values, source = consistent
    given_maps = extra_maps or {}
    extra_maps: dict[str, Volume] = {}
    if cycle_reconstruction is not None:
        back = resample_like(cycle_reconstruction, original).voxels
        cycle_signed = np.asarray(original.voxels, dtype=np.float32) - np.asarray(back, dtype=np.float32)
        cycle_on_base = resample_like(_with_values(original, cycle_signed), base).voxels
        extra_maps["cycle residual"] = _map(
            base, np.abs(cycle_on_base), "cycle residual", synthesized, MapKind.CYCLE_RESIDUAL
        )
        if residual_values is None:
            residual_values, source = cycle_on_base, "original - cycle reconstruction"
    if ensemble:
        members = [resample_like(v, base).voxels for v in (synthesized, *ensemble)]
        extra_maps["ensemble SD"] = _map(
            base, voxel_sd(members), f"ensemble SD over {len(members)}", synthesized, MapKind.ENSEMBLE_SD
        )
    for name, volume in given_maps.items():
        if volume.quantity_map is None:
            raise ValueError(f"{name} is not a map (a Volume without quantity_map)")
        on_base = resample_like(volume, base).voxels
        extra_maps[name] = map_volume(base, on_base, name, synthesized.provenance, volume.quantity_map)
    if residual_values is None:
        residual_values = np.zeros(base.shape_kji, dtype=np.float32)
        notes.append(
            "no regions flagged: no same-modality pair to compare "
            "(load a reference acquisition or the cycle reconstruction)"
        )
    if source != NO_RESIDUAL:
        _note_uncovered(base, residual_values, "the reference" if base is reference else "the original", notes)
    residual_map = _map(base, residual_values, f"residual {source}", synthesized, MapKind.RESIDUAL)
    zmap = operating = None
    if threshold is None and source != NO_RESIDUAL:
        zmap = residual_z_map(residual_values, base.voxels, base.geometry.spacing_mm, calibration)
        operating = operating_point(zmap, false_regions_per_volume, calibration)
        settings = ResidualSettings(operating.z_threshold, smoothing_sigma_mm, min_volume_ml, statistic="z")
    else:
        settings = ResidualSettings(float(threshold or 1.0), smoothing_sigma_mm, min_volume_ml)
    if source != NO_RESIDUAL:
        regions, labels = find_regions(
            residual_map.voxels, residual_map.geometry, settings, zmap.z if zmap is not None else None
        )
    else:
        regions, labels = [], np.zeros(base.shape_kji, dtype=np.int32)
    outside, outside_labels = [], None
    input_range = plugin_input_range(synthesized)
    if input_range is not None:
        low, high = input_range
        # On the residual's grid, which is the reference's when one is given: the input's values
        # there by nearest neighbour (never blended into the range), NaN outside the input.
        input_on_base = original.voxels if base is original else resample_like(original, base, linear=False).voxels
        outside, outside_labels = outside_range_regions(
            input_on_base,
            base.geometry,
            low,
            high,
            OUTSIDE_RANGE_MARGIN * (high - low),
            OUTSIDE_RANGE_MIN_ML,
            first_label=int(labels.max()) + 1 if labels.size else 1,
        )
        regions, labels, outside, outside_labels = _with_outside(regions, labels, outside, outside_labels)
        if outside:
            notes.append(
                f"{len(outside)} region(s) of the input lie outside the plugin's input range"
                f" [{low:.4g}, {high:.4g}]: the generator never saw those values, so the output"
                " there is not synthesized (listed as 'outside_input_range')"
            )
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
        extra_maps,
        zmap,
        operating,
        outside,
        outside_labels,
    )


SLAB_SPACING_RATIO = 1.5  # original / synthesized spacing along an axis: acquired thick slices


def _slab_consistency(
    original: Volume, synthesized: Volume, on_original: np.ndarray
) -> tuple[np.ndarray, str] | None:
    """(residual, source) of a super-resolution output against its thick-slice input: the
    output averaged over the input's slices, as the acquisition averaged the anatomy, then
    subtracted from the input. Thick slices either as acquired (the original's spacing along an
    axis coarser than the output's, same axes: a box over each original slice) or interpolated
    onto the output's fine grid (``slab_structure``); None when the original shows neither."""
    source_spacing = np.asarray(synthesized.geometry.spacing_mm, float)
    target_spacing = np.asarray(original.geometry.spacing_mm, float)
    ratio = target_spacing / source_spacing
    same_axes = np.allclose(original.geometry.direction, synthesized.geometry.direction, atol=1e-3)
    if same_axes and float(ratio.max()) > SLAB_SPACING_RATIO:
        from scipy import ndimage

        axis_ijk = int(np.argmax(ratio))
        width = int(round(float(ratio[axis_ijk])))
        averaged = ndimage.uniform_filter1d(
            np.nan_to_num(np.asarray(synthesized.voxels, np.float32)), width, axis=2 - axis_ijk, mode="nearest"
        )
        on_slices = resample_like(_with_values(synthesized, averaged), original).voxels
        residual = np.asarray(original.voxels, np.float32) - np.asarray(on_slices, np.float32)
        return residual, f"original - synthesized averaged over the original's {target_spacing[axis_ijk]:g} mm slices"
    slabs = slab_structure(original.voxels)
    if slabs is None:
        return None
    residual = slab_consistency_residual(original.voxels, on_original, slabs)
    return residual, f"original - synthesized averaged over the input's {slabs.describe()}"


def plugin_input_range(synthesized: Volume) -> tuple[float, float] | None:
    """The input bounds the plugin scaled to its network range (from the provenance the
    runtime records), when they were measured or fixed: values beyond them were clipped."""
    provenance = synthesized.provenance
    scaling = (provenance.parameters or {}).get("input_scaling") if provenance else None
    if not isinstance(scaling, dict) or scaling.get("method") not in ("percentile", "window"):
        return None
    try:
        low, high = float(scaling["low"]), float(scaling["high"])
    except (KeyError, TypeError, ValueError):
        return None
    return (low, high) if np.isfinite(low) and np.isfinite(high) and high > low else None


def _with_outside(
    regions: list[Region], labels: np.ndarray, outside: list[Region], outside_labels: np.ndarray | None
) -> tuple[list[Region], np.ndarray, list[Region], np.ndarray | None]:
    """The residual's regions followed by the outside-the-range ones (labels after the residual's),
    one label map for both where they do not overlap (where they do, the residual region keeps
    the voxel: ``CompareResult.region_mask`` reads an outside region from its own map); returns
    (regions, label map, outside regions, their label map), both with the new labels."""
    if not outside or outside_labels is None:
        return regions, labels, outside, outside_labels
    offset = int(labels.max()) if labels.size else 0
    shift = offset + 1 - min(r.label for r in outside)
    moved = [replace(r, label=r.label + shift) for r in outside]
    inside = np.isin(outside_labels, [r.label for r in outside])
    shifted = np.where(inside, outside_labels + shift, 0).astype(np.int32)
    merged = labels.copy()
    free = inside & (merged == 0)
    merged[free] = shifted[free]
    return [*regions, *moved], merged, moved, shifted


UNCOVERED_NOTE_SHARE = 0.01  # of the base's voxels: a partial grid edge is not worth a note


def _note_uncovered(base: Volume, residual: np.ndarray, name: str, notes: list[str]) -> None:
    """A note when the residual is missing over part of ``base`` (a synthesized volume that
    covers only part of it): no region can be found there, and "0 regions" must not read as
    "nothing changed" over the whole volume."""
    measured = np.isfinite(np.asarray(base.voxels, dtype=np.float32))
    uncovered = int((measured & ~np.isfinite(residual)).sum())
    total = int(measured.sum())
    if total and uncovered > UNCOVERED_NOTE_SHARE * total:
        litres = uncovered * float(np.prod(base.geometry.spacing_mm)) / 1e6
        notes.append(
            f"only {100 * (1 - uncovered / total):.0f} % of {name} is compared: the synthesized volume"
            f" does not cover the other {1000 * litres:.1f} mL, where no region can be flagged"
        )


def _finite_or_missing(volume: Volume, role: str, notes: list[str]) -> Volume:
    """``volume`` with its infinite voxels read as missing (NaN, like outside the field of view),
    with a note: one inf voxel would otherwise swamp every smoothed map and noise estimate and
    hide every real region."""
    voxels = np.asarray(volume.voxels)
    if not np.issubdtype(voxels.dtype, np.floating):
        return volume
    infinite = np.isinf(voxels)
    count = int(infinite.sum())
    if not count:
        return volume
    notes.append(f"{role}: {count} infinite voxel(s) not compared (read as missing data)")
    return volume.with_voxels(np.where(infinite, np.float32(np.nan), voxels).astype(voxels.dtype, copy=False))


def _require_overlap(difference: DifferenceMaps, what: str, grid: str) -> None:
    """Refuse a pair with no voxel in common: every map and metric would be empty (NaN)."""
    if not np.isfinite(difference.signed.voxels).any():
        raise ValueError(
            f"{what} does not overlap {grid} in space (no voxel in common): check that both are"
            " the same patient in the same frame of reference"
        )


def _with_values(grid: Volume, values: np.ndarray) -> Volume:
    return Volume(np.asarray(values, dtype=np.float32), grid.geometry, grid.modality, grid.units, grid.name)


def _map(base: Volume, values: np.ndarray, name: str, synthesized: Volume, kind: MapKind) -> Volume:
    """A map on ``base``'s grid, carrying the synthesized volume's provenance (it is derived from it)."""
    return map_volume(base, values, name, synthesized.provenance, QuantityMap(kind))


def map_volume(
    grid: Volume,
    values: np.ndarray,
    name: str,
    provenance,
    quantity_map: QuantityMap,
    modality: str | None = None,
    units: str | None = None,
) -> Volume:
    """A map (heat colormap in the compare layout: ``Volume.quantity_map``) on ``grid``'s geometry.

    ``provenance`` is the synthesized volume's, so a map derived from a synthetic image stays
    marked synthetic; ``modality`` and ``units`` default to the grid volume's, and the patient
    and study are the grid volume's (the Studies tree files the map with its images).
    """
    return Volume(
        np.asarray(values, dtype=np.float32),
        grid.geometry,
        grid.modality if modality is None else modality,
        grid.units if units is None else units,
        name,
        provenance,
        quantity_map=quantity_map,
        metadata=source_study(grid.metadata),
    )
