"""Volume: a voxel array with its patient geometry in LPS millimetres.

Conventions, stated once for the whole application:

* World coordinates are DICOM patient coordinates, LPS: +x towards the patient's Left,
  +y towards Posterior, +z towards Superior, in millimetres.
* The voxel array is indexed ``array[k, j, i]`` (slice, row, column), the order in which
  DICOM slices are stacked and SimpleITK's ``GetArrayFromImage`` returns data.
* Index vectors, spacing and direction columns are given in ``(i, j, k)`` order, as in ITK:
  ``lps = origin + direction @ (spacing * ijk)``. Column ``c`` of ``direction`` is the unit
  vector in LPS along which array index ``c`` (i, j, k) increases.

A Volume does not know how it is displayed (window/level lives in ``display``) and does not
copy its voxels: loaders hand over the array they built and the Volume keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.core.label_map import LabelMapProvenance
    from app.core.provenance import Provenance
    from app.core.quantity_map import QuantityMap
    from app.core.tilt import TiltCorrectionRecord

# Flip between RAS (NIfTI, nibabel) and LPS (DICOM, ITK, this application).
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Geometry:
    """Where the voxels of an array lie in the patient, in LPS millimetres."""

    origin_lps_mm: np.ndarray  # (3,) world position of voxel (0, 0, 0)'s centre
    spacing_mm: np.ndarray  # (3,) distance between voxel centres along i, j, k
    direction: np.ndarray  # (3, 3) columns: unit LPS vectors of the i, j, k axes

    def __post_init__(self) -> None:
        origin = np.asarray(self.origin_lps_mm, dtype=float).reshape(3)
        spacing = np.asarray(self.spacing_mm, dtype=float).reshape(3)
        direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
            raise ValueError(f"spacing must be positive and finite, got {spacing}")
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise ValueError("direction columns must be orthonormal unit vectors")
        object.__setattr__(self, "origin_lps_mm", origin)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "direction", direction)

    @classmethod
    def identity(cls, spacing_mm=(1.0, 1.0, 1.0), origin_lps_mm=(0.0, 0.0, 0.0)) -> Geometry:
        return cls(np.asarray(origin_lps_mm, float), np.asarray(spacing_mm, float), np.eye(3))

    @classmethod
    def from_affine_lps(cls, lps_from_ijk: np.ndarray) -> Geometry:
        """Build from a 4x4 index (i, j, k) -> LPS affine."""
        affine = np.asarray(lps_from_ijk, dtype=float)
        linear = affine[:3, :3]
        spacing = np.linalg.norm(linear, axis=0)
        return cls(affine[:3, 3].copy(), spacing, linear / spacing)

    @property
    def lps_from_ijk(self) -> np.ndarray:
        """4x4 affine taking homogeneous (i, j, k, 1) to LPS millimetres."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction * self.spacing_mm
        affine[:3, 3] = self.origin_lps_mm
        return affine

    @property
    def ras_from_ijk(self) -> np.ndarray:
        """4x4 affine to RAS millimetres: what a NIfTI header stores for the (i, j, k) array."""
        flip = np.eye(4)
        flip[:3, :3] = RAS_FROM_LPS
        return flip @ self.lps_from_ijk

    def lps_from_index(self, ijk) -> np.ndarray:
        """World LPS (mm) of continuous index ``ijk`` (shape (3,) or (n, 3))."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk * self.spacing_mm @ self.direction.T + self.origin_lps_mm

    def index_from_lps(self, lps_mm) -> np.ndarray:
        """Continuous (i, j, k) index of world LPS point(s) ``lps_mm``."""
        lps = np.asarray(lps_mm, dtype=float)
        return (lps - self.origin_lps_mm) @ self.direction / self.spacing_mm

    def orientation_code(self) -> str:
        """Three letters: the patient direction each of i, j, k points to (e.g. 'LPS', 'RAS')."""
        return "".join(axis_letter(self.direction[:, c]) for c in range(3))

    def is_oblique(self, tolerance: float = 1e-3) -> bool:
        return bool(np.any(np.abs(np.abs(self.direction) - np.round(np.abs(self.direction))) > tolerance))

    def allclose(self, other: Geometry, atol_mm: float = 1e-3) -> bool:
        return (
            np.allclose(self.origin_lps_mm, other.origin_lps_mm, atol=atol_mm)
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-4)
        )


_POSITIVE_LETTERS = "LPS"
_NEGATIVE_LETTERS = "RAI"


def axis_letter(direction_lps) -> str:
    """The patient direction (L, R, P, A, S, I) closest to an LPS unit vector."""
    direction_lps = np.asarray(direction_lps, dtype=float)
    axis = int(np.argmax(np.abs(direction_lps)))
    return _POSITIVE_LETTERS[axis] if direction_lps[axis] > 0 else _NEGATIVE_LETTERS[axis]


def opposite_letter(letter: str) -> str:
    pairs = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}
    return pairs[letter]


@dataclass
class Volume:
    """A 3D image: ``voxels[k, j, i]`` (scalar) or ``voxels[k, j, i, c]`` (colour: uint8 RGB, as
    DICOM colour and palette images are shown), plus its geometry and what it is.

    ``modality`` is the DICOM modality (CT, MR, ...) or "" when unknown; ``units`` says what
    a voxel value means ("HU" for CT after rescale). ``provenance`` is set for every volume a
    generator produced and never cleared: it is what marks a volume synthetic. ``quantity_map``
    is set on a difference, residual or uncertainty map (drawn as a map, not as an image).
    ``source_path`` is the file or DICOM folder it was read from ("" when made in memory),
    ``load_warnings`` what the loader had to say about it; ``derived_from_series`` is the folder of
    the acquired DICOM series a generator's output was made from (its DICOM export refers to
    that series and joins its study); ``blinded_study_image`` marks every
    image of a blinded reader-study package alike (it may be synthetic: readers are not told).
    ``tilt_correction`` says how a load put a gantry-tilted series onto an orthogonal grid.
    ``metadata`` holds a few header values (DICOM keywords: patient, study, window, frame of
    reference) carried along for exports and display.
    """

    voxels: np.ndarray
    geometry: Geometry
    modality: str = ""
    units: str = ""
    name: str = ""
    provenance: Provenance | None = None
    metadata: dict = field(default_factory=dict)
    label_map: LabelMapProvenance | None = None  # set on a segmentation's integer label map
    quantity_map: QuantityMap | None = None  # set on a difference, residual or uncertainty map
    source_path: str = ""
    load_warnings: tuple[str, ...] = ()
    derived_from_series: str = ""
    blinded_study_image: bool = False
    tilt_correction: TiltCorrectionRecord | None = None  # set when the load corrected a gantry tilt

    def __post_init__(self) -> None:
        colour = self.voxels.ndim == 4 and self.voxels.shape[3] == 3 and self.voxels.dtype == np.uint8
        if self.voxels.ndim != 3 and not colour:
            raise ValueError(f"a Volume holds a 3D array (or uint8 RGB), got shape {self.voxels.shape}")

    @property
    def is_colour(self) -> bool:
        """RGB voxels (``voxels[k, j, i, c]``): shown as they are, no window/level."""
        return self.voxels.ndim == 4

    @property
    def shape_kji(self) -> tuple[int, int, int]:
        return tuple(self.voxels.shape[:3])  # type: ignore[return-value]

    @property
    def size_ijk(self) -> tuple[int, int, int]:
        k, j, i = self.voxels.shape[:3]
        return (i, j, k)

    @property
    def is_synthetic(self) -> bool:
        return self.provenance is not None

    @property
    def is_map(self) -> bool:
        """A derived quantity (difference, residual, uncertainty) shown as a map, not an image."""
        return self.quantity_map is not None

    @property
    def is_label_map(self) -> bool:
        """Integer labels a segmentation derived from an image: neither acquired nor synthesized."""
        return self.label_map is not None

    def value_at_index(self, ijk) -> float:
        """Value of the voxel nearest to continuous index ``ijk``; NaN outside the array."""
        i, j, k = (int(round(float(c))) for c in ijk)
        nk, nj, ni = self.voxels.shape[:3]
        if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
            if self.is_colour:  # luma (ITU-R BT.601) of the RGB voxel
                return float(np.dot(self.voxels[k, j, i], (0.299, 0.587, 0.114)))
            return float(self.voxels[k, j, i])
        return float("nan")

    def value_at_lps(self, lps_mm) -> float:
        return self.value_at_index(self.geometry.index_from_lps(lps_mm))

    def with_voxels(self, voxels: np.ndarray, **changes) -> Volume:
        """A new Volume on the same grid with other voxels (and optionally other fields)."""
        if voxels.shape != self.voxels.shape:
            raise ValueError(f"shape {voxels.shape} does not match the grid {self.voxels.shape}")
        return replace(self, voxels=voxels, metadata=dict(self.metadata), **changes)

    def bounds_lps_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS bounding box of the voxel centres."""
        ni, nj, nk = self.size_ijk
        corners = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)])
        world = self.geometry.lps_from_index(corners)
        return world.min(axis=0), world.max(axis=0)
