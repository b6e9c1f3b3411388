"""Downstream-task consistency: does the synthesized image still segment like the original?

Two label maps (a segmentation model run on the original and on the synthesized volume) are
compared on one grid: per label the Dice coefficient, the volume change (mL and % of the
original's), the 95th-percentile and maximum symmetric Hausdorff distance in millimetres; and
the regions where the maps disagree, split into 26-connected components and listed like
residual regions (centroid in LPS mm, volume in mL, the label pairs involved).

Two filters keep the listed regions to the real ones (a segmentation network run on an edited or
re-synthesized image moves many boundaries by a voxel and flips small specks far from the edit):
one-voxel boundary jitter (a voxel whose label changed from a to b where b is one of its six
neighbours' labels in the original map and a one of its six neighbours' labels in the
synthesized map: the a/b boundary moved by one voxel) is not part of any region, and regions
under a minimum volume (mm^3) are not listed. Both leave the per-label figures and the total
disagreement untouched: they only decide which regions are listed.

HD95 follows the common (medpy) definition: the 95th percentile of the pooled surface-to-surface
distances of both directions. Surfaces are the label's voxels with a 6-neighbour outside it;
distances come from scipy's exact Euclidean distance transform with the voxel spacing, so
anisotropic voxels are measured in millimetres. numpy / scipy only (no torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from app.analysis.residual_regions import CONNECTIVITY_26
from app.core.resample import resample_onto
from app.core.volume import Geometry, Volume

BACKGROUND = 0
_FACE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)
# The listed regions' defaults in compare --segment and the viewer (measured on the MNI152 head,
# README "Segmentation consistency"): 50 mm^3 is a 3.7 mm cube, far below a ventricle or a
# 5 mm shift of one, above the specks a 2D network flips on slices it sees edited elsewhere.
DEFAULT_MIN_REGION_MM3 = 50.0
DEFAULT_IGNORE_BOUNDARY_JITTER = True
# One-voxel jitter is looked for only along axes whose spacing is at most this many times the
# finest: on 0.5 x 0.5 x 5 mm voxels a boundary that moved by a whole 5 mm slice is a change in
# the structure's extent (a 5 mm shift), not a network's boundary noise.
JITTER_MAX_SPACING_RATIO = 2.0


@dataclass(frozen=True)
class RegionFilter:
    """Which disagreement regions are listed: at least ``min_region_mm3``; without the voxels of
    one-voxel boundary jitter when ``ignore_boundary_jitter``."""

    min_region_mm3: float = 0.0
    ignore_boundary_jitter: bool = False

    def describe(self) -> str:
        jitter = (
            "one-voxel boundary jitter ignored" if self.ignore_boundary_jitter else "boundary jitter kept"
        )
        return f"regions of at least {self.min_region_mm3:g} mm^3 listed; {jitter}"


LISTED_BY_DEFAULT = RegionFilter(DEFAULT_MIN_REGION_MM3, DEFAULT_IGNORE_BOUNDARY_JITTER)


@dataclass(frozen=True)
class LabelAgreement:
    """One label's agreement between the original's map and the synthesized one's."""

    label: int
    name: str
    dice: float | None  # None: the label is in neither map
    volume_original_ml: float
    volume_synthesized_ml: float
    volume_change_ml: float  # synthesized - original
    volume_change_percent: float | None  # of the original's volume; None when it has none
    hd95_mm: float | None  # None unless the label is in both maps
    hausdorff_mm: float | None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class LabelChange:
    original: int
    synthesized: int
    voxel_count: int
    description: str  # "grey matter -> white matter"


@dataclass(frozen=True)
class DisagreementRegion:
    """A connected region of voxels labelled differently in the two maps. Volumes in mL."""

    index: int
    voxel_count: int
    volume_ml: float
    centroid_lps_mm: tuple[float, float, float]
    centroid_ijk: tuple[float, float, float]
    bbox_kji: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # [start, stop) per axis
    changes: tuple[LabelChange, ...]  # label pairs inside, most voxels first

    @property
    def labels_involved(self) -> list[int]:
        return sorted({c.original for c in self.changes} | {c.synthesized for c in self.changes})

    def to_dict(self) -> dict:
        data = asdict(self)
        data["volume_ml"] = round(self.volume_ml, 4)
        data["centroid_lps_mm"] = [round(v, 3) for v in self.centroid_lps_mm]
        data["centroid_ijk"] = [round(v, 3) for v in self.centroid_ijk]
        data["bbox_kji"] = [list(b) for b in self.bbox_kji]
        data["labels_involved"] = self.labels_involved
        return data


@dataclass
class SegmentationConsistency:
    labels: list[LabelAgreement]
    regions: list[DisagreementRegion]
    disagreement_voxels: int
    disagreement_ml: float
    region_map: np.ndarray = field(repr=False)  # int32: region index per voxel, 0 where none is listed
    notes: list[str] = field(default_factory=list)
    region_filter: RegionFilter = RegionFilter()
    boundary_jitter_voxels: int = 0  # of disagreement_voxels: one-voxel boundary moves in no listed region
    unlisted_regions: int = 0  # regions under the minimum volume

    def to_dict(self) -> dict:
        return {
            "labels": [label.to_dict() for label in self.labels],
            "disagreement_voxels": self.disagreement_voxels,
            "disagreement_ml": round(self.disagreement_ml, 4),
            "region_filter": {**asdict(self.region_filter), "description": self.region_filter.describe()},
            "boundary_jitter_voxels": self.boundary_jitter_voxels,
            "unlisted_regions": self.unlisted_regions,
            "regions": [region.to_dict() for region in self.regions],
            "notes": list(self.notes),
        }


def labels_on_grid(labels: Volume, geometry: Geometry, shape_kji: tuple[int, int, int]) -> np.ndarray:
    """A label map on another grid, nearest neighbour (labels are never blended); 0 outside it."""
    if labels.geometry.allclose(geometry) and labels.shape_kji == tuple(shape_kji):
        return np.asarray(labels.voxels)
    resampled = resample_onto(labels, geometry, shape_kji, linear=False, fill_value=BACKGROUND)
    return np.rint(resampled.voxels).astype(np.int32)


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    total = int(a.sum()) + int(b.sum())
    return None if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def _face_neighbours(shape) -> np.ndarray:
    """The six face neighbours, less those along an axis the array does not extend along (a
    single slice is a 2D image: its two faces along k are not the structure's surface)."""
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1, 1, 1] = True
    for axis, size in enumerate(shape):
        if size > 1:
            index = [1, 1, 1]
            for offset in (0, 2):
                index[axis] = offset
                structure[tuple(index)] = True
    return structure


def _surface(mask: np.ndarray, structure: np.ndarray = _FACE_NEIGHBOURS) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure, border_value=0)


def surface_distances_mm(a: np.ndarray, b: np.ndarray, spacing_kji) -> np.ndarray:
    """Distances (mm) from each surface voxel of ``a`` to the nearest surface voxel of ``b``.

    Computed in the two masks' joint bounding box: the nearest surface voxel of ``b`` lies inside
    it, so the crop changes no distance and keeps large volumes fast. The surface is taken in the
    dimensions the whole array has (a single slice: in-plane), not the crop's.
    """
    structure = _face_neighbours(a.shape)
    box = ndimage.find_objects((a | b).astype(np.uint8))[0]
    a, b = a[box], b[box]
    to_b = ndimage.distance_transform_edt(~_surface(b, structure), sampling=spacing_kji)
    return to_b[_surface(a, structure)]


def pooled_surface_distances_mm(a: np.ndarray, b: np.ndarray, spacing_kji) -> np.ndarray | None:
    """Surface distances of both directions (mm), pooled; None if a mask is empty."""
    if not a.any() or not b.any():
        return None
    return np.concatenate([surface_distances_mm(a, b, spacing_kji), surface_distances_mm(b, a, spacing_kji)])


def hausdorff_mm(a: np.ndarray, b: np.ndarray, spacing_kji, percentile: float = 95.0) -> float | None:
    """Symmetric Hausdorff distance at ``percentile`` (100: the maximum); None if a mask is empty."""
    pooled = pooled_surface_distances_mm(a, b, spacing_kji)
    return None if pooled is None else float(np.percentile(pooled, percentile))


def label_agreement(
    original: np.ndarray, synthesized: np.ndarray, label: int, name: str, spacing_mm_ijk
) -> LabelAgreement:
    spacing_kji = np.asarray(spacing_mm_ijk, dtype=float)[::-1]
    voxel_ml = float(np.prod(spacing_kji)) / 1000.0
    a, b = original == label, synthesized == label
    volume_a, volume_b = int(a.sum()) * voxel_ml, int(b.sum()) * voxel_ml
    pooled = pooled_surface_distances_mm(a, b, spacing_kji)  # once for both figures
    return LabelAgreement(
        label=label,
        name=name,
        dice=dice(a, b),
        volume_original_ml=volume_a,
        volume_synthesized_ml=volume_b,
        volume_change_ml=volume_b - volume_a,
        volume_change_percent=100.0 * (volume_b - volume_a) / volume_a if volume_a > 0 else None,
        hd95_mm=None if pooled is None else float(np.percentile(pooled, 95.0)),
        hausdorff_mm=None if pooled is None else float(pooled.max()),
    )


def _name(label: int, names: dict[int, str]) -> str:
    return names.get(label, f"label {label}")


def jitter_axes(spacing_kji) -> tuple[int, ...]:
    """The array axes (k, j, i order) along which a one-voxel boundary move counts as jitter: those
    of at most ``JITTER_MAX_SPACING_RATIO`` times the finest spacing (all of them when isotropic)."""
    spacing = np.asarray(spacing_kji, dtype=float)
    return tuple(int(a) for a in np.flatnonzero(spacing <= JITTER_MAX_SPACING_RATIO * spacing.min() + 1e-9))


def boundary_jitter(original: np.ndarray, synthesized: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
    """The voxels where a boundary moved by one voxel: labelled a in ``original`` and b in
    ``synthesized``, with b among the voxel's face neighbours in ``original`` and a among them in
    ``synthesized`` (face neighbours along ``axes``, all by default). A removed or moved
    structure's voxels are not jitter: inside it the new label has no neighbour in the original
    (or the old one none in the synthesized map)."""
    differ = original != synthesized
    new_label_nearby = np.zeros(original.shape, dtype=bool)
    old_label_nearby = np.zeros(original.shape, dtype=bool)
    for axis in range(original.ndim) if axes is None else axes:
        for step in (-1, 1):
            inner = [slice(None)] * original.ndim
            outer = [slice(None)] * original.ndim
            inner[axis] = slice(
                max(step, 0), original.shape[axis] + min(step, 0)
            )  # voxels with that neighbour
            outer[axis] = slice(max(-step, 0), original.shape[axis] + min(-step, 0))  # the neighbours
            inner, outer = tuple(inner), tuple(outer)
            new_label_nearby[inner] |= original[outer] == synthesized[inner]
            old_label_nearby[inner] |= synthesized[outer] == original[inner]
    return differ & new_label_nearby & old_label_nearby


def disagreement_regions(
    original: np.ndarray,
    synthesized: np.ndarray,
    geometry: Geometry,
    names: dict[int, str] | None = None,
    region_filter: RegionFilter = RegionFilter(),
) -> tuple[list[DisagreementRegion], np.ndarray, int, int]:
    """26-connected regions where the labels differ, largest first, that ``region_filter`` lists;
    the region index map; the boundary-jitter voxels in no listed region; the regions left out
    for their size.

    With jitter ignored, the regions are found among the other differing voxels and measured
    against the minimum there; each kept region then takes back the jitter voxels touching it (a
    filled ventricle keeps its rim), and regions that now touch are one."""
    names = names or {}
    differ = original != synthesized
    axes = jitter_axes(geometry.spacing_mm[::-1])
    jitter = boundary_jitter(original, synthesized, axes) if region_filter.ignore_boundary_jitter else None
    core = differ & ~jitter if jitter is not None else differ
    core_map, _ = ndimage.label(core, structure=CONNECTIVITY_26)
    voxel_mm3 = float(np.prod(geometry.spacing_mm))
    sizes = np.bincount(core_map.ravel())
    large = sizes * voxel_mm3 >= region_filter.min_region_mm3
    large[0] = False
    unlisted = int(np.count_nonzero(sizes[1:])) - int(np.count_nonzero(large))
    listed = large[core_map]
    jitter_voxels = 0
    if jitter is not None:
        listed |= jitter & ndimage.binary_dilation(listed, structure=CONNECTIVITY_26)
        jitter_voxels = int(np.count_nonzero(jitter & ~listed))
    region_map, _ = ndimage.label(listed, structure=CONNECTIVITY_26)
    regions: list[DisagreementRegion] = []
    for index, box in enumerate(ndimage.find_objects(region_map), start=1):
        if box is None:
            continue
        inside = region_map[box] == index
        voxel_count = int(inside.sum())
        pairs, counts = np.unique(
            np.stack([original[box][inside], synthesized[box][inside]], axis=1), axis=0, return_counts=True
        )
        changes = sorted(
            (
                LabelChange(int(a), int(b), int(n), f"{_name(int(a), names)} -> {_name(int(b), names)}")
                for (a, b), n in zip(pairs, counts, strict=True)
            ),
            key=lambda c: (-c.voxel_count, c.original, c.synthesized),
        )
        kji = np.argwhere(inside).mean(axis=0) + np.array([s.start for s in box])
        ijk = kji[::-1]
        regions.append(
            DisagreementRegion(
                index=index,
                voxel_count=voxel_count,
                volume_ml=voxel_count * voxel_mm3 / 1000.0,
                centroid_lps_mm=tuple(float(v) for v in geometry.lps_from_index(ijk)),
                centroid_ijk=tuple(float(v) for v in ijk),
                bbox_kji=tuple((s.start, s.stop) for s in box),
                changes=tuple(changes),
            )
        )
    regions.sort(key=lambda r: (-r.voxel_count, r.index))
    return regions, region_map, jitter_voxels, unlisted


def compare_label_maps(
    original: np.ndarray,
    synthesized: np.ndarray,
    geometry: Geometry,
    names: dict[int, str] | None = None,
    region_filter: RegionFilter = RegionFilter(),
) -> SegmentationConsistency:
    """Per-label agreement (every label but background present in either map or named) and the
    disagreement regions of two label maps on one grid (``geometry``) that ``region_filter``
    lists (by default all)."""
    original = np.asarray(original)
    synthesized = np.asarray(synthesized)
    if original.shape != synthesized.shape:
        raise ValueError(f"label maps differ in shape: {original.shape} vs {synthesized.shape}")
    names = names or {}
    present = set(np.unique(original).tolist()) | set(np.unique(synthesized).tolist()) | set(names)
    labels = [
        label_agreement(original, synthesized, label, _name(label, names), geometry.spacing_mm)
        for label in sorted(present - {BACKGROUND})
    ]
    regions, region_map, jitter_voxels, unlisted = disagreement_regions(
        original, synthesized, geometry, names, region_filter
    )
    differ = int(np.count_nonzero(original != synthesized))
    notes = [
        f"{label.name}: in neither map" if label.dice is None else f"{label.name}: missing from one map"
        for label in labels
        if label.hd95_mm is None
    ]
    spacing_kji = geometry.spacing_mm[::-1]
    thick = [a for a in range(3) if a not in jitter_axes(spacing_kji)]
    if region_filter.ignore_boundary_jitter and thick:
        notes.append(
            f"one-voxel boundary jitter not looked for along {'/'.join('kji'[a] for a in thick)}"
            f" ({' / '.join(f'{spacing_kji[a]:g}' for a in thick)} mm voxels, over"
            f" {JITTER_MAX_SPACING_RATIO:g} x the finest spacing, {spacing_kji.min():g} mm): a boundary"
            " moved by a whole voxel along it changes the structure's extent and is listed"
        )
    return SegmentationConsistency(
        labels=labels,
        regions=regions,
        disagreement_voxels=differ,
        disagreement_ml=differ * float(np.prod(geometry.spacing_mm)) / 1000.0,
        region_map=region_map,
        notes=notes,
        region_filter=region_filter,
        boundary_jitter_voxels=jitter_voxels,
        unlisted_regions=unlisted,
    )
