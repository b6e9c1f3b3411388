"""Files the desktop asks the running application to open (macOS Finder: QFileOpenEvent).

On macOS a double-clicked document does not arrive on the command line: the system sends the
application an "open documents" Apple event, which Qt turns into a ``QEvent.FileOpen`` on the
QApplication, at launch (possibly before the main window exists) and while it runs. The
handler here queues those paths until a receiver (the main window's ``open_path``) is attached,
then hands each one over as it arrives. SynthView's own application (``FileOpenApplication``)
hands it the events sent to the application object only; on an application made elsewhere (a
test harness's) it is an event filter on the application, which sees every event of every
object: one Python call per event, mouse moves included, and on the way to the first image the
Python types of every internal Qt widget (5-10 ms of a 0.35 s start).
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
        return self.handle(event)

    def handle(self, event: QtCore.QEvent) -> bool:
        """Take ``event`` if it is a FileOpen with a path (True: handled)."""
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


class FileOpenApplication(QtWidgets.QApplication):
    """The QApplication whose own events (the FileOpen ones) go to its ``FileOpenHandler``."""

    file_open_handler: FileOpenHandler | None = None

    def event(self, event: QtCore.QEvent) -> bool:
        handler = self.file_open_handler
        if handler is not None and handler.handle(event):
            return True
        return super().event(event)


def install_file_open_handler(app: QtWidgets.QApplication) -> FileOpenHandler:
    """The application's handler, installed once (later calls return the same one): through
    ``FileOpenApplication.event``, else as an event filter on the application."""
    existing = app.property(HANDLER_PROPERTY)
    if isinstance(existing, FileOpenHandler):
        return existing
    handler = FileOpenHandler(app)
    if isinstance(app, FileOpenApplication):
        app.file_open_handler = handler
    else:
        app.installEventFilter(handler)
    app.setProperty(HANDLER_PROPERTY, handler)
    return handler

