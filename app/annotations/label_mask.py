"""A label mask painted with a brush (and cleared with an eraser) on a reference grid.

The mask shares the geometry of the volume it was painted on, so it exports straight to
NIfTI and DICOM SEG on that grid. Brush strokes are disks in the plane of the view, given in
world coordinates, so a stroke on any panel paints the same anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.annotations.roi_stats import region_voxel_indices
from app.annotations.shapes import EllipseRoi
from app.core.volume import Geometry


@dataclass
class LabelMask:
    """uint8 labels[k, j, i] on ``geometry``; 0 is background. ``names`` maps label -> name."""

    geometry: Geometry
    labels: np.ndarray
    names: dict[int, str] = field(default_factory=lambda: {1: "lesion"})

    def __post_init__(self) -> None:
        if self.labels.ndim != 3:
            raise ValueError(f"a label mask is 3D, got shape {self.labels.shape}")
        self.labels = np.asarray(self.labels, dtype=np.uint8)

    @classmethod
    def empty_like(cls, geometry: Geometry, shape_kji: tuple[int, int, int]) -> LabelMask:
        return cls(geometry, np.zeros(shape_kji, dtype=np.uint8))

    def disk_indices(self, center_lps, radius_mm: float, axis_u_lps, axis_v_lps) -> np.ndarray:
        """(n, 3) (k, j, i) indices a brush disk of ``radius_mm`` covers in that view plane."""
        if radius_mm <= 0:
            raise ValueError("the brush radius must be positive")
        disk = EllipseRoi(
            center_lps=center_lps,
            axis_u_lps=axis_u_lps,
            axis_v_lps=axis_v_lps,
            half_width_mm=radius_mm,
            half_height_mm=radius_mm,
        )
        return region_voxel_indices(disk, self.geometry, self.labels.shape)

    def write(self, indices_kji: np.ndarray, values) -> None:
        self.labels[indices_kji[:, 0], indices_kji[:, 1], indices_kji[:, 2]] = values

    def read(self, indices_kji: np.ndarray) -> np.ndarray:
        return self.labels[indices_kji[:, 0], indices_kji[:, 1], indices_kji[:, 2]].copy()

    def voxel_count(self, label: int | None = None) -> int:
        return int(np.count_nonzero(self.labels if label is None else self.labels == label))

    def volume_ml(self, label: int | None = None) -> float:
        """Volume of the labelled voxels (of ``label``, or of every label) in mL (1 mL = 1000 mm^3)."""
        return self.voxel_count(label) * float(np.prod(self.geometry.spacing_mm)) / 1000.0
