"""The output policy of every writing command (app.cli.writable).

Found by hand before the fix: ``synthesize --plugin P IN IN`` wrote the synthetic image over its
own input (exit 0); ``convert``, ``export --nifti``, ``synthesize`` and ``compare --json/--report``
replaced existing files without a word; ``study create`` into a folder whose ``reading/`` had
been moved away overwrote the previous study's ``truth.json``; ``export --dicom DIR`` mixed its
series with DICOM files already below DIR.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import app.plugins.runtime as runtime
from app.cli.writable import (
    OutputRefused,
    check_outputs,
    file_output,
    input_paths,
    nifti_output,
    series_output,
)
from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_builtin_plugin


def small_volume(seed: int = 0, synthetic: bool = False) -> Volume:
    voxels = np.random.default_rng(seed).uniform(0, 500, (4, 12, 8)).astype(np.float32)
    volume = Volume(voxels, Geometry(np.zeros(3), np.ones(3), np.eye(3)), modality="MR")
    if synthetic:
        volume.provenance = Provenance("eraser", "1.0")
    return volume


@pytest.fixture
def mr_nifti(tmp_path):
    return save_nifti(small_volume(), tmp_path / "t1.nii.gz")


def refusal(outputs, inputs, force=False) -> str | None:
    try:
        check_outputs(outputs, inputs, force)
    except OutputRefused as error:
        return str(error)
    return None


# --- the policy itself -------------------------------------------------------------------------


def test_an_input_is_never_an_output_even_with_force(tmp_path, mr_nifti):
    dicom_dir = tmp_path / "dicom"
    (dicom_dir / "sub").mkdir(parents=True)
    (dicom_dir / "sub" / "IM1").write_bytes(b"x")
    link = tmp_path / "link.nii.gz"
    link.symlink_to(mr_nifti)
    hard = tmp_path / "hard.nii.gz"
    os.link(mr_nifti, hard)
    hard_in_folder = tmp_path / "copy_of_IM1"
    os.link(dicom_dir / "sub" / "IM1", hard_in_folder)
    for force in (False, True):
        assert "is also an input" in refusal([nifti_output(mr_nifti)], input_paths(mr_nifti), force)
        assert "is also an input" in refusal([nifti_output(link)], input_paths(mr_nifti), force)
        assert "hard link" in refusal([nifti_output(hard)], input_paths(mr_nifti), force)
        assert "hard link" in refusal([file_output(hard_in_folder)], input_paths(dicom_dir), force)
        assert "is also an input" in refusal([series_output(dicom_dir)], [dicom_dir], force)
        assert "inside the input folder" in refusal([series_output(dicom_dir / "out")], [dicom_dir], force)
        assert "inside the input folder" in refusal(
            [file_output(dicom_dir / "sub" / "IM1")], [dicom_dir], force
        )
        # A new file beside the input series (dcm2niix's default) overwrites nothing.
        assert refusal([nifti_output(dicom_dir / "sub" / "x.nii.gz")], [dicom_dir], force) is None
        assert "holds the input" in refusal([series_output(tmp_path)], [dicom_dir], force)
        # t1.nii -> t1.nii.gz would rewrite the input's own sidecar t1.json.
        (tmp_path / "t1.json").write_text("{}")
        assert "t1.json is also an input" in refusal(
            [nifti_output(tmp_path / "t1.nii")], input_paths(mr_nifti), force
        )


def test_an_existing_output_needs_force(tmp_path, mr_nifti):
    out = tmp_path / "out.nii.gz"
    assert refusal([nifti_output(out)], input_paths(mr_nifti)) is None
    (tmp_path / "out.json").write_text("{}")  # the sidecar alone is an output too
    assert "out.json already exists (give --force" in refusal([nifti_output(out)], [mr_nifti])
    out.write_bytes(b"old")
    assert "out.nii.gz already exists (give --force" in refusal([nifti_output(out)], [mr_nifti])
    assert refusal([nifti_output(out)], [mr_nifti], force=True) is None
    assert "two outputs" in refusal([file_output(out), file_output(tmp_path / "." / "out.nii.gz")], [])


def test_a_series_folder_must_be_new_or_empty(tmp_path):
    folder = tmp_path / "series"
    assert refusal([series_output(folder)], []) is None
    folder.mkdir()
    assert refusal([series_output(folder)], []) is None
    (folder / "deep" / "er").mkdir(parents=True)
    (folder / "deep" / "er" / "IM0001").write_bytes(b"DICM")  # extension-less, two levels down
    for force in (False, True):
        assert "is not empty" in refusal([series_output(folder)], [], force)
    other = tmp_path / "previous"
    other.mkdir()
    (other / "IM00001.dcm").write_bytes(b"an earlier SynthView series")
    assert "already holds a DICOM series (give --force" in refusal([series_output(other)], [])
    assert refusal([series_output(other)], [], force=True) is None


# --- the commands ------------------------------------------------------------------------------


def test_synthesize_in_in_is_refused_and_the_input_kept(tmp_path, mr_nifti, capsys, monkeypatch):
    plugin = make_builtin_plugin(tmp_path / "plugin")
    before = mr_nifti.read_bytes()

    def must_not_run(*args, **kwargs):
        raise AssertionError("the generator ran although its output is its input")

    monkeypatch.setattr(runtime, "synthesize", must_not_run)
    for extra in ([], ["--force"]):
        rc = main(["synthesize", "--plugin", str(plugin), str(mr_nifti), str(mr_nifti), "--quiet", *extra])
        assert rc == 2
        err = capsys.readouterr().err
        assert "is also an input" in err and len(err.strip().splitlines()) == 1
    assert mr_nifti.read_bytes() == before


def _study_inputs(tmp_path):
    real, synthetic = tmp_path / "real", tmp_path / "synthetic"
    for n in range(2):
        save_nifti(small_volume(n), real / f"r{n}.nii.gz")
        save_nifti(small_volume(10 + n, synthetic=True), synthetic / f"s{n}.nii.gz")
    return real, synthetic


def _database(tmp_path):
    real, synthetic = _study_inputs(tmp_path)
    assert (
        main(["study", "create", "--real", str(real), "--synthetic", str(synthetic), str(tmp_path / "s")])
        == 0
    )
    from tests.readerstudy.test_cli import take_study

    truth = json.loads((tmp_path / "s" / "truth" / "truth.json").read_text())["items"]
    take_study(tmp_path / "s" / "reading", "R1", truth, skill=0.8)
    return tmp_path / "s" / "answers.db"


# Each: (arguments given tmp_path and an input NIfTI, the output the command writes).
COMMANDS = {
    "convert": lambda t, n: (["convert", str(n), str(t / "out.nii.gz")], t / "out.nii.gz"),
    "export --nifti": lambda t, n: (["export", str(n), "--nifti", str(t / "out.nii.gz")], t / "out.nii.gz"),
    "export --dicom": lambda t, n: (["export", str(n), "--dicom", str(t / "series")], t / "series"),
    "synthesize": lambda t, n: (
        [
            "synthesize",
            "--plugin",
            str(make_builtin_plugin(t / "plugin")),
            str(n),
            str(t / "o.nii.gz"),
            "--quiet",
        ],
        t / "o.nii.gz",
    ),
    "compare --json": lambda t, n: (["compare", str(n), str(n), "--json", str(t / "c.json")], t / "c.json"),
    "compare --report": lambda t, n: (
        ["compare", str(n), str(n), "--report", str(t / "c.html")],
        t / "c.html",
    ),
    "study analyze --json": lambda t, n: (
        ["study", "analyze", str(_database(t)), "--json", str(t / "a.json")],
        t / "a.json",
    ),
    "study export-csv": lambda t, n: (
        ["study", "export-csv", str(_database(t)), str(t / "l.csv")],
        t / "l.csv",
    ),
    "synthesize (series)": lambda t, n: (
        ["synthesize", "--plugin", str(make_builtin_plugin(t / "plugin")), str(n), str(t / "s"), "--quiet"],
        t / "s",
    ),
    "export --sr": lambda t, n: (
        ["export", str(_annotated(n)), "--dicom", str(t / "ev"), "--sr", str(t / "sr.dcm")],
        t / "sr.dcm",
    ),
    "export --mask-nifti": lambda t, n: (
        ["export", str(_annotated(n)), "--mask-nifti", str(t / "mask.nii.gz")],
        t / "mask.nii.gz",
    ),
    "study analyze --report": lambda t, n: (
        ["study", "analyze", str(_database(t)), "--report", str(t / "a.html")],
        t / "a.html",
    ),
    "study export-csv --imrmc": lambda t, n: (
        ["study", "export-csv", str(_database(t)), str(t / "l.csv"), "--imrmc", str(t / "l.imrmc")],
        t / "l.imrmc",
    ),
}
SERIES_COMMANDS = {"export --dicom", "synthesize (series)"}


def _annotated(nifti):
    """The input with an annotation sidecar (a ruler, an ellipse and a label mask) beside it."""
    from app.annotations.sidecar import save_annotations, sidecar_path_for
    from app.io.nifti import load_nifti
    from tests.cli.test_export import annotated

    save_annotations(annotated(load_nifti(nifti)), sidecar_path_for(nifti))
    return nifti


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_an_existing_output_unless_forced(tmp_path, mr_nifti, capsys, command):
    arguments, output = COMMANDS[command](tmp_path, mr_nifti)
    if command in SERIES_COMMANDS:
        assert main([*arguments]) == 0  # an earlier series there
        earlier = sorted(p.read_bytes() for p in output.iterdir())
    else:
        output.write_bytes(b"an earlier output")
    capsys.readouterr()
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert "give --force" in err and len(err.strip().splitlines()) == 1, err
    if command in SERIES_COMMANDS:
        assert sorted(p.read_bytes() for p in output.iterdir()) == earlier
        assert main([*arguments, "--force"]) == 0
        assert sorted(p.read_bytes() for p in output.iterdir()) != earlier
        assert len(list(output.iterdir())) == 4
    else:
        assert output.read_bytes() == b"an earlier output"
        assert main([*arguments, "--force"]) == 0, capsys.readouterr().err
        assert output.read_bytes() != b"an earlier output"
    assert not [p for p in tmp_path.rglob("*partial*")]


def test_study_create_keeps_an_earlier_studys_truth(tmp_path, capsys):
    real, synthetic = _study_inputs(tmp_path)
    create = ["study", "create", "--real", str(real), "--synthetic", str(synthetic), str(tmp_path / "s")]
    assert main(create) == 0
    truth = (tmp_path / "s" / "truth" / "truth.json").read_bytes()
    (tmp_path / "s" / "reading").rename(tmp_path / "moved-reading")
    capsys.readouterr()
    assert main(create) == 2
    assert "truth.json already exists (give --force" in capsys.readouterr().err
    assert (tmp_path / "s" / "truth" / "truth.json").read_bytes() == truth
    assert not (tmp_path / "s" / "reading").exists()
    assert main([*create, "--force"]) == 0
    assert (tmp_path / "s" / "truth" / "truth.json").read_bytes() != truth
    assert (tmp_path / "s" / "reading" / "study.json").exists()
    # A study written into its own image folder would be read back as cases: refused.
    assert (
        main(["study", "create", "--real", str(real), "--synthetic", str(synthetic), str(real), "--force"])
        == 2
    )
    assert "inside the input folder" in capsys.readouterr().err


def test_export_dicom_refuses_a_folder_with_other_files_even_with_force(tmp_path, mr_nifti, capsys):
    target = tmp_path / "target"
    (target / "nested").mkdir(parents=True)
    (target / "nested" / "IM00001.dcm").write_bytes(b"another series")
    (target / "README").write_text("no extension")
    for extra in ([], ["--force"]):
        assert main(["export", str(mr_nifti), "--dicom", str(target), *extra]) == 2
        assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in target.rglob("*")) == ["IM00001.dcm", "README", "nested"]


def test_view_screenshot_follows_the_policy(tmp_path, mr_nifti, capsys):
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"an earlier screenshot")
    assert main(["view", str(mr_nifti), "--screenshot", str(shot)]) == 2
    assert "give --force" in capsys.readouterr().err
    assert main(["view", str(mr_nifti), "--screenshot", str(mr_nifti), "--force"]) == 2
    assert "is also an input" in capsys.readouterr().err


def test_analyze_never_writes_over_the_truth_it_reads(tmp_path, capsys):
    database = _database(tmp_path)
    truth = database.parent / "truth" / "truth.json"
    before = truth.read_bytes()
    assert main(["study", "analyze", str(database), "--json", str(truth), "--force"]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert truth.read_bytes() == before
