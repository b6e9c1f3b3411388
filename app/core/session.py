"""The viewing session, Qt-free: the open volumes, what is shown and how.

What is shown is one volume (the current one) in a single-volume layout, or the current volume
compared with others. Each shown volume keeps its own display state (window/level, colormap):
choosing a map or another partner for the compare never resets the window the reader set. The
window and the tool docks observe this model through its events and change it through its
methods; none of them stores what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from app.core.events import Event
from app.core.label_overlays import SegmentationOverlays
from app.core.planes import Plane
from app.core.viewer_state import DisplayState, ViewerState
from app.core.volume import Volume


class Layout(StrEnum):
    """How the panels are arranged; the value is the name the CLI and the settings use."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
    MPR = "mpr"
    TWO_BY_TWO = "2x2"
    COMPARE = "compare"


class Session:
    """Open volumes, the current volume, the compare set, the layout, displays and the cursor.

    Events: ``volumes_changed(volumes)`` when a volume is opened; ``view_changed()`` when what is
    shown (current volume, compare set, layout) changed and the panels must be rebuilt;
    ``display_changed(volume, display)`` when the shown volume's display changed;
    ``errors(title, message)`` when something the user asked for failed (``report_error``);
    ``label_display_changed(overlays)`` when the label overlays were shown, hidden or faded.
    """

    def __init__(self, layout: Layout = Layout.MPR, default_colormap: str = "gray") -> None:
        self.volumes_changed = Event()
        self.view_changed = Event()
        self.display_changed = Event()
        self.errors = Event()
        self.label_display_changed = Event()
        self.default_colormap = default_colormap  # for a volume shown for the first time
        self._volumes: list[Volume] = []
        self._current: Volume | None = None
        self._compare: tuple[Volume, ...] = ()
        self._compare_planes: tuple[Plane, ...] = tuple(Plane)
        self._layout = Layout.MPR if layout is Layout.COMPARE else Layout(layout)
        self._viewer: ViewerState | None = None
        self._displays: dict[int, tuple[Volume, DisplayState]] = {}  # id(volume) -> (volume, display)
        self._segmentation: SegmentationOverlays | None = None

    # ----- what is open and shown -----------------------------------------------------------
    @property
    def volumes(self) -> list[Volume]:
        return list(self._volumes)

    @property
    def current(self) -> Volume | None:
        return self._current

    @property
    def compare(self) -> tuple[Volume, ...]:
        """The volumes compared with the current one (empty outside the compare layout)."""
        return self._compare

    @property
    def compare_planes(self) -> tuple[Plane, ...]:
        return self._compare_planes

    @property
    def pair(self) -> tuple[Volume, Volume] | None:
        """(original, first compared volume) while a compare is shown."""
        return (self._current, self._compare[0]) if self._current is not None and self._compare else None

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def viewer(self) -> ViewerState | None:
        """Cursor and display of what is shown (None before a volume is shown)."""
        return self._viewer

    def add_volume(self, volume: Volume) -> None:
        """List a volume as open without showing it."""
        if not any(known is volume for known in self._volumes):
            self._volumes.append(volume)
            self.volumes_changed.emit(self.volumes)

    def show(self, volume: Volume) -> None:
        """Show one volume in the single-volume layout (MPR when the compare was shown)."""
        self.add_volume(volume)
        if self._layout is Layout.COMPARE:
            self._layout = Layout.MPR
        self._present(volume, (), volume)

    def replace_volume(self, old: Volume, new: Volume) -> None:
        """Put ``new`` where ``old`` was (the same series read again): in the open volumes, and
        on screen (same display and cursor) only where ``old`` was shown or compared."""
        index = next((n for n, volume in enumerate(self._volumes) if volume is old), None)
        if index is None:
            self.add_volume(new)
            return
        self._volumes[index] = new
        self.volumes_changed.emit(self.volumes)
        display = self.display_of(old)
        self._displays.pop(id(old), None)
        if display is not None:
            self._displays[id(new)] = (new, display)
        shown = (self._current, *self._compare)
        if not any(volume is old for volume in shown):
            return
        cursor = self._viewer.cursor_lps_mm if self._viewer is not None else None
        reference = self._viewer.reference if self._viewer is not None else old

        def swap(volume: Volume) -> Volume:
            return new if volume is old else volume

        self._present(swap(self._current), tuple(swap(v) for v in self._compare), swap(reference))
        if cursor is not None:
            self._viewer.set_cursor(cursor)

    def show_compare(
        self,
        original: Volume,
        others: Iterable[Volume],
        reference: Volume | None = None,
        planes: Iterable[Plane] | None = None,
    ) -> None:
        """original | others... | difference. ``reference`` (default: ``original``) sets slice
        steps and the first cursor; ``planes`` default to all three."""
        others = tuple(others)
        if not others:
            raise ValueError("compare needs at least one volume besides the original")
        for volume in (original, *others):
            self.add_volume(volume)
        self._compare_planes = tuple(planes or Plane)
        self._layout = Layout.COMPARE
        self._present(original, others, reference or original)

    def set_layout(self, layout: Layout | str) -> bool:
        """Arrange the panels; False (nothing changes) for a compare with nothing to compare."""
        layout = Layout(layout)
        if layout is Layout.COMPARE:
            if self._compare:
                return True
            others = [volume for volume in self._volumes if volume is not self._current]
            if self._current is None or not others:
                return False
            self.show_compare(self._current, others[:3])
            return True
        self._layout = layout
        if self._current is not None:
            self._present(self._current, (), self._current)
        return True

    # ----- label maps of a consistency check -------------------------------------------------
    @property
    def segmentation(self) -> SegmentationOverlays | None:
        """The label overlays of the compared pair shown now (None when they belong to another)."""
        overlays = self._segmentation
        pair = self.pair
        if overlays is None or pair is None or not overlays.belongs_to(*pair):
            return None
        return overlays

    def set_segmentation(self, overlays: SegmentationOverlays | None) -> None:
        """Show a consistency check's label maps over the compared pair they were made from
        (the panels are rebuilt with the disagreement column, the cursor kept); None: remove them."""
        shown_before = self.segmentation is not None
        self._segmentation = overlays
        if (shown_before or self.segmentation is not None) and self._viewer is not None:
            self._present(self._current, self._compare, self._viewer.reference)

    def set_label_display(self, shown: bool | None = None, opacity: float | None = None) -> None:
        """Show, hide or fade the label overlays of the original and synthesized panels."""
        if self._segmentation is None:
            return
        self._segmentation = self._segmentation.with_display(shown, opacity)
        if self.segmentation is not None:
            self.label_display_changed.emit(self._segmentation)

    def report_error(self, title: str, message: str) -> None:
        """Tell the user that something failed (the window shows it in its notification area)."""
        self.errors.emit(title, message)

    # ----- display state ------------------------------------------------------------------
    def display_of(self, volume: Volume) -> DisplayState | None:
        """The display last used for ``volume`` (None if it was never shown)."""
        entry = self._displays.get(id(volume))
        return entry[1] if entry is not None and entry[0] is volume else None

    def _present(self, current: Volume, compare: tuple[Volume, ...], reference: Volume) -> None:
        previous = self._viewer
        display = self.display_of(current)
        viewer = ViewerState(reference, display)
        if display is None and self.default_colormap != viewer.display.colormap:
            viewer.set_display(colormap=self.default_colormap)
        if previous is not None and self._current is current:
            viewer.set_cursor(previous.cursor_lps_mm)  # same volume, another view: stay in place
        if previous is not None:
            previous.display_changed.disconnect(self._remember)
        self._current, self._compare, self._viewer = current, compare, viewer
        self._remember(viewer.display)
        viewer.display_changed.connect(self._remember)
        self.view_changed.emit()

    def _remember(self, display: DisplayState) -> None:
        if self._current is None:
            return
        self._displays[id(self._current)] = (self._current, display)
        self.display_changed.emit(self._current, display)
