"""The Qt application: dark theme, one main window, paths from the command line opened at start."""

from __future__ import annotations

import sys

from PySide6 import QtWidgets

from app.ui.loading import VolumeLoader
from app.ui.main_window import MainWindow
from app.ui.plugin_panel import install_plugin_panel

STYLESHEET_EXTRA = "QToolTip { color: #eeeeee; }"


def create_application(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The QApplication (reused when one exists), with qdarkstyle's dark theme when installed."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0], *(argv or [])])
        app.setApplicationName("SynthView")
        app.setOrganizationName("SynthView")
    try:
        import qdarkstyle

        app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6") + STYLESHEET_EXTRA)
    except Exception:  # noqa: BLE001 - the theme is cosmetic; the viewer works without it
        pass
    return app


def run_gui(argv: list[str], loader: VolumeLoader | None = None) -> int:
    """Open the main window with every path in ``argv`` (files or folders) and run the event loop."""
    app = create_application([])
    window = MainWindow(loader=loader)
    install_plugin_panel(window)
    window.show()
    for path in argv:
        if not path.startswith("-"):
            window.open_path(path)
    return int(app.exec())
