"""``main.py`` as a new user meets it: top-level help, the wrong Python, output piped to ``head``."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import main
from tests.ui.child_process import QUIT_ONCE_A_VOLUME_IS_SHOWN

REPO_ROOT = Path(__file__).resolve().parents[1]


def _small_nifti(folder: Path) -> Path:
    path = folder / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), dtype=np.float32), np.eye(4)), path)
    return path


def test_top_level_help_lists_every_subcommand_of_study_and_plugins(capsys):
    try:
        main.main(["--help"])
    except SystemExit as done:
        assert done.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "export-csv, edit" in text and "diversity" in text
    assert "``" not in text  # no reStructuredText markup from the module docstring
    assert "python main.py COMMAND --help" in text


def test_python_without_the_packages_gets_told_to_use_the_venv(tmp_path):
    # -S leaves site-packages off the path: what `python3 main.py` does with the system Python.
    done = subprocess.run(
        [sys.executable, "-S", "main.py", "info", str(_small_nifti(tmp_path))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "is not installed for" in done.stderr and "scripts/install.sh" in done.stderr
    assert ".venv/bin/python main.py" in done.stderr


def test_output_piped_into_a_closed_reader_ends_without_a_traceback(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "main.py", "info", str(_small_nifti(tmp_path))],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # `| head -0`: the reader is gone before anything is written
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert process.returncode == 1


def test_a_mistyped_command_is_an_argument_error_not_a_viewer_window(capsys):
    with pytest.raises(SystemExit) as done:
        main.main(["synthesise", "--plugin", "x", "in.nii", "out.nii"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'synthesise'" in err and "synthesize" in err


def _parsers(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub_parser in action.choices.items():
                yield from _parsers(sub_parser, f"{name} {sub_name}")


def test_every_argument_of_every_command_says_what_it_is():
    missing = []
    for command, (module_name, _) in main.COMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module_name).add_arguments(parser)
        for name, sub_parser in _parsers(parser, command):
            for action in sub_parser._actions:
                if isinstance(action, argparse._SubParsersAction) or action.dest == "help":
                    continue
                if not action.help:
                    missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_installed_executable_names_itself_in_help(monkeypatch, capsys):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/synthview/synthview")
    with pytest.raises(SystemExit):
        main.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "synthview COMMAND --help" in text and "python main.py" not in text


NO_CONSOLE_SCRIPT = r"""
import sys
result = open(sys.argv[1], "w")
sys.stdout = sys.stderr = None  # a windowed Windows executable (synthview.exe) starts like this
import main
code = main.main(sys.argv[2:])
result.write(f"exit {code}")
"""


def test_info_without_a_console_does_not_crash(tmp_path):
    """Windowed synthview.exe: sys.stdout is None; flushing it raised AttributeError at exit."""
    result = tmp_path / "result.txt"
    done = subprocess.run(
        [sys.executable, "-c", NO_CONSOLE_SCRIPT, str(result), "info", str(_small_nifti(tmp_path))],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and result.read_text() == "exit 0", done.stderr[-2000:]
    assert done.stderr == ""  # nothing tried to write to the missing console


NO_CONSOLE_GUI_SCRIPT = r"""
import sys
result = open(sys.argv[1], "w")
sys.stdout = sys.stderr = None
from app.ui.application import create_application
import main

create_application([])  # main's GUI path reuses it; the timers below need it to exist
def report(window):
    return "printed to the missing console"  # dropped, not an AttributeError
""" + QUIT_ONCE_A_VOLUME_IS_SHOWN + """
result.write(f"exit {main.main(sys.argv[2:])}")
result.close()
"""


def test_the_viewer_without_a_console_opens_and_exits_cleanly(tmp_path):
    result = tmp_path / "result.txt"
    done = subprocess.run(
        [sys.executable, "-c", NO_CONSOLE_GUI_SCRIPT, str(result), str(_small_nifti(tmp_path))],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert done.returncode == 0 and result.read_text() == "exit 0", done.stderr[-2000:]


BLAS_AT_NUMPY_IMPORT_SCRIPT = r"""
import os, sys
seen = {}


class WatchNumpy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and "numpy" not in seen:
            seen["numpy"] = os.environ.get("OPENBLAS_NUM_THREADS")
        return None


sys.meta_path.insert(0, WatchNumpy())
from PySide6 import QtCore, QtWidgets

app = QtWidgets.QApplication([])  # main's GUI path reuses it; the timer below needs it


def quit_once_shown():
    for window in QtWidgets.QApplication.topLevelWidgets():
        if type(window).__name__ == "MainWindow" and window.session.current is not None:
            window.close()
            app.exit(0)


timer = QtCore.QTimer()
timer.timeout.connect(quit_once_shown)
timer.start(50)
QtCore.QTimer.singleShot(30000, lambda: app.exit(3))
import main

code = main.main(sys.argv[1:])
print("BLAS", seen.get("numpy"), "EXIT", code)
"""


@pytest.mark.parametrize("command", [[], ["view"]])
def test_the_desktop_process_starts_numpy_with_one_blas_thread(tmp_path, command):
    # numpy's OpenBLAS starts one thread per core at import (0.04 s of CPU here): the viewer's
    # process sets one before numpy loads (app.cli.desktop_process); a value the user set is kept.
    nifti = str(_small_nifti(tmp_path))
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    environment.pop("OPENBLAS_NUM_THREADS", None)
    for chosen, expected in ((None, "1"), ("3", "3")):
        if chosen is not None:
            environment["OPENBLAS_NUM_THREADS"] = chosen
        done = subprocess.run(
            [sys.executable, "-c", BLAS_AT_NUMPY_IMPORT_SCRIPT, *command, nifti],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=environment,
        )
        assert f"BLAS {expected} EXIT 0" in done.stdout, done.stdout + done.stderr[-2000:]


def test_a_command_line_tool_keeps_numpys_blas_threads(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    script = "import os, sys, main; main.main(['info', sys.argv[1]]); print('BLAS', os.environ.get('OPENBLAS_NUM_THREADS'))"
    done = subprocess.run(
        [sys.executable, "-c", script, str(_small_nifti(tmp_path))],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=environment,
    )
    assert "BLAS None" in done.stdout, done.stdout + done.stderr[-2000:]
