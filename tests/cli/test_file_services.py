"""The composition root's file services: the readers imported ahead of a start with a path."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AHEAD = """
import sys
from app.cli.file_services import import_readers_in_background
thread = import_readers_in_background(sys.argv[1:])
if thread is not None:
    thread.join(60)
print(thread is not None, "pydicom" in sys.modules, "nibabel" in sys.modules, "PySide6.QtWidgets" in sys.modules)
"""


def run(*paths: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", AHEAD, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.split()


def test_a_dicom_start_imports_pydicom_ahead_and_no_qt(tmp_path):
    assert run(str(tmp_path / "study")) == ["True", "True", "False", "False"]


def test_a_nifti_start_imports_nibabel_ahead(tmp_path):
    assert run(str(tmp_path / "head.nii.gz"))[:3] == ["True", "True", "True"]  # nibabel imports pydicom


def test_no_path_imports_nothing_ahead():
    assert run() == ["False", "False", "False", "False"]
    assert run("--layout") == ["False", "False", "False", "False"]
