"""Help > About: SynthView's version, the compute device GAN plugins will use, and the licences
of the bundled components.

The component table is read from packaging/LICENSES.md (bundled into the frozen app at the
same relative place), so the installers' licence list and the dialog cannot drift apart.
The versions shown are the ones actually installed, read from package metadata.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app import __version__
from app.ui.paths import ICON_PATH, LICENSES_PATH

LGPL_NOTE = (
    "Qt, PySide6 and Shiboken6 are used under the GNU LGPL v3: they are shipped as separate, "
    "unmodified shared libraries in the installation folder and can be replaced by the user. "
    "Their source code is available at code.qt.io."
)


@dataclass(frozen=True)
class BundledComponent:
    """One row of the licence table: what it is, its installed distribution, licence, source."""

    name: str
    distribution: str
    licence: str
    source_url: str


def read_bundled_components(licenses_path: Path = LICENSES_PATH) -> list[BundledComponent]:
    """The rows of the first table in LICENSES.md (the components the installers bundle)."""
    components: list[BundledComponent] = []
    for line in licenses_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## ") and components:
            break  # later tables list what is left out of the bundle
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or cells[0] in ("Component", "---"):
            continue
        components.append(BundledComponent(*cells))
    return components


def installed_version(distribution: str) -> str:
    """The version of an installed distribution ('python' is the interpreter), or 'not found'."""
    if distribution == "python":
        return platform.python_version()
    return installed_versions().get(_normalized(distribution), "not found")


@functools.lru_cache(maxsize=1)
def installed_versions() -> dict[str, str]:
    """{normalized distribution name: version} of everything installed, the first of a name on
    ``sys.path`` as ``importlib.metadata.version`` answers.

    One pass reading the two header lines of each METADATA: ``importlib.metadata.version`` per
    component (a search of sys.path and a full e-mail parse each) kept Help > About on the UI
    thread for 0.2-0.4 s."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        name = version = ""
        for line in text.splitlines():
            if not line.strip():
                break  # the headers end at the first blank line
            if line.startswith("Name:"):
                name = line[5:].strip()
            elif line.startswith("Version:"):
                version = line[8:].strip()
        if name and version:
            versions.setdefault(_normalized(name), version)
    return versions


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def default_device_description() -> str:
    """What the plugin runtime will run on (imports torch, so only called when asked)."""
    try:
        from app.plugins.device import describe_device

        return str(describe_device())
    except Exception as error:  # noqa: BLE001 - the About dialog must open whatever torch does
        return f"unknown ({type(error).__name__}: {error})"


def build_kind() -> str:
    """'installed application' in a frozen build, otherwise 'development checkout'."""
    return "installed application" if getattr(sys, "frozen", False) else "development checkout"


class AboutDialog(QtWidgets.QDialog):
    """Version, compute device and the licence table. ``device_description`` may be a string or
    a callable returning one; by default the plugin runtime is asked."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        device_description: str | Callable[[], str] | None = None,
        components: list[BundledComponent] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About SynthView")
        self.resize(960, 640)
        if device_description is None:
            device_description = default_device_description
        if callable(device_description):
            device_description = device_description()
        self.device_description = device_description
        self.components = read_bundled_components() if components is None else components

        layout = QtWidgets.QVBoxLayout(self)
        header = QtWidgets.QHBoxLayout()
        icon_label = QtWidgets.QLabel()
        if ICON_PATH.exists():
            icon_label.setPixmap(
                QtGui.QPixmap(str(ICON_PATH)).scaled(
                    72,
                    72,
                    QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation,
                )
            )
        header.addWidget(icon_label)
        self.title_label = QtWidgets.QLabel(f"<h2>SynthView {__version__}</h2>")
        self.details_label = QtWidgets.QLabel()
        self.set_device_description(device_description)
        self.details_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        titles = QtWidgets.QVBoxLayout()
        titles.addWidget(self.title_label)
        titles.addWidget(self.details_label)
        header.addLayout(titles, stretch=1)
        layout.addLayout(header)

        layout.addWidget(QtWidgets.QLabel("Bundled components and their licences:"))
        self.table = QtWidgets.QTableWidget(len(self.components), 4)
        self.table.setHorizontalHeaderLabels(["Component", "Version", "Licence", "Source"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, component in enumerate(self.components):
            values = (
                component.name,
                installed_version(component.distribution),
                component.licence,
                component.source_url,
            )
            for column, value in enumerate(values):
                self.table.setItem(row, column, QtWidgets.QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, stretch=1)

        self.lgpl_label = QtWidgets.QLabel(LGPL_NOTE)
        self.lgpl_label.setWordWrap(True)
        layout.addWidget(self.lgpl_label)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def set_device_description(self, text: str) -> None:
        """The compute device line (the main window fills it in when its check answers)."""
        self.device_description = text
        self.details_label.setText(
            f"Compute device for GAN plugins: <b>{_escape(text)}</b><br>"
            f"Python {platform.python_version()}, Qt {QtCore.qVersion()}, {build_kind()}"
        )

    def licence_of(self, component_name: str) -> str:
        """The licence shown for a component."""
        return self._cell(component_name, column=2)

    def version_of(self, component_name: str) -> str:
        """The installed version shown for a component."""
        return self._cell(component_name, column=1)

    def _cell(self, component_name: str, column: int) -> str:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == component_name:
                return self.table.item(row, column).text()
        raise KeyError(component_name)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
