"""What the viewer remembers between sessions (QSettings): recent files, layout, colormap, geometry."""

from __future__ import annotations

from PySide6 import QtCore

MAX_RECENT_FILES = 10


class ViewerSettings:
    """Typed access to the few keys the viewer persists."""

    def __init__(self, settings: QtCore.QSettings | None = None) -> None:
        self.qsettings = settings or QtCore.QSettings("SynthView", "SynthView")

    def recent_files(self) -> list[str]:
        value = self.qsettings.value("recent_files", [])
        if isinstance(value, str):  # QSettings returns a lone string for one-element lists
            value = [value]
        return [str(path) for path in (value or [])]

    def add_recent_file(self, path: str) -> None:
        paths = [path] + [p for p in self.recent_files() if p != path]
        self.qsettings.setValue("recent_files", paths[:MAX_RECENT_FILES])

    def layout(self, default: str = "mpr") -> str:
        return str(self.qsettings.value("layout", default))

    def set_layout(self, name: str) -> None:
        self.qsettings.setValue("layout", name)

    def colormap(self, default: str = "gray") -> str:
        return str(self.qsettings.value("colormap", default))

    def set_colormap(self, name: str) -> None:
        self.qsettings.setValue("colormap", name)

    def window_geometry(self) -> QtCore.QByteArray | None:
        value = self.qsettings.value("window_geometry")
        return value if isinstance(value, QtCore.QByteArray) else None

    def set_window_geometry(self, geometry: QtCore.QByteArray) -> None:
        self.qsettings.setValue("window_geometry", geometry)

    def sync(self) -> None:
        self.qsettings.sync()
