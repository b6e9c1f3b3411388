"""Files the desktop asks the running application to open (macOS Finder: QFileOpenEvent).

On macOS a double-clicked document does not arrive on the command line: the system sends the
application an "open documents" Apple event, which Qt turns into a ``QEvent.FileOpen`` on the
QApplication, at launch (possibly before the main window exists) and while it runs. The
handler here is an event filter on the application that queues those paths until a receiver
(the main window's ``open_path``) is attached, then hands each one over as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets

HANDLER_PROPERTY = "synthviewFileOpenHandler"


class FileOpenHandler(QtCore.QObject):
    """Event filter: ``QEvent.FileOpen`` -> ``receiver(path)``, paths queued until one is set."""

    def __init__(self, parent: QtCore.QObject) -> None:
        super().__init__(parent)
        self.pending: list[str] = []
        self._receiver: Callable[[str], None] | None = None

    def open_with(self, receiver: Callable[[str], None]) -> None:
        """Send every queued path, then each later one, to ``receiver``."""
        self._receiver = receiver
        pending, self.pending = self.pending, []
        for path in pending:
            receiver(path)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() != QtCore.QEvent.Type.FileOpen or not isinstance(event, QtGui.QFileOpenEvent):
            return False
        path = event.file() or event.url().toLocalFile()
        if not path:
            return False
        if self._receiver is None:
            self.pending.append(path)
        else:
            self._receiver(path)
        return True


def install_file_open_handler(app: QtWidgets.QApplication) -> FileOpenHandler:
    """The application's handler, installed once (later calls return the same one)."""
    existing = app.property(HANDLER_PROPERTY)
    if isinstance(existing, FileOpenHandler):
        return existing
    handler = FileOpenHandler(app)
    app.installEventFilter(handler)
    app.setProperty(HANDLER_PROPERTY, handler)
    return handler

