"""The architecture is enforced, not just described: import-linter contracts in pyproject.toml."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: " in result.stdout and " broken" in result.stdout
    assert "0 broken" in result.stdout


INFO_MODULES_SCRIPT = """
import sys
import main

code = main.main(["info", sys.argv[1]])
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("PySide6", "torch", "vtk", "vtkmodules"))
print("INFO-EXIT", code, "HEAVY", ",".join(heavy) or "-")
"""


def test_cli_info_runs_without_qt_torch_or_vtk(tmp_path):
    """The real ``info`` command, run to its end in a fresh interpreter, loads neither Qt nor
    torch nor VTK (an ``import torch`` added to app/cli/info.py fails this test)."""
    from app.core.orientation_phantom import orientation_phantom
    from app.io.nifti import save_nifti

    path = tmp_path / "small.nii.gz"
    save_nifti(orientation_phantom(size_ijk=(6, 5, 4)), path)
    result = subprocess.run(
        [sys.executable, "-c", INFO_MODULES_SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == "INFO-EXIT 0 HEAVY -", result.stdout[-2000:]


# Qt and VTK call these by name on a subclass: never referenced in our code, never dead.
_CALLED_BY_QT = re.compile(r"'(\w+Event|eventFilter|paint|sizeHint|minimumSizeHint)'")


def test_app_has_no_unreferenced_functions_or_classes():
    """vulture over the application, its tests, benchmarks, scripts and shipped plugins: a function,
    method, property or class in app/ that nothing references is dead code (delete it, or use
    it). Variables and attributes are left out: dataclass fields are read by asdict, DICOM
    attributes by pydicom."""
    result = subprocess.run(
        [sys.executable, "-m", "vulture", "app", "main.py", "plugins", "tests", "bench", "scripts",
         "--min-confidence", "60"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode in (0, 3), result.stderr  # 3: vulture found something
    dead = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("app/")
        and re.search(r"unused (function|method|property|class|import)", line)
        and not _CALLED_BY_QT.search(line)
    ]
    assert dead == [], "\n".join(dead)
