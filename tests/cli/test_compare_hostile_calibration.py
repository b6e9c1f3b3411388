"""A plugin's ``calibration.json`` is data from a folder anyone can edit: a file that is not a
calibration is ignored with a note, never a crash, and never silently stops regions being flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.analysis.detection import CALIBRATION_FILE, NullCalibration
from app.core.provenance import Provenance
from app.io.nifti import save_nifti
from main import main
from tests.analysis import compare_pairs

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mr_t1_pseudo_healthy"


@pytest.fixture
def lesion_pair(tmp_path):
    original, output = compare_pairs.lesion_pair(provenance=Provenance("mr-t1-pseudo-healthy", "1.0"))
    original_path = save_nifti(original, tmp_path / "t1.nii.gz")
    return original_path, save_nifti(output, tmp_path / "healthy.nii.gz")


def _plugin_with(tmp_path, text: str) -> Path:
    folder = tmp_path / "plugin"
    shutil.copytree(PLUGIN, folder)
    (folder / CALIBRATION_FILE).write_text(text)
    return folder


def _shipped() -> dict:
    return json.loads((PLUGIN / CALIBRATION_FILE).read_text())


HOSTILE = {
    "a list": "[1, 2]",
    "nested past the stack": "[" * 100_000 + "]" * 100_000,
    "infinite thresholds": json.dumps(
        {**_shipped(), "z_thresholds": [float("inf")] * len(_shipped()["z_thresholds"])}
    ),
    "absurd thresholds": json.dumps(
        {**_shipped(), "z_thresholds": [1e9 + n for n in range(len(_shipped()["z_thresholds"]))]}
    ),
    "no lesion scale": json.dumps({**_shipped(), "diameters_mm": [], "structure": None}),
    "zero lesion scales": json.dumps({**_shipped(), "diameters_mm": [0, 0, 0], "structure": None}),
    "negative lesion scales": json.dumps({**_shipped(), "diameters_mm": [-3, -6, -10], "structure": None}),
    "a structure that is a string": json.dumps({**_shipped(), "structure": "table"}),
    "a model that is a list": json.dumps({**_shipped(), "model": [1]}),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_a_hostile_calibration_is_ignored_and_the_lesion_still_flagged(attack, lesion_pair, tmp_path, capsys):
    original_path, output_path = lesion_pair
    folder = _plugin_with(tmp_path, HOSTILE[attack])
    out = tmp_path / "out.json"
    assert (
        main(["compare", str(original_path), str(output_path), "--plugin", str(folder), "--json", str(out)])
        == 0
    )
    data = json.loads(out.read_text())
    assert any("unreadable null calibration ignored" in note for note in data["notes"]), data["notes"]
    assert data["region_count"] >= 1 and data["operating_point"]["calibration_threshold"] is None
    assert "Traceback" not in capsys.readouterr().err


def test_an_oversized_or_special_calibration_file_is_not_read_whole(tmp_path):
    padded = tmp_path / "padded.json"
    padded.write_text(json.dumps(_shipped()) + " " * (1 << 20))  # valid JSON, but no calibration is 1 MiB
    with pytest.raises(ValueError, match="larger than"):
        NullCalibration.load(padded)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        NullCalibration.load(zero)
    assert NullCalibration.load(PLUGIN / CALIBRATION_FILE).z_thresholds  # the shipped file still reads


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PLUGIN.parent.glob(f"*/{CALIBRATION_FILE}")))
def test_every_shipped_calibration_passes_the_checks_hostile_files_fail(folder):
    """The shipped files are read through the same checks: a table measured to z 40 against a
    loader that allows 37.5 (two changes of the same day) silently dropped the pseudo-healthy
    plugin's calibration, and compare fell back to 112 regions on the healthy demo head."""
    from app.analysis.detection import CALIBRATION_Z_THRESHOLDS, MAX_CALIBRATION_Z
    from app.plugins.null_calibration import calibration_for_plugin

    assert CALIBRATION_Z_THRESHOLDS[-1] <= MAX_CALIBRATION_Z  # what calibrate_null measures loads
    calibration, note = calibration_for_plugin(str(PLUGIN.parent / folder))
    assert calibration is not None, note
    assert "ignored" not in note


@pytest.mark.parametrize(
    "option",
    [
        ["--sigma-mm", "inf"],
        ["--sigma-mm", "nan"],
        ["--sigma-mm", "-1"],
        ["--sigma-mm", "1e9"],
        ["--min-volume-ml", "nan"],
        ["--min-volume-ml", "-1"],
        ["--min-volume-ml", "inf"],
    ],
)
def test_absurd_smoothing_or_minimum_volume_is_refused_with_a_message(option, lesion_pair, capsys):
    original_path, output_path = lesion_pair
    assert main(["compare", str(original_path), str(output_path), *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"compare: {option[0]} must be") and "Traceback" not in err


def test_a_plugin_that_did_not_make_the_output_is_refused(lesion_pair, capsys):
    original_path, output_path = lesion_pair  # made by mr-t1-pseudo-healthy, says its provenance
    other = PLUGIN.parent / "mr_t1_denoise"
    assert main(["compare", str(original_path), str(output_path), "--plugin", str(other)]) == 2
    err = capsys.readouterr().err
    assert "was made by mr-t1-pseudo-healthy" in err and "another generator's calibration" in err
    assert main(["compare", str(original_path), str(output_path), "--plugin", str(PLUGIN)]) == 0


def test_a_calibration_measured_for_other_weights_is_ignored(tmp_path):
    from app.plugins.null_calibration import calibration_for_plugin

    folder = _plugin_with(tmp_path, (PLUGIN / CALIBRATION_FILE).read_text())
    assert calibration_for_plugin(str(folder))[0] is not None  # the shipped pair matches
    stale = {**_shipped(), "source": "Colin27 (training head); weights sha256 0123456789ab"}
    (folder / CALIBRATION_FILE).write_text(json.dumps(stale))
    calibration, note = calibration_for_plugin(str(folder))
    assert calibration is None and "measured for weights sha256 0123456789ab" in note
