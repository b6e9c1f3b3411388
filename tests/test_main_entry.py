"""``main.py`` as a new user meets it: top-level help, the wrong Python, output piped to ``head``."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import main

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
