"""Outputs that cannot be written are reported before the long work, as one clear line.

Measured before the fix on the demo study: ``synthesize`` into a read-only folder ran the
denoiser for ~35 s and only then failed; ``compare --json``/``--report`` and ``plugins
diversity --json`` ended in an OSError traceback after computing.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import app.plugins.runtime as runtime
from app.cli import writable
from app.cli.writable import unwritable_reason
from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_builtin_plugin


@pytest.fixture
def mr_nifti(tmp_path):
    geometry = Geometry(np.zeros(3), np.ones(3), np.eye(3))
    voxels = np.random.default_rng(0).uniform(0, 500, (4, 12, 8)).astype(np.float32)
    return save_nifti(Volume(voxels, geometry, modality="MR"), tmp_path / "t1.nii.gz")


@pytest.fixture
def read_only(monkeypatch, tmp_path):
    """``tmp_path/ro`` behaves as a folder on a read-only file system (root ignores chmod)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if os.fspath(path) == os.fspath(folder) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(writable.os, "access", access)
    return folder


def test_unwritable_reason(tmp_path, read_only):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    assert unwritable_reason(tmp_path / "out.nii.gz") is None
    assert unwritable_reason(tmp_path / "new" / "deeper" / "out.nii.gz") is None  # created on write
    assert unwritable_reason(tmp_path / "series", folder=True) is None
    assert "is a file, not a folder" in unwritable_reason(blocker / "out.nii.gz")
    assert "is a file, not a folder" in unwritable_reason(blocker, folder=True)
    assert "is a folder, not a file" in unwritable_reason(tmp_path)
    assert "is not writable (read-only file system" in unwritable_reason(read_only / "out.nii.gz")
    assert "read-only file system" in unwritable_reason(read_only / "sub" / "series", folder=True)


@pytest.mark.parametrize("output", ["ro/out.nii.gz", "ro/series", "notes.txt/out.nii.gz"])
def test_synthesize_refuses_an_unwritable_output_before_the_generator_runs(
    tmp_path, mr_nifti, read_only, monkeypatch, capsys, output
):
    (tmp_path / "notes.txt").write_text("a file")
    plugin = make_builtin_plugin(tmp_path / "plugin")

    def must_not_run(*args, **kwargs):
        raise AssertionError("the generator ran although the output could not be written")

    monkeypatch.setattr(runtime, "synthesize", must_not_run)
    rc = main(["synthesize", "--plugin", str(plugin), str(mr_nifti), str(tmp_path / output), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"synthesize: error: cannot write {tmp_path / output}" in err


@pytest.mark.parametrize("option", ["--json", "--report"])
def test_compare_refuses_an_unwritable_output_with_a_message(tmp_path, mr_nifti, read_only, capsys, option):
    volume = Volume(np.ones((4, 12, 8), np.float32), Geometry(np.zeros(3), np.ones(3), np.eye(3)), "MR")
    volume.provenance = Provenance("eraser", "1.0")
    synthesized = save_nifti(volume, tmp_path / "synth.nii.gz")
    out = read_only / "result.out"
    assert main(["compare", str(mr_nifti), str(synthesized), option, str(out)]) == 2
    captured = capsys.readouterr()
    assert f"compare: cannot write {out}" in captured.err
    assert "MAE" not in captured.out  # refused before the maps were computed


def test_diversity_refuses_an_unwritable_json_with_a_message(tmp_path, mr_nifti, read_only, capsys):
    plugin = make_builtin_plugin(tmp_path / "plugin")
    out = read_only / "diversity.json"
    assert main(["plugins", "diversity", str(plugin), "--real", str(mr_nifti), "--json", str(out)]) == 2
    assert f"plugins diversity: error: cannot write {out}" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("option", ["--json", "--report"])
def test_compare_force_never_swaps_a_pipe_or_device_for_a_file(tmp_path, mr_nifti, capsys, option):
    # The same rename would replace /dev/null (or what /dev/stdout points at) when run as root.
    volume = Volume(np.ones((4, 12, 8), np.float32), Geometry(np.zeros(3), np.ones(3), np.eye(3)), "MR")
    volume.provenance = Provenance("eraser", "1.0")
    synthesized = save_nifti(volume, tmp_path / "synth.nii.gz")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert main(["compare", str(mr_nifti), str(synthesized), option, str(pipe), "--force"]) == 2
    assert "is a device, pipe or socket, not a file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert unwritable_reason("/dev/null") is not None
