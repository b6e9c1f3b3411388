"""Fixtures shared by every test package: the demo study and the MNI152 template.

Others may add fixtures here; keep them cheap (session scope for anything that reads files).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# The de-identification secret (app.io.pseudonym_uids) of a test run never goes into the user's
# own configuration folder.
os.environ.setdefault("SYNTHVIEW_CONFIG_DIR", tempfile.mkdtemp(prefix="synthview-test-config-"))
# Nor do decoded series (patient images) go into the user's cache folder: the cache is off in
# tests (and in the processes they start) unless a test turns it on with a folder of its own.
os.environ["SYNTHVIEW_CACHE_DIR"] = "off"


@pytest.fixture(scope="session")
def mni_t1_nifti_path() -> Path:
    """nilearn's bundled MNI152 2009a T1 template (.nii.gz, 197 x 233 x 189, 1 mm, RAS)."""
    from app.io.demo_study import mni_t1_template_path

    return mni_t1_template_path()


@pytest.fixture(scope="session")
def demo_dicom_dir() -> Path:
    """The demo DICOM MR series folder (189 axial slices), built first when missing."""
    from app.io.demo_study import ensure_demo_study

    return ensure_demo_study()


@pytest.fixture(scope="session")
def demo_volume(demo_dicom_dir):
    """The demo series loaded once per session. Treat it as read-only: other tests share it."""
    from app.io.loader import load_volume

    volume = load_volume(demo_dicom_dir)
    volume.voxels.flags.writeable = False
    return volume


@pytest.fixture(autouse=True)
def _qt_application_style_is_reset():
    """A test that builds the styled application (qdarkstyle) must not change later renders.

    The QApplication is shared by every Qt test of the session; its style sheet changes widget
    margins, so golden-image tests would depend on test order without this reset.
    """
    yield
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6 import QtWidgets

        app = QtWidgets.QApplication.instance()
        if app is not None and app.styleSheet():
            app.setStyleSheet("")
