"""Help > About: the version, the compute device and the licence table, as a user sees them."""

from __future__ import annotations

import importlib.metadata
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app import __version__  # noqa: E402
from app.ui.about_dialog import (  # noqa: E402
    AboutDialog,
    BundledComponent,
    default_device_description,
    read_bundled_components,
)


@pytest.fixture
def about_dialog(qtbot):
    dialog = AboutDialog(device_description="CPU (2 threads), torch test")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def test_about_shows_version_and_device(about_dialog):
    assert __version__ in about_dialog.title_label.text()
    assert "CPU (2 threads), torch test" in about_dialog.details_label.text()
    assert "development checkout" in about_dialog.details_label.text()


def test_pyside6_and_qt_are_listed_as_lgpl_with_installed_version(about_dialog):
    assert about_dialog.licence_of("PySide6").startswith("LGPL-3.0")
    assert about_dialog.licence_of("Qt 6 (via PySide6)").startswith("LGPL-3.0")
    assert about_dialog.version_of("PySide6") == importlib.metadata.version("PySide6_Essentials")
    assert "LGPL" in about_dialog.lgpl_label.text()


def test_every_bundled_component_has_a_licence_and_an_installed_version(about_dialog):
    names = {component.name for component in about_dialog.components}
    assert {"PyTorch (CPU build)", "VTK", "pydicom", "NiBabel", "pyqtgraph"} <= names
    for row in range(about_dialog.table.rowCount()):
        name = about_dialog.table.item(row, 0).text()
        assert about_dialog.table.item(row, 2).text(), name
        assert about_dialog.table.item(row, 1).text() != "not found", name


def test_gpl_decoder_left_out_is_not_listed_as_bundled():
    names = {component.distribution for component in read_bundled_components()}
    assert "pylibjpeg-libjpeg" not in names
    assert "nilearn" not in names


def test_close_button_closes(about_dialog, qtbot):
    from PySide6 import QtWidgets

    box = about_dialog.findChild(QtWidgets.QDialogButtonBox)
    qtbot.mouseClick(box.button(QtWidgets.QDialogButtonBox.StandardButton.Close), _left())
    assert not about_dialog.isVisible()


def test_device_from_plugin_runtime_or_a_clear_fallback(monkeypatch):
    import app.plugins.device as device

    def broken(*args, **kwargs):
        raise RuntimeError("torch failed to load")

    monkeypatch.setattr(device, "describe_device", broken)
    assert default_device_description() == "unknown (RuntimeError: torch failed to load)"


def test_device_callable_is_called_once(qtbot):
    calls = []

    def describe() -> str:
        calls.append(1)
        return "CUDA: test GPU"

    dialog = AboutDialog(
        device_description=describe, components=[BundledComponent("x", "python", "PSF", "u")]
    )
    qtbot.addWidget(dialog)
    assert calls == [1]
    assert "CUDA: test GPU" in dialog.details_label.text()


def _left():
    from PySide6 import QtCore

    return QtCore.Qt.MouseButton.LeftButton


def test_versions_are_read_in_one_pass_and_agree_with_importlib_metadata(qtbot, monkeypatch):
    """Help > About ran importlib.metadata.version once per component on the UI thread (0.2-0.4
    s); the one-pass table must give the very same versions."""
    from app.ui import about_dialog as module

    module.installed_versions.cache_clear()
    expected = {
        component.name: importlib.metadata.version(component.distribution)
        for component in read_bundled_components()
        if component.distribution != "python"
    }

    def one_by_one(name):
        raise AssertionError(f"importlib.metadata.version({name!r}) asked while the dialog opens")

    monkeypatch.setattr(module.importlib.metadata, "version", one_by_one)
    dialog = AboutDialog(device_description="CPU")
    qtbot.addWidget(dialog)
    assert {name: dialog.version_of(name) for name in expected} == expected
    assert module.installed_version("no-such-distribution-here") == "not found"
