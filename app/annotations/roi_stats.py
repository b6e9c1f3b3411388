"""ROI statistics: which voxels a planar region covers, and their mean/SD/min/max.

A region is in world coordinates, so the same region is measured on each volume's own grid:
the original, the synthesized one (same or different geometry) and the difference map. A voxel
belongs to the region when its centre lies in the region's plane slab (within half a voxel
along the plane normal) and its projection onto the plane falls inside the shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from app.annotations.shapes import PlanarRegion
from app.core.volume import Geometry, Volume


@dataclass(frozen=True)
class RoiStatistics:
    """Statistics of the voxels inside a region on one volume.

    ``sd`` is the sample standard deviation (n - 1), as clinical viewers report it;
    ``area_mm2`` is the drawn shape's area; ``voxel_area_mm2`` the covered voxels' in-plane
    area. Values are in ``units`` (HU for CT).
    """

    mean: float
    sd: float
    minimum: float
    maximum: float
    voxel_count: int
    area_mm2: float
    voxel_area_mm2: float
    units: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def slab_half_thickness_mm(geometry: Geometry, normal_lps: np.ndarray) -> float:
    """Half the extent of one voxel along ``normal_lps`` (the slab a drawn plane covers)."""
    extent = np.abs(np.asarray(normal_lps) @ geometry.direction) * geometry.spacing_mm
    return 0.5 * float(np.sum(extent))


def region_voxel_indices(
    region: PlanarRegion, geometry: Geometry, shape_kji: tuple[int, int, int]
) -> np.ndarray:
    """(n, 3) integer (k, j, i) indices of the voxels inside ``region`` on this grid."""
    outline = region.outline_lps(64)
    half_slab = slab_half_thickness_mm(geometry, region.normal_lps)
    # Index-space bounding box of the outline thickened by the slab, clipped to the array.
    corners = np.concatenate(
        [outline + region.normal_lps * half_slab, outline - region.normal_lps * half_slab]
    )
    ijk = geometry.index_from_lps(corners)
    size_ijk = np.array(shape_kji[::-1])
    low = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, size_ijk - 1)
    high = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 0, size_ijk - 1)
    if np.any(ijk.max(axis=0) < -0.5) or np.any(ijk.min(axis=0) > size_ijk - 0.5):
        return np.zeros((0, 3), dtype=int)
    grid_i, grid_j, grid_k = np.meshgrid(
        np.arange(low[0], high[0] + 1),
        np.arange(low[1], high[1] + 1),
        np.arange(low[2], high[2] + 1),
        indexing="ij",
    )
    candidates_ijk = np.column_stack([grid_i.ravel(), grid_j.ravel(), grid_k.ravel()])
    centres = geometry.lps_from_index(candidates_ijk)
    distance = (centres - region.plane_point_lps) @ region.normal_lps
    # Half-open slab: a plane exactly between two slices selects one of them, not both.
    in_slab = (distance > -half_slab - 1e-9) & (distance <= half_slab - 1e-9)
    uv = region.uv_from_lps(centres[in_slab])
    inside = region.contains_uv(uv[:, 0], uv[:, 1])
    selected = candidates_ijk[in_slab][inside]
    return selected[:, ::-1].copy()


def region_extends_outside(region: PlanarRegion, geometry: Geometry, shape_kji: tuple[int, int, int]) -> bool:
    """Whether part of the drawn shape lies outside the volume (beyond its outer voxels' edges)."""
    ijk = geometry.index_from_lps(region.outline_lps(64))
    size_ijk = np.array(shape_kji[::-1])
    in_plane = np.abs(geometry.direction.T @ region.normal_lps) < 0.5  # the axes the shape spans
    outside = (ijk < -0.5 - 1e-6) | (ijk > size_ijk - 0.5 + 1e-6)
    return bool(np.any(outside[:, in_plane]))


def region_mask(region: PlanarRegion, geometry: Geometry, shape_kji: tuple[int, int, int]) -> np.ndarray:
    """Boolean mask[k, j, i] of the voxels inside ``region``."""
    mask = np.zeros(shape_kji, dtype=bool)
    indices = region_voxel_indices(region, geometry, shape_kji)
    mask[indices[:, 0], indices[:, 1], indices[:, 2]] = True
    return mask


def statistics_of_values(
    values: np.ndarray, area_mm2: float, voxel_area_mm2: float, units: str
) -> RoiStatistics:
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        nan = float("nan")
        return RoiStatistics(nan, nan, nan, nan, 0, area_mm2, 0.0, units)
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return RoiStatistics(
        mean=float(np.mean(values)),
        sd=sd,
        minimum=float(np.min(values)),
        maximum=float(np.max(values)),
        voxel_count=int(values.size),
        area_mm2=float(area_mm2),
        voxel_area_mm2=float(voxel_area_mm2),
        units=units,
    )


def roi_statistics(region: PlanarRegion, volume: Volume) -> RoiStatistics:
    """Statistics of ``volume``'s voxels inside ``region`` (HU for CT)."""
    indices = region_voxel_indices(region, volume.geometry, volume.shape_kji)
    values = volume.voxels[indices[:, 0], indices[:, 1], indices[:, 2]]
    pixel_area = _in_plane_voxel_area_mm2(volume.geometry, region.normal_lps)
    return statistics_of_values(values, region.area_mm2, pixel_area * len(indices), volume_units(volume))


def mask_statistics(mask_kji: np.ndarray, volume: Volume) -> RoiStatistics:
    """Statistics of a label mask on the volume's own grid (area: voxels x in-plane area)."""
    if mask_kji.shape != volume.voxels.shape:
        raise ValueError(f"mask shape {mask_kji.shape} does not match the volume {volume.voxels.shape}")
    values = volume.voxels[mask_kji.astype(bool)]
    area = float(volume.geometry.spacing_mm[0] * volume.geometry.spacing_mm[1]) * values.size
    return statistics_of_values(values, area, area, volume_units(volume))


def compare_roi(region: PlanarRegion, volumes: dict[str, Volume]) -> dict[str, RoiStatistics]:
    """The same region measured on several volumes (e.g. original / synthesized / difference)."""
    return {name: roi_statistics(region, volume) for name, volume in volumes.items()}


def _in_plane_voxel_area_mm2(geometry: Geometry, normal_lps: np.ndarray) -> float:
    """Area a voxel covers in the plane: its volume divided by its extent along the normal."""
    return float(np.prod(geometry.spacing_mm)) / (2.0 * slab_half_thickness_mm(geometry, normal_lps))


def volume_units(volume: Volume) -> str:
    """What a voxel value means: the volume's units, HU for CT, else ""."""
    if volume.units:
        return volume.units
    return "HU" if volume.modality.upper() == "CT" else ""
