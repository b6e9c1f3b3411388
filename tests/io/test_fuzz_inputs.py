"""A reduced run of bench/fuzz_inputs.py: a few hundred mutated DICOM files through `info` and
`convert` in worker processes, with a memory cap and a timeout. Nothing may crash, hang or print a
traceback, and the good series in every folder must survive the bad files beside it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_inputs.py"


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_inputs"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_reduced_fuzz_run_has_no_traceback_hang_or_signal(tmp_path, capsys):
    fuzz = _fuzz_module()
    table = fuzz.fuzz(
        count=300,
        seed=2026,
        jobs=2,
        out=tmp_path,
        memory_mb=3072,
        timeout_s=10.0,
        worst=10,
        nifti=False,
        plugins=False,
    )
    report = capsys.readouterr().out
    folders = table["info on folders"]
    for row in table.values():
        for outcome in ("traceback", "hang", "signal", "memory", "bad message", "bad output", "lost series"):
            assert row[outcome] == 0, report
    assert sum(table["convert on files"][o] for o in fuzz.OUTCOMES) == 300
    assert table["convert on files"]["success"] > 30 and table["convert on files"]["clean"] > 100
    assert folders["success"] > 50  # every folder lists its good series


def test_classification():
    fuzz = _fuzz_module()
    assert fuzz.classify(-6, "terminate called after throwing an instance of 'gdcm::Exception'") == "signal"
    assert fuzz.classify(-6, "terminate called after throwing an instance of 'std::bad_alloc'") == "memory"
    assert fuzz.classify(1, "Traceback (most recent call last):\n ValueError: x") == "traceback"
    assert fuzz.classify(1, "Traceback (most recent call last):\n MemoryError") == "memory"
    assert fuzz.classify(None, "", hung=True) == "hang"
    assert fuzz.classify(1, "error: x.dcm: not a DICOM file") == "clean"
    assert fuzz.classify(0, "wrote out.nii.gz") == "success"
    assert fuzz.message_defects("error: " + "\x00" * 3) == ["bad message"]
    assert fuzz.message_defects("error: fine") == []
