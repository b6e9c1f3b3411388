"""The window's start imports only what the first image needs (``bench/bench_startup.py`` times it).

Each check starts a fresh interpreter the way a user does and looks at ``sys.modules`` once the
image is on screen: torch, VTK, scipy's heavy parts (ndimage, stats, special), scikit-image and
matplotlib are imported only when a tool asks for them, nibabel only for a NIfTI file. pydicom
comes with nibabel (its ``nifti1`` imports it for DICOM header extensions), so only a DICOM start
is checked for nibabel, not a NIfTI one for pydicom. An ``import torch`` (or ``from scipy import
ndimage``, ...) added at the top of a module on the window's path fails these tests.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.ui.child_process import POLL_EVERY_5_MS, ROOT, run_python_child

NEVER_AT_START = {
    "torch", "vtk", "vtkmodules", "scipy.ndimage", "scipy.stats", "scipy.special", "skimage", "matplotlib",
    "onnxruntime",
}

INTERACTIVE_START = r"""
import sys
from PySide6 import QtCore, QtWidgets
from app.cli.file_services import file_services
from app.ui.application import start_interactive_window
from app.ui.settings import ViewerSettings

settings = ViewerSettings(QtCore.QSettings(sys.argv[2], QtCore.QSettings.Format.IniFormat))
window = start_interactive_window([sys.argv[1]], file_services(), settings, (1000, 700), "mpr")
app = QtWidgets.QApplication.instance()


def poll():
    if window.session.current is not None and window.panels:
        window.repaint()
        print("ON-SCREEN", ",".join(sorted(sys.modules)))
        app.exit(0)

""" + POLL_EVERY_5_MS


def _loaded_modules(stdout: str, marker: str) -> set[str]:
    line = next(line for line in stdout.splitlines() if line.startswith(marker))
    return set(line.split(" ", 1)[1].split(","))


@pytest.fixture(scope="module")
def small_nifti(tmp_path_factory):
    from app.core.orientation_phantom import orientation_phantom
    from app.io.nifti import save_nifti

    path = tmp_path_factory.mktemp("nifti") / "small.nii.gz"
    save_nifti(orientation_phantom(size_ijk=(24, 20, 16)), path)
    return path


def test_interactive_start_on_dicom_imports_pydicom_only(demo_dicom_dir, tmp_path):
    result = run_python_child(
        INTERACTIVE_START, str(demo_dicom_dir), str(tmp_path / "settings.ini"), QT_QPA_PLATFORM="offscreen"
    )
    loaded = _loaded_modules(result.stdout, "ON-SCREEN")
    assert "pyqtgraph" in loaded and "pydicom" in loaded  # the check sees real imports
    assert not loaded & (NEVER_AT_START | {"nibabel"}), sorted(loaded & (NEVER_AT_START | {"nibabel"}))


def test_interactive_start_on_nifti_imports_no_heavy_library(small_nifti, tmp_path):
    result = run_python_child(
        INTERACTIVE_START, str(small_nifti), str(tmp_path / "settings.ini"), QT_QPA_PLATFORM="offscreen"
    )
    loaded = _loaded_modules(result.stdout, "ON-SCREEN")
    assert "nibabel" in loaded
    assert not loaded & NEVER_AT_START, sorted(loaded & NEVER_AT_START)


SCREENSHOT = r"""
import sys
import main

code = main.main(["view", sys.argv[1], "--screenshot", sys.argv[2]])
print("VIEW-EXIT", code)
print("LOADED", ",".join(sorted(sys.modules)))
"""


def test_view_screenshot_of_a_nifti_imports_neither_torch_nor_vtk(small_nifti, tmp_path):
    """``main.py view FILE.nii.gz --screenshot OUT.png`` (the MPR layout) run to its end."""
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-c", SCREENSHOT, str(small_nifti), str(shot)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "VIEW-EXIT 0" in result.stdout and shot.stat().st_size > 0
    loaded = _loaded_modules(result.stdout, "LOADED")
    assert "PySide6" in loaded and "nibabel" in loaded
    assert not loaded & NEVER_AT_START, sorted(loaded & NEVER_AT_START)


PYQTGRAPH_MIRRORS = r"""
import sys
import PySide6.QtCore, PySide6.QtWidgets
import app.ui.slice_view  # imports pyqtgraph through app.ui
import pyqtgraph as pg
from app.ui.pyqtgraph_import import LazyQtMirror

mirror = sys.modules["pyqtgraph.Qt.QtCore"]
assert isinstance(mirror, LazyQtMirror), type(mirror)
assert "QAbstractAnimation" not in vars(mirror)  # not fetched at import...
assert pg.QtCore.QAbstractAnimation is PySide6.QtCore.QAbstractAnimation  # ...but when used
assert pg.QtCore.Qt.AlignmentFlag is PySide6.QtCore.Qt.AlignmentFlag
assert pg.QtWidgets.QWidget is PySide6.QtWidgets.QWidget
assert pg.QtWidgets.QOpenGLWidget is not None  # pyqtgraph's own additions stay
app = PySide6.QtWidgets.QApplication([])
view = pg.GraphicsLayoutWidget()
box = view.addViewBox()
import numpy as np
box.addItem(pg.ImageItem(np.arange(64.0).reshape(8, 8)))
view.resize(100, 100)
view.show()
app.processEvents()
print("MIRRORS-OK")
"""


def test_pyqtgraph_is_imported_without_copying_every_qt_name():
    """pyqtgraph's Qt names resolve to PySide6's own objects when used, not all at import."""
    result = run_python_child(PYQTGRAPH_MIRRORS, QT_QPA_PLATFORM="offscreen")
    assert "MIRRORS-OK" in result.stdout
