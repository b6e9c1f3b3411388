"""Incomplete series are reported (app.io.series_completeness), not shown as clean volumes.

Found by hand before the fix: ``kill -9`` during ``export --dicom`` of 300 slices left 43
files; ``info``, ``convert`` and ``view`` showed a clean 43-slice volume. The export is now
atomic (tests/io/test_atomic.py); a series that lost files in a copy is still reported.
"""

from __future__ import annotations

import json

import numpy as np
import pydicom

from app.core.volume import Geometry, Volume
from app.io.dicom_export import write_derived_series
from app.io.series_completeness import completeness_warnings
from main import main
from tests.io.series_factory import write_series


def truncated_synthview_series(folder, slices=12, kept=8):
    voxels = np.random.default_rng(0).uniform(0, 500, (slices, 10, 8)).astype(np.float32)
    write_derived_series(Volume(voxels, Geometry(np.zeros(3), np.ones(3), np.eye(3)), modality="MR"), folder)
    for path in sorted(folder.iterdir())[kept:]:
        path.unlink()  # what an interrupted copy leaves: the first files, evenly spaced
    return folder


def test_the_rules():
    assert completeness_warnings([1, 2, 3, 4], [4] * 4, "SynthView") == []
    assert (
        "incomplete series: 4 of the 6 slices written (2 files missing)"
        in completeness_warnings([1, 2, 3, 4], [6] * 4, "SynthView")[0]
    )
    assert completeness_warnings([1, 2, 3, 4], [6] * 4, "ACME scanners") == []  # counts an acquisition there
    assert (
        "2 instance number(s) missing between 1 and 7"
        in completeness_warnings([1, 2, 3, 4, 7], [None] * 5, "")[0]
    )
    assert completeness_warnings([1, 3, 5, 7, 9], [None] * 5, "") == []  # interleaved echoes: step 2
    assert "1 instance number(s) missing" in completeness_warnings([2, 4, 8, 10], [None] * 4, "")[0]
    assert completeness_warnings([1, 2, 2, 5], [None] * 4, "") == []  # duplicates: nothing to conclude
    assert completeness_warnings([1, 2, 5], [None] * 3, "", missing_positions_reported=True) == []


def test_info_and_convert_warn_about_a_truncated_synthview_series(tmp_path, capsys):
    folder = truncated_synthview_series(tmp_path / "series")
    assert main(["info", str(folder)]) == 0
    assert "incomplete series: 8 of the 12 slices written" in capsys.readouterr().out
    assert main(["info", str(folder), "--json"]) == 0
    series = json.loads(capsys.readouterr().out)["studies"][0]["series"][0]
    assert any("incomplete series" in w for w in series["warnings"])
    assert main(["convert", str(folder), str(tmp_path / "x.nii.gz")]) == 0
    captured = capsys.readouterr()
    assert "warning: incomplete series: 8 of the 12 slices written" in captured.err
    assert "incomplete" not in captured.out


def test_a_complete_export_has_no_warning(tmp_path, capsys):
    folder = truncated_synthview_series(tmp_path / "series", kept=12)
    assert main(["info", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["studies"][0]["series"][0]["warnings"] == []


def test_info_warns_about_gaps_in_instance_numbers(tmp_path, capsys):
    write_series(tmp_path, [0.0, 1.0, 2.0, 3.0, 4.0])
    last = sorted(tmp_path.iterdir())[-1]
    dataset = pydicom.dcmread(last)
    dataset.InstanceNumber = 7  # 1 2 3 4 7: instances 5 and 6 were lost, the positions still even
    dataset.save_as(last)
    assert main(["info", str(tmp_path)]) == 0
    assert "2 instance number(s) missing between 1 and 7" in capsys.readouterr().out
