"""Annotation types, every coordinate in world LPS millimetres.

Because nothing is stored in voxel indices or screen pixels, an annotation drawn on one panel
lands at the same anatomical place on every other panel (synthesized, difference, another
series of different geometry). Planar regions (rectangle, ellipse, freehand) carry the plane
they were drawn in: a centre or vertices plus two in-plane unit axes ``axis_u_lps`` (screen
right) and ``axis_v_lps`` (screen down) of the view where they were drawn.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields, replace

import numpy as np


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _vector(value) -> np.ndarray:
    vector = np.asarray(value, dtype=float).reshape(3)
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"coordinates must be finite, got {vector}")
    return vector


def _unit(value) -> np.ndarray:
    vector = _vector(value)
    norm = float(np.linalg.norm(vector))
    if norm < 1e-9:
        raise ValueError("an in-plane axis must not be the zero vector")
    return vector / norm


@dataclass(frozen=True, eq=False)
class Annotation:
    """Fields every annotation has: a stable id and a free-text label."""

    label: str = ""
    annotation_id: str = field(default_factory=_new_id)

    kind = "annotation"

    def to_dict(self) -> dict:
        data: dict = {"kind": self.kind}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            data[item.name] = value
        return data

    def moved(self, offset_lps_mm) -> Annotation:
        """A copy translated by ``offset_lps_mm`` (same id: it is the same annotation)."""
        offset = _vector(offset_lps_mm)
        changes = {}
        for item in fields(self):
            if item.name.endswith("_lps") and not item.name.startswith("axis_"):
                changes[item.name] = np.asarray(getattr(self, item.name)) + offset
        return replace(self, **changes)

    def same_as(self, other: Annotation) -> bool:
        """Equal in every field (arrays compared exactly)."""
        return self.to_dict() == other.to_dict()


@dataclass(frozen=True, eq=False)
class PointMarker(Annotation):
    """A marker at one world point with a label (e.g. 'lesion 1')."""

    position_lps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    kind = "point"

    def __post_init__(self) -> None:
        object.__setattr__(self, "position_lps", _vector(self.position_lps))


@dataclass(frozen=True, eq=False)
class Ruler(Annotation):
    """A straight distance between two world points."""

    start_lps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    end_lps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    kind = "ruler"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_lps", _vector(self.start_lps))
        object.__setattr__(self, "end_lps", _vector(self.end_lps))

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(self.end_lps - self.start_lps))


@dataclass(frozen=True, eq=False)
class Angle(Annotation):
    """The angle at ``vertex_lps`` between the arms to ``first_lps`` and ``second_lps``."""

    first_lps: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))
    vertex_lps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    second_lps: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    kind = "angle"

    def __post_init__(self) -> None:
        for name in ("first_lps", "vertex_lps", "second_lps"):
            object.__setattr__(self, name, _vector(getattr(self, name)))

    @property
    def angle_deg(self) -> float:
        arm_a = self.first_lps - self.vertex_lps
        arm_b = self.second_lps - self.vertex_lps
        norms = float(np.linalg.norm(arm_a) * np.linalg.norm(arm_b))
        if norms == 0.0:
            return float("nan")
        cosine = float(np.clip(arm_a @ arm_b / norms, -1.0, 1.0))
        return float(np.degrees(np.arccos(cosine)))


@dataclass(frozen=True, eq=False)
class PlanarRegion(Annotation):
    """A region in a plane; ROI statistics are computed over the voxels it covers."""

    axis_u_lps: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))
    axis_v_lps: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))

    def __post_init__(self) -> None:
        axis_u = _unit(self.axis_u_lps)
        axis_v = _unit(self.axis_v_lps)
        if abs(float(axis_u @ axis_v)) > 1e-4:
            raise ValueError("the in-plane axes of a region must be perpendicular")
        object.__setattr__(self, "axis_u_lps", axis_u)
        object.__setattr__(self, "axis_v_lps", axis_v)

    @property
    def normal_lps(self) -> np.ndarray:
        return np.cross(self.axis_u_lps, self.axis_v_lps)

    @property
    def plane_point_lps(self) -> np.ndarray:
        raise NotImplementedError

    def contains_uv(self, u_mm: np.ndarray, v_mm: np.ndarray) -> np.ndarray:
        """Whether in-plane coordinates (mm from ``plane_point_lps`` along u, v) are inside."""
        raise NotImplementedError

    def outline_lps(self, samples: int = 64) -> np.ndarray:
        """(n, 3) world points around the boundary, for drawing and for DICOM SR."""
        raise NotImplementedError

    @property
    def area_mm2(self) -> float:
        raise NotImplementedError

    def uv_from_lps(self, lps_mm) -> np.ndarray:
        """In-plane (u, v) mm of world points, relative to ``plane_point_lps``."""
        offset = np.asarray(lps_mm, dtype=float) - self.plane_point_lps
        return np.stack([offset @ self.axis_u_lps, offset @ self.axis_v_lps], axis=-1)


@dataclass(frozen=True, eq=False)
class _CenteredRegion(PlanarRegion):
    center_lps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    half_width_mm: float = 1.0  # along axis u
    half_height_mm: float = 1.0  # along axis v

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "center_lps", _vector(self.center_lps))
        if not (self.half_width_mm > 0 and self.half_height_mm > 0):
            raise ValueError("a region needs a positive width and height")
        object.__setattr__(self, "half_width_mm", float(self.half_width_mm))
        object.__setattr__(self, "half_height_mm", float(self.half_height_mm))

    @property
    def plane_point_lps(self) -> np.ndarray:
        return self.center_lps

    def _lps_from_uv(self, uv: np.ndarray) -> np.ndarray:
        return self.center_lps + uv[:, :1] * self.axis_u_lps + uv[:, 1:2] * self.axis_v_lps


@dataclass(frozen=True, eq=False)
class RectangleRoi(_CenteredRegion):
    kind = "rectangle"

    def contains_uv(self, u_mm, v_mm):
        return (np.abs(u_mm) <= self.half_width_mm) & (np.abs(v_mm) <= self.half_height_mm)

    def outline_lps(self, samples: int = 4) -> np.ndarray:
        w, h = self.half_width_mm, self.half_height_mm
        return self._lps_from_uv(np.array([[-w, -h], [w, -h], [w, h], [-w, h]]))

    @property
    def area_mm2(self) -> float:
        return 4.0 * self.half_width_mm * self.half_height_mm


@dataclass(frozen=True, eq=False)
class EllipseRoi(_CenteredRegion):
    kind = "ellipse"

    def contains_uv(self, u_mm, v_mm):
        return (u_mm / self.half_width_mm) ** 2 + (v_mm / self.half_height_mm) ** 2 <= 1.0

    def outline_lps(self, samples: int = 64) -> np.ndarray:
        theta = np.linspace(0.0, 2.0 * np.pi, samples, endpoint=False)
        uv = np.column_stack([self.half_width_mm * np.cos(theta), self.half_height_mm * np.sin(theta)])
        return self._lps_from_uv(uv)

    def axis_endpoints_lps(self) -> np.ndarray:
        """Major then minor axis end points (4, 3): DICOM's ELLIPSE graphic data."""
        w, h = self.half_width_mm, self.half_height_mm
        if w >= h:
            uv = np.array([[-w, 0.0], [w, 0.0], [0.0, -h], [0.0, h]])
        else:
            uv = np.array([[0.0, -h], [0.0, h], [-w, 0.0], [w, 0.0]])
        return self._lps_from_uv(uv)

    @property
    def area_mm2(self) -> float:
        return float(np.pi * self.half_width_mm * self.half_height_mm)


@dataclass(frozen=True, eq=False)
class FreehandRoi(PlanarRegion):
    """A closed polygon drawn by hand; vertices are world points in one plane."""

    vertices_lps: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    kind = "freehand"

    def __post_init__(self) -> None:
        super().__post_init__()
        vertices = np.asarray(self.vertices_lps, dtype=float)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
            raise ValueError("a freehand ROI needs at least three (x, y, z) vertices")
        if not np.all(np.isfinite(vertices)):
            raise ValueError("freehand ROI vertices must be finite")
        object.__setattr__(self, "vertices_lps", vertices)

    @property
    def plane_point_lps(self) -> np.ndarray:
        return self.vertices_lps[0]

    def _polygon_uv(self) -> np.ndarray:
        return self.uv_from_lps(self.vertices_lps)

    def contains_uv(self, u_mm, v_mm):
        return points_in_polygon(np.asarray(u_mm), np.asarray(v_mm), self._polygon_uv())

    def outline_lps(self, samples: int = 0) -> np.ndarray:
        return self.vertices_lps.copy()

    @property
    def area_mm2(self) -> float:
        u, v = self._polygon_uv().T
        return float(0.5 * abs(np.dot(u, np.roll(v, -1)) - np.dot(v, np.roll(u, -1))))


def points_in_polygon(u: np.ndarray, v: np.ndarray, polygon_uv: np.ndarray) -> np.ndarray:
    """Even-odd rule: which points (u, v) lie inside the closed polygon (vectorised)."""
    inside = np.zeros(np.broadcast(u, v).shape, dtype=bool)
    pu, pv = polygon_uv[:, 0], polygon_uv[:, 1]
    for index in range(len(polygon_uv)):
        u1, v1 = pu[index - 1], pv[index - 1]
        u2, v2 = pu[index], pv[index]
        crosses = (v1 > v) != (v2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            u_at_v = u1 + (v - v1) * (u2 - u1) / (v2 - v1)
        inside ^= crosses & (u < u_at_v)
    return inside


ANNOTATION_TYPES: dict[str, type[Annotation]] = {
    cls.kind: cls for cls in (PointMarker, Ruler, Angle, RectangleRoi, EllipseRoi, FreehandRoi)
}


def annotation_from_dict(data: dict) -> Annotation:
    """Rebuild an annotation from ``to_dict`` output; a clear error for unknown kinds."""
    kind = data.get("kind")
    cls = ANNOTATION_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown annotation kind {kind!r}; known: {', '.join(ANNOTATION_TYPES)}")
    names = {item.name for item in fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in names})
