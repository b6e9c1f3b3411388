"""The Qt application: dark theme, one main window, paths from the command line opened at start."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets

from app.ui.file_open import FileOpenApplication, install_file_open_handler
from app.ui.main_window import MainWindow
from app.ui.notifications import install_exception_hooks
from app.ui.paths import ICON_PATH
from app.ui.services import FileServices
from app.ui.settings import ViewerSettings

STYLESHEET_EXTRA = "QToolTip { color: #eeeeee; }"
# The garbage collector, off for the start (app.cli.desktop_process), is on again at most this long
# after the window was built (sooner once the tools built after the first image are built).
START_WITHOUT_COLLECTION_S = 5.0


NO_DISPLAY_MESSAGE = (
    "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are not set, e.g. an SSH session,"
    " or the X display named does not answer): "
    "run SynthView in a desktop session or over 'ssh -X'; 'view PATH --screenshot OUT.png' works "
    "without a display (under 'xvfb-run -a', with the 3D view too)"
)


def has_display() -> bool:
    """False on Linux with no X11/Wayland display and no platform chosen (QT_QPA_PLATFORM), or
    with an X display named that does not answer (a dropped 'ssh -X', a stopped Xvfb)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    if os.environ.get("WAYLAND_DISPLAY"):
        return True
    display = os.environ.get("DISPLAY")
    return bool(display) and x_display_answers(display)


def x_display_answers(display: str) -> bool:
    """Whether an X server accepts a connection on ``display`` (through libxcb, as Qt would);
    True when libxcb cannot be asked, so that only a known failure stops the start.

    A connection that answers stays open until ``release_display_probe()`` (called once Qt has
    its own): an X server with no other client (a fresh ``Xvfb``, started without -noreset)
    resets when its last client leaves, and a reset racing Qt's connection kills the start
    ("could not connect to display", exit 134) in about one start in four.
    """
    global _display_probe
    import ctypes
    import ctypes.util

    try:
        xcb = ctypes.CDLL(ctypes.util.find_library("xcb") or "libxcb.so.1")
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return True
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: an error object on failure
    if xcb.xcb_connection_has_error(connection) != 0:
        xcb.xcb_disconnect(connection)
        return False
    release_display_probe()  # at most one probe connection held at a time
    _display_probe = (xcb, connection)
    return True


_display_probe: tuple[object, int] | None = None  # (libxcb, connection) kept open by the probe


def release_display_probe() -> None:
    """Close the probe connection ``x_display_answers`` kept open (no-op when none is)."""
    global _display_probe
    if _display_probe is not None:
        xcb, connection = _display_probe
        _display_probe = None
        xcb.xcb_disconnect(connection)  # type: ignore[attr-defined]


def create_application(
    argv: list[str] | None = None, *, offscreen_without_display: bool = False
) -> QtWidgets.QApplication:
    """The QApplication (reused when one exists), with qdarkstyle's dark theme when installed.

    Without a display Qt would abort the process with a misleading message about its xcb plugin
    and libxcb-cursor0: a window that is only rendered to a file (``offscreen_without_display``)
    then uses Qt's offscreen platform; anything else exits with ``NO_DISPLAY_MESSAGE``.
    """
    app = QtWidgets.QApplication.instance()
    if app is None and not has_display():
        if not offscreen_without_display:
            raise SystemExit(f"synthview: {NO_DISPLAY_MESSAGE}")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if app is None:
        try:
            app = FileOpenApplication([sys.argv[0], *(argv or [])])
        finally:
            release_display_probe()  # Qt holds its own connection now: no server reset
        app.setApplicationName("SynthView")
        app.setOrganizationName("SynthView")
        if ICON_PATH.is_file():
            app.setWindowIcon(QtGui.QIcon(str(ICON_PATH)))
        install_file_open_handler(app)
    try:
        app.setStyleSheet(dark_stylesheet(app) + STYLESHEET_EXTRA)
    except Exception:  # noqa: BLE001 - the theme is cosmetic; the viewer works without it
        pass
    return app


def dark_stylesheet(app: QtWidgets.QApplication) -> str:
    """qdarkstyle's dark theme, as ``qdarkstyle.load_stylesheet`` gives it, read from its files.

    ``load_stylesheet`` imports qtpy, whose star imports of PySide6's modules create every Qt
    class (0.12 s of the start, on the UI thread); only to read the same style sheet from a
    compiled resource module. Here the style sheet's icons are its ``rc`` folder's files (the
    ``@2x`` ones are found beside them as from the resource) and the application gets the same
    link colour (qdarkstyle's palette patch); ``ImportError`` when qdarkstyle is not installed."""
    import platform
    from pathlib import Path

    import qdarkstyle
    from qdarkstyle.dark.palette import DarkPalette

    folder = Path(qdarkstyle.PACKAGE_PATH) / DarkPalette.ID
    text = (folder / f"{DarkPalette.ID}{qdarkstyle.QSS_FILE_SUFFIX}").read_text(encoding="utf-8")
    text = text.replace(f'url(":/qss_icons/{DarkPalette.ID}/rc/', f'url("{(folder / "rc").as_posix()}/')
    if platform.system().lower() == "darwin":
        text += qdarkstyle._apply_os_patches(DarkPalette)  # plain text; no Qt binding involved
    palette = app.palette()
    palette.setColor(QtGui.QPalette.ColorGroup.Normal, QtGui.QPalette.ColorRole.Link, QtGui.QColor(DarkPalette.COLOR_ACCENT_3))
    app.setPalette(palette)
    return text


def install_tool_docks(window: MainWindow) -> list[str]:
    """Attach the declared tools (``app.ui.docks.TOOLS``) to the window; every one that fails
    is shown to the user (its dock and the notification area). Returns 'name: error' lines."""
    return [f"{name}: {error}" for name, error in window.install_tools().items()]


def prepare_interactive_window(window: MainWindow) -> None:
    """What a window a person works in gets: the tools, and every uncaught exception (any
    thread) routed to its notification area."""
    for name, error in window.install_tools(defer=True).items():
        print(f"synthview: {name} could not start: {error}", file=sys.stderr)
    install_exception_hooks(window.notifications)


def start_interactive_window(
    paths: list[str],
    services: FileServices,
    settings: ViewerSettings | None = None,
    size: tuple[int, int] | None = None,
    layout: str | None = None,
    phase: Callable[[str], None] = lambda name: None,
) -> MainWindow:
    """The window a person works in, on screen, with ``paths`` loading (``bench_startup`` times
    this very function; ``phase(name)`` marks its steps).

    The paths open once the window is built, before it shows: what the decoded-series cache read
    ahead meanwhile (``import_readers_in_background``) is in the window's first paint; the rest
    loads in the thread pool, its readers (pydicom) imported while the window was put together."""
    create_application([])
    window = MainWindow(settings, services, first_image=True)
    # The garbage collector that prepare_desktop_process turned off for the start (if it did).
    window.startup_tools_built.connect(gc.enable)
    QtCore.QTimer.singleShot(int(START_WITHOUT_COLLECTION_S * 1000), gc.enable)
    if size is not None:
        window.resize(*size)
    if layout:
        window.session.set_layout(layout)
    phase("MainWindow()")
    prepare_interactive_window(window)
    phase("tools declared")
    for path in paths:  # what the decoded cache read ahead is in the first paint; the rest loads
        window.open_path(path)
    phase("loads started")
    window.show()
    phase("shown")
    return window


def run_gui(argv: list[str], services: FileServices) -> int:
    """Open the main window with every path in ``argv`` (files or folders) and run the event loop."""
    app = create_application([])
    window = start_interactive_window([path for path in argv if not path.startswith("-")], services)
    # Files opened from the Finder (macOS) arrive as QFileOpenEvents, also before this point.
    install_file_open_handler(app).open_with(window.open_path)
    return int(app.exec())
