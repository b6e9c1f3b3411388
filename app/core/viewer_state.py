"""Linked viewing state shared by every panel: the cursor in LPS mm and the display settings.

Qt-free on purpose: panels observe it through ``Event``s, and tests drive it without a display.
Zoom and pan are linked by the panels themselves (same scene coordinates per plane, see
``app.core.planes``), so they are not duplicated here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from app.core.display import (
    CT_PRESETS_HU,
    WindowLevel,
    default_window,
    header_or_robust_window,
    percentile_window,
    robust_window,
)
from app.core.events import Event
from app.core.planes import PLANE_AXES, Plane, slice_step_mm
from app.core.volume import Volume


@dataclass(frozen=True)
class DisplayState:
    """How original and synthesized panels are drawn (they always share it)."""

    window: WindowLevel
    colormap: str = "gray"
    invert: bool = False
    threshold: float | None = None  # mask overlay of voxels above this value, on every panel


class ViewerState:
    """Cursor (LPS mm) and shared display; emits ``cursor_changed`` and ``display_changed``."""

    def __init__(self, reference: Volume, display: DisplayState | None = None) -> None:
        """``display``: how to draw (a volume's remembered window/level); default: the header's
        window, else the modality's."""
        self.reference = reference
        self.cursor_changed = Event()
        self.display_changed = Event()
        low, high = reference.bounds_lps_mm()
        self._cursor_lps_mm = (low + high) / 2.0
        # Snap the initial cursor onto a voxel centre so the first slice is exact.
        self._cursor_lps_mm = self.snap_to_voxel(self._cursor_lps_mm)
        self._display = display or DisplayState(window=initial_window(reference), invert=initial_invert(reference))

    @property
    def cursor_lps_mm(self) -> np.ndarray:
        return self._cursor_lps_mm.copy()

    @property
    def display(self) -> DisplayState:
        return self._display

    def snap_to_voxel(self, lps_mm) -> np.ndarray:
        index = np.round(self.reference.geometry.index_from_lps(lps_mm))
        return self.reference.geometry.lps_from_index(index)

    def set_cursor(self, lps_mm) -> None:
        lps = np.asarray(lps_mm, dtype=float).reshape(3)
        if not np.all(np.isfinite(lps)) or np.allclose(lps, self._cursor_lps_mm, atol=1e-9):
            return
        self._cursor_lps_mm = lps
        self.cursor_changed.emit(self.cursor_lps_mm)

    def step(self, plane: Plane, slices: int) -> None:
        """Move the cursor ``slices`` reference slices along the plane normal, staying inside."""
        normal = PLANE_AXES[plane].normal_lps
        target = self._cursor_lps_mm + slices * slice_step_mm(self.reference, plane) * normal
        low, high = self.reference.bounds_lps_mm()
        position = float(
            np.clip(target @ normal, min(low @ normal, high @ normal), max(low @ normal, high @ normal))
        )
        target = target + (position - target @ normal) * normal
        self.set_cursor(target)

    def set_display(self, **changes) -> None:
        new = replace(self._display, **changes)
        if new != self._display:
            self._display = new
            self.display_changed.emit(new)

    def set_window(self, window: WindowLevel) -> None:
        self.set_display(window=window)

    def adjust_window(self, delta_center: float, delta_width: float) -> None:
        """Right-drag window/level: shift the centre and widen/narrow the window."""
        window = self._display.window
        self.set_window(WindowLevel(window.center + delta_center, max(window.width + delta_width, 1e-3)))

    def apply_preset(self, name: str) -> None:
        """A CT preset by name (Hounsfield units), 'Robust' (background to the anatomy's 99.5th
        percentile), 'MR percentiles' (1st..99th) or 'Full range'."""
        if name in CT_PRESETS_HU:
            self.set_window(CT_PRESETS_HU[name])
        elif name == "Robust":
            self.set_window(robust_window(self.reference.voxels))
        elif name == "MR percentiles":
            self.set_window(percentile_window(self.reference.voxels, 1.0, 99.0))
        elif name == "Full range":
            self.set_window(percentile_window(self.reference.voxels, 0.0, 100.0))
        else:
            raise ValueError(f"unknown window preset {name!r}")


HEADER_WINDOW_MAX_CLIPPED = 0.01  # an MR header window that whites out more anatomy is not used


def initial_window(volume: Volume) -> WindowLevel:
    """The window the series' own header suggests (DICOM Window Center/Width), else the
    modality default (CT soft tissue, otherwise the robust window). An MR header window that
    draws more than 1 % of the anatomy pure white is ignored: MR values have no fixed scale and
    headers carry windows of another reconstruction (the demo's W900/L450 for data up to 1020
    whited out 5 % of the brain)."""
    center, width = volume.metadata.get("WindowCenter"), volume.metadata.get("WindowWidth")
    try:
        if center is not None and width is not None and float(width) > 0:
            header = WindowLevel(float(center), float(width))
            if volume.modality.upper() == "CT":
                return header
            return header_or_robust_window(volume.voxels, header, HEADER_WINDOW_MAX_CLIPPED)
    except (TypeError, ValueError):
        pass
    return default_window(volume.voxels, volume.modality)


def initial_invert(volume: Volume) -> bool:
    """True for MONOCHROME1 images (most CR/DX radiographs), whose lowest stored value is meant
    to be shown white: drawn inverted, values untouched (readouts show what is stored)."""
    return str(volume.metadata.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"


CT_PRESET_NAMES = ("Brain", "Lung", "Bone", "Abdomen", "Soft tissue", "Full range")
OTHER_PRESET_NAMES = ("Robust", "MR percentiles", "Full range")  # no Hounsfield units: no CT windows
PRESET_KEYS = max(len(CT_PRESET_NAMES), len(OTHER_PRESET_NAMES))  # Alt+1 .. Alt+N


def presets_for(modality: str) -> tuple[str, ...]:
    """The window presets that mean something for a modality (CT presets are in HU)."""
    return CT_PRESET_NAMES if modality.upper() == "CT" else OTHER_PRESET_NAMES
