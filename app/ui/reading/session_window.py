"""The reading-session window: full screen, minimal, blinded.

Shows one case (or a 2AFC pair side by side) under neutral labels, the study's questions, Next,
progress and Pause. Nothing on screen names a file, path, UID, series, plugin or truth: images
come from the blinded reading package, panels are titled "A"/"B" (or nothing), and error
messages name only the opaque item id. Answers are recorded (committed) by the Qt-free
``ReadingSession`` before the next case is drawn.

No SYNTHETIC label shows here, by design and only here: package images carry no provenance
(``app.readerstudy.package``), because the label would answer the question being asked; the
truth file keeps which images are synthetic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.display import default_window
from app.core.planes import Plane
from app.core.viewer_state import ViewerState
from app.core.volume import Volume
from app.readerstudy.session import AnswerError, ReadingSession
from app.ui.reading.questions import QuestionWidget, question_widget
from app.ui.slice_view import PanelContent, SliceView

WINDOW_TITLE = "Reading session"


class ReadingSliceView(SliceView):
    """A SliceView that honours the study's scroll and window/level permissions, without crosshair."""

    labels_blinded_study_images = False  # every case carries the flag alike; readers know

    def __init__(self, state, content, allow_scroll: bool, window_locked: bool, parent=None) -> None:
        self.allow_scroll = allow_scroll
        self.window_locked = window_locked
        super().__init__(state, content, Plane.AXIAL, parent)
        # Nothing but the image and its orientation letters: no crosshair, and no title or
        # position/window read-out (they could tell images apart by spacing or intensity range).
        self.set_crosshair_visible(False)
        self.set_overlay_text_visible(False)
        # The reader's localisation click, drawn on the slice it was made on.
        self.mark_lps_mm: np.ndarray | None = None
        self.mark_item = pg.ScatterPlotItem(
            size=16, symbol="+", pen=pg.mkPen((0, 220, 255), width=2), brush=None, pxMode=True
        )
        self.mark_item.setZValue(20)
        self.view_box.addItem(self.mark_item, ignoreBounds=True)
        self.mark_item.hide()
        state.cursor_changed.connect(lambda *_: self._place_mark())

    def show_mark(self, lps_mm) -> None:
        """Mark a clicked location (LPS mm), or remove the mark (None)."""
        self.mark_lps_mm = None if lps_mm is None else np.asarray(lps_mm, dtype=float)
        self._place_mark()

    def mark_visible(self) -> bool:
        return self.mark_item.isVisible()

    def _place_mark(self) -> None:
        if self.mark_lps_mm is None:
            self.mark_item.hide()
            return
        geometry = self.volume.geometry
        axis = int(np.argmax(np.abs(geometry.direction[2, :])))  # index axis along S (axial normal)
        on_slice = (
            abs(self.state.cursor_lps_mm[2] - self.mark_lps_mm[2]) <= geometry.spacing_mm[axis] / 2 + 1e-6
        )
        point = self.lps_to_scene(self.mark_lps_mm)
        self.mark_item.setData([point.x()], [point.y()])
        self.mark_item.setVisible(bool(on_slice))

    def slice_position(self) -> tuple[int, int]:
        """(number of the slice shown, 1-based; number of slices) along the axial normal."""
        geometry = self.volume.geometry
        axis = int(np.argmax(np.abs(geometry.direction[2, :])))
        index = int(np.rint(geometry.index_from_lps(self.state.cursor_lps_mm)[axis]))
        total = int(self.volume.size_ijk[axis])
        return min(max(index, 0), total - 1) + 1, total

    def scroll(self, slices: int) -> None:
        if self.allow_scroll:
            super().scroll(slices)

    def drag_window(self, dx_pixels: float, dy_pixels: float) -> None:
        if not self.window_locked:
            super().drag_window(dx_pixels, dy_pixels)

    def move_cursor_to_scene(self, point_mm) -> None:
        # A click marks a location (localise question); it must not move the slice.
        self.last_click_lps_mm = self.scene_to_lps(point_mm)
        self.clicked.emit()

    clicked = QtCore.Signal()


class ReadingWindow(QtWidgets.QWidget):
    """One reader's session. ``load_volume`` reads a package image (injected: the UI has no io)."""

    def __init__(
        self,
        session: ReadingSession,
        load_volume: Callable[[Path], Volume],
        clock: Callable[[], float] = time.monotonic,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.load_volume = load_volume
        self.clock = clock
        self.options = session.options
        self.setWindowTitle(WINDOW_TITLE)
        self.views: list[ReadingSliceView] = []
        self.question_widgets: list[QuestionWidget] = []
        self._shown_since: float | None = None
        self._time_up = False

        self.progress_label = QtWidgets.QLabel()
        self.timer_label = QtWidgets.QLabel()
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.clicked.connect(self.pause)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.progress_label)
        top.addStretch(1)
        top.addWidget(self.timer_label)
        top.addWidget(self.pause_button)

        self.image_area = QtWidgets.QWidget()
        self.image_layout = QtWidgets.QHBoxLayout(self.image_area)
        self.image_layout.setContentsMargins(0, 0, 0, 0)
        self.hidden_label = QtWidgets.QLabel("Time is up for this case: please answer.")
        self.hidden_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.image_stack = QtWidgets.QStackedWidget()
        self.image_stack.addWidget(self.image_area)
        self.image_stack.addWidget(self.hidden_label)

        self.questions_box = QtWidgets.QWidget()
        self.questions_layout = QtWidgets.QVBoxLayout(self.questions_box)
        self.feedback_label = QtWidgets.QLabel()
        self.feedback_label.setStyleSheet("color: #80e080; font-weight: bold;")
        self.feedback_label.setWordWrap(True)
        self.message_label = QtWidgets.QLabel()
        self.message_label.setStyleSheet("color: #ff8080;")
        self.message_label.setWordWrap(True)
        self.message_label.setMinimumHeight(48)
        self.previous_button = QtWidgets.QPushButton("Previous")
        self.previous_button.clicked.connect(self.previous)
        self.previous_button.setVisible(bool(self.options.get("allow_case_navigation")))
        self.next_button = QtWidgets.QPushButton("Next")
        self.next_button.setDefault(True)
        self.next_button.clicked.connect(self.next)
        side = QtWidgets.QVBoxLayout()
        side.addWidget(self.questions_box)
        side.addStretch(1)
        side.addWidget(self.feedback_label)
        side.addWidget(self.message_label)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.previous_button)
        buttons.addWidget(self.next_button)
        side.addLayout(buttons)
        side_widget = QtWidgets.QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(340)

        reading = QtWidgets.QWidget()
        reading_layout = QtWidgets.QVBoxLayout(reading)
        reading_layout.addLayout(top)
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.image_stack, 1)
        body.addWidget(side_widget)
        reading_layout.addLayout(body, 1)

        self.paused_page = QtWidgets.QWidget()
        paused_layout = QtWidgets.QVBoxLayout(self.paused_page)
        paused_label = QtWidgets.QLabel("Paused. Your answers so far are saved.")
        paused_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume)
        self.stop_button = QtWidgets.QPushButton("Close and continue later")
        self.stop_button.clicked.connect(self.close)
        paused_layout.addStretch(1)
        paused_layout.addWidget(paused_label)
        paused_layout.addWidget(self.resume_button, 0, QtCore.Qt.AlignmentFlag.AlignCenter)
        paused_layout.addWidget(self.stop_button, 0, QtCore.Qt.AlignmentFlag.AlignCenter)
        paused_layout.addStretch(1)

        self.finished_page = QtWidgets.QWidget()
        finished_layout = QtWidgets.QVBoxLayout(self.finished_page)
        finished_label = QtWidgets.QLabel("All cases are read. Thank you.")
        finished_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        close_button = QtWidgets.QPushButton("Close")
        close_button.clicked.connect(self.close)
        finished_layout.addStretch(1)
        finished_layout.addWidget(finished_label)
        finished_layout.addWidget(close_button, 0, QtCore.Qt.AlignmentFlag.AlignCenter)
        finished_layout.addStretch(1)

        self.pages = QtWidgets.QStackedWidget()
        for page in (reading, self.paused_page, self.finished_page):
            self.pages.addWidget(page)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addWidget(self.pages)

        self.tick = QtCore.QTimer(self)
        self.tick.setInterval(500)
        self.tick.timeout.connect(self._on_tick)
        self.tick.start()
        self.show_current()

    # ----- timing -----------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return 0.0 if self._shown_since is None else max(0.0, self.clock() - self._shown_since)

    def _on_tick(self) -> None:
        limit = self.options.get("time_limit_s")
        if not limit or self._shown_since is None:
            self.timer_label.setText("")
            return
        remaining = max(0.0, float(limit) - self._elapsed())
        self.timer_label.setText(f"{int(remaining + 0.999)} s left")
        if remaining <= 0 and not self._time_up:
            self._time_up = True
            self.image_stack.setCurrentWidget(self.hidden_label)

    # ----- showing a case -------------------------------------------------------------------------
    def _clear_case(self) -> None:
        for view in self.views:
            view.detach()
            view.setParent(None)
            view.deleteLater()
        self.views = []
        for widget in self.question_widgets:
            widget.setParent(None)
            widget.deleteLater()
        self.question_widgets = []
        while self.image_layout.count():
            item = self.image_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().setParent(None)

    def show_current(self) -> None:
        """Draw the session's current item (or the end page), and start its clock."""
        self._clear_case()
        self.message_label.setText("")
        item = self.session.current
        if item is None:
            self._shown_since = None
            self.pages.setCurrentWidget(self.finished_page)
            return
        self.pages.setCurrentIndex(0)
        kind, number, total = self.session.progress()
        self.progress_label.setText(
            f"Practice case {number} of {total}" if kind == "practice" else f"Case {number} of {total}"
        )
        paired = len(item.image_ids) == 2
        for side, image_id in zip(("A", "B"), item.image_ids, strict=False):
            column = QtWidgets.QVBoxLayout()
            try:
                volume = self.load_volume(self.session.image_path(image_id))
            except Exception:  # noqa: BLE001 - never show a path or a traceback to a reader
                error = QtWidgets.QLabel(f"This image could not be displayed (case {item.item_id}).")
                self.image_layout.addWidget(error, 1)
                error.show()
                continue
            content = PanelContent(
                volume,
                fixed_window=default_window(volume.voxels, ""),
                title=side if paired else " ",
                window_adjustable=not self.options.get("window_level_locked", False),
            )
            view = ReadingSliceView(
                ViewerState(volume),
                content,
                allow_scroll=self.options.get("allow_scroll", True),
                window_locked=self.options.get("window_level_locked", False),
            )
            view.image_id = image_id
            view.clicked.connect(lambda v=view: self._on_view_clicked(v))
            self.views.append(view)
            holder = QtWidgets.QWidget()
            holder.setLayout(column)
            if paired:
                caption = QtWidgets.QLabel(f"Image {side}")
                caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                column.addWidget(caption)
            column.addWidget(view, 1)
            position = QtWidgets.QLabel()
            position.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            view.position_label = position
            view.state.cursor_changed.connect(lambda *_, v=view: self._show_position(v))
            self._show_position(view)
            column.addWidget(position)
            self.image_layout.addWidget(holder, 1)
            holder.show()
        stored = self.session.stored_answers(item.item_id)
        for question in self.session.questions_for(item.item_id):
            widget = question_widget(question, item.image_ids)
            if question.id in stored:
                widget.set_value(stored[question.id])
            self.question_widgets.append(widget)
            self.questions_layout.addWidget(widget)
            widget.show()
            if question.type == "localise":
                widget.changed.connect(self._show_marks)
                self._show_marks(widget.value())
        self.previous_button.setEnabled(self.session.position > 0)
        self._time_up = False
        self.image_stack.setCurrentWidget(self.image_area)
        self._shown_since = self.clock()
        self._on_tick()

    @staticmethod
    def _show_position(view: ReadingSliceView) -> None:
        number, total = view.slice_position()
        view.position_label.setText(f"Slice {number} of {total}")

    def _show_marks(self, value: object) -> None:
        """The localisation mark on the image it was made on (none on the other of a pair)."""
        for view in self.views:
            mine = isinstance(value, dict) and value.get("image_id") == view.image_id
            view.show_mark(value["lps_mm"] if mine else None)

    def _on_view_clicked(self, view: ReadingSliceView) -> None:
        for widget in self.question_widgets:
            if widget.question.type == "localise":
                widget.set_value(
                    {"image_id": view.image_id, "lps_mm": [float(x) for x in view.last_click_lps_mm]}
                )

    # ----- actions ----------------------------------------------------------------------------------
    def collect_answers(self) -> dict[str, object]:
        values = {}
        for widget in self.question_widgets:
            value = widget.value()
            if value is not None:
                values[widget.question.id] = value
        return values

    def next(self) -> bool:
        """Record the answers (committed) and show the next case; False with a message if refused."""
        if self.session.current is None:
            return False
        answered = self.session.current.item_id
        try:
            self.session.submit(self.collect_answers(), self._elapsed())
        except AnswerError as error:
            self.message_label.setText(str(error))
            return False
        except Exception:  # noqa: BLE001 - storage failure: the answer was NOT recorded
            self.message_label.setText("Your answer could not be saved. Please tell the study coordinator.")
            return False
        self.show_current()
        # After the answer is recorded, never before: the truth of a practice case, when asked.
        self.feedback_label.setText(self.session.practice_feedback(answered) or "")
        return True

    def previous(self) -> None:
        try:
            self.session.go_to(self.session.position - 1, self._elapsed())
        except AnswerError as error:
            self.message_label.setText(str(error))
            return
        self.show_current()

    def pause(self) -> None:
        if self.session.current is None or self.pages.currentWidget() is self.paused_page:
            return
        try:
            self.session.leave(self._elapsed(), "pause")
        except Exception:  # noqa: BLE001 - the time is informative; pausing must always work
            pass
        self._shown_since = None
        self.pages.setCurrentWidget(self.paused_page)

    def resume(self) -> None:
        self.pages.setCurrentIndex(0)
        self._shown_since = self.clock()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        """Escape pauses (the way out of full screen); Ctrl+Return is Next."""
        control = event.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier
        if event.key() == QtCore.Qt.Key.Key_Escape:
            self.pause()
        elif control and event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            self.next()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:
        if self._shown_since is not None and self.session.current is not None:
            try:
                self.session.leave(self._elapsed(), "close")
            except Exception:  # noqa: BLE001 - closing must never fail; time is only informative
                pass
            self._shown_since = None
        self.tick.stop()
        super().closeEvent(event)
