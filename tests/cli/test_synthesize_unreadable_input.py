"""``main.py synthesize`` on an input the loader refuses: a message and exit code 2, no traceback."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from main import main
from tests.plugins.plugin_factory import make_builtin_plugin


def _corrupt(path):
    path.write_bytes(b"not an image")


def _four_d(path):
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4, 2), np.int16), np.eye(4)), str(path))


@pytest.mark.parametrize(
    ("write", "expected"),
    [(_corrupt, "not a readable NIfTI image"), (_four_d, "is a 4D image: 2 volumes")],
)
def test_unreadable_input_is_a_message_not_a_traceback(tmp_path, capsys, write, expected):
    source = tmp_path / "input.nii.gz"
    write(source)
    plugin = make_builtin_plugin(tmp_path / "plugin")
    rc = main(["synthesize", "--plugin", str(plugin), str(source), str(tmp_path / "out.nii.gz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("synthesize: error: input.nii.gz") and expected in err
    assert not (tmp_path / "out.nii.gz").exists()
