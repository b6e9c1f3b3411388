"""One path from any failure to the user: a notification area in the status bar and a dialog.

Fed by the exception hooks (``sys.excepthook`` and ``threading.excepthook``: an exception no code
caught, on the UI thread or any other), by the session model's ``errors`` event and by the window
itself (a file that cannot be opened, a tool that cannot start). Every notice is kept, with its
details, for the dialog the area opens on a click; the last one stays in view.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass

from PySide6 import QtCore, QtWidgets


@dataclass(frozen=True)
class Notice:
    title: str  # what failed, in the user's words ("Could not save the annotations")
    message: str  # why, one line
    details: str = ""  # a traceback or the long story, shown in the dialog only


class NotificationArea(QtWidgets.QPushButton):
    """The last notice in the status bar; a click lists them all. ``notify`` is thread-safe."""

    noticed = QtCore.Signal(object, bool)  # (Notice, popup), delivered on the UI thread

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFlat(True)
        self.setStyleSheet("QPushButton { color: #ff8080; text-align: left; border: none; }")
        self.notices: list[Notice] = []
        self.noticed.connect(self._show, QtCore.Qt.ConnectionType.QueuedConnection)
        self.clicked.connect(self.open_dialog)
        self.dialog: QtWidgets.QMessageBox | None = None
        self.hide()

    def notify(self, title: str, message: str, details: str = "", *, popup: bool = False) -> None:
        """Report a failure; ``popup`` also opens the dialog (what the user asked for failed)."""
        notice = Notice(title, message, details)
        if QtCore.QThread.currentThread() is self.thread():
            self._show(notice, popup)
        else:
            self.noticed.emit(notice, popup)

    def _show(self, notice: Notice, popup: bool) -> None:
        self.notices.append(notice)
        text = f"⚠ {notice.title}: {notice.message}"
        self.setText(text if len(text) <= 90 else text[:89] + "…")
        self.setToolTip(f"{notice.title}\n{notice.message}\n(click for every message)")
        self.show()
        if popup:
            self.open_dialog()

    def open_dialog(self) -> QtWidgets.QMessageBox | None:
        if not self.notices:
            return None
        last = self.notices[-1]
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning, last.title, last.message, parent=self.window()
        )
        history = "\n\n".join(
            f"{notice.title}: {notice.message}" + (f"\n{notice.details}" if notice.details else "")
            for notice in reversed(self.notices)
        )
        box.setDetailedText(history)
        box.open()  # never exec(): the event loop keeps running
        self.dialog = box
        return box


def install_exception_hooks(area: NotificationArea) -> None:
    """Send every uncaught exception (UI thread or worker thread) to ``area`` and to stderr."""
    previous_hook = sys.excepthook

    def hook(kind, error, trace) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous_hook(kind, error, trace)
            return
        details = "".join(traceback.format_exception(kind, error, trace))
        print(details, file=sys.stderr, end="")
        try:
            area.notify("Unexpected error", f"{kind.__name__}: {error}", details)
        except RuntimeError:  # the window is gone (quitting): stderr has it
            pass

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
