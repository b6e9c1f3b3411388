"""Adversarial weights files for ``--lpips-weights`` / ``--fid-weights`` (and every weights file
read through ``app.plugins.weights``): a pipe, a device or a folder is refused at once (reading
one would block forever or fill the memory), and a state dict of the right keys and shapes whose
tensors are integers, complex or hold NaN / inf is refused in one line instead of giving a wrong
figure (integer weights were silently truncated to 0: LPIPS 0) or a null value without a reason."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from app.plugins.errors import ArchitectureMismatchError, WeightsFormatError
from app.plugins.fid_metric import FEATURES, entry_from_features, load_fid
from app.plugins.learned_metrics import NOT_FINITE
from app.plugins.lpips_metric import (
    SCALING_SCALE,
    SCALING_SHIFT,
    LoadedLpips,
    LpipsAlex,
    load_lpips,
    lpips_entry,
)
from app.plugins.weights import WeightsBytes, sha256_of_file, state_dict_mismatch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="named pipes and /dev/zero are POSIX")


def _lpips_like_state() -> dict:
    """A random AlexNet trunk with lpips' input scaling and non-negative linear layers (as the
    package's calibrated ones): what load_lpips accepts."""
    torch.manual_seed(0)
    state = LpipsAlex().state_dict()
    state["scaling_layer.shift"] = torch.tensor(SCALING_SHIFT).view(1, 3, 1, 1)
    state["scaling_layer.scale"] = torch.tensor(SCALING_SCALE).view(1, 3, 1, 1)
    return {key: value.abs() if key.startswith("lin") else value for key, value in state.items()}


@pytest.fixture(scope="module")
def lpips_state():
    return _lpips_like_state()


def test_lpips_weights_that_are_not_the_calibration_are_refused(tmp_path, lpips_state):
    """A file of LPIPS' shapes with negative linear weights gave LPIPS -0.0005; one with another
    input scaling feeds the trunk other values: both are refused, naming the tensor."""
    negative = {**lpips_state, "lin2.model.1.weight": -lpips_state["lin2.model.1.weight"] - 0.01}
    torch.save(negative, tmp_path / "negative.pth")
    with pytest.raises(ArchitectureMismatchError, match="lin2.model.1.weight has negative weights"):
        load_lpips(tmp_path / "negative.pth")
    unscaled = {**lpips_state, "scaling_layer.scale": torch.ones(1, 3, 1, 1)}
    torch.save(unscaled, tmp_path / "unscaled.pth")
    with pytest.raises(ArchitectureMismatchError, match=r"scaling_layer.scale is \[1.0, 1.0, 1.0\], lpips' is"):
        load_lpips(tmp_path / "unscaled.pth")


@pytest.mark.parametrize("loader", [load_lpips, load_fid])
def test_a_pipe_a_device_or_a_folder_is_refused_without_reading(tmp_path, loader):
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)  # no writer: reading it would block forever
    with pytest.raises(WeightsFormatError, match=r"^weights.pth: not a regular file \(a pipe"):
        loader(fifo)
    with pytest.raises(WeightsFormatError, match=r"^zero: not a regular file"):
        loader("/dev/zero")  # endless: reading it would fill the memory
    with pytest.raises(WeightsFormatError, match=r"^weights-folder: a folder, not a weights file"):
        (tmp_path / "weights-folder").mkdir()
        loader(tmp_path / "weights-folder")
    with pytest.raises(WeightsFormatError):
        sha256_of_file(fifo)  # a plugin's hash check: the same refusal
    with pytest.raises(WeightsFormatError):
        WeightsBytes.read(fifo)


def test_a_symlink_to_a_weights_file_is_followed(tmp_path, lpips_state):
    target = tmp_path / "elsewhere" / "lpips_alex.pth"
    target.parent.mkdir()
    torch.save(lpips_state, target)
    (tmp_path / "link.pth").symlink_to(target)
    assert load_lpips(tmp_path / "link.pth").weights_sha256 == sha256_of_file(target)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda t: t.to(torch.int64), "holds int64 values, expected floating point"),
        (lambda t: t.to(torch.complex64), "holds complex64 values, expected floating point"),
        (lambda t: t.clone().fill_(float("nan")), "holds NaN or infinite values"),
        (lambda t: t.clone().fill_(float("inf")), "holds NaN or infinite values"),
    ],
)
def test_lpips_weights_of_the_right_shape_but_unusable_values_are_refused(tmp_path, lpips_state, change, detail):
    state = {key: change(value) if key == "lin0.model.1.weight" else value for key, value in lpips_state.items()}
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ArchitectureMismatchError, match=rf"^bad.pth: not an LPIPS .*lin0.model.1.weight {detail}"):
        load_lpips(tmp_path / "bad.pth")


def test_half_precision_lpips_weights_still_load(tmp_path, lpips_state):
    torch.save({key: value.half() for key, value in lpips_state.items()}, tmp_path / "half.pth")
    load_lpips(tmp_path / "half.pth")


def test_state_dict_mismatch_names_the_first_problem():
    expected = {"a": torch.zeros(2), "b": torch.zeros(3), "steps": torch.zeros((), dtype=torch.int64)}
    assert state_dict_mismatch(dict(expected), expected) is None
    assert state_dict_mismatch({"a": torch.zeros(2)}, expected) == "missing b and 1 more"
    assert state_dict_mismatch({**expected, "c": torch.zeros(1)}, expected) == "unexpected c"
    assert state_dict_mismatch({**expected, "b": torch.zeros(4)}, expected) == "shape of b is (4,), expected (3,)"
    assert state_dict_mismatch({**expected, "b": torch.tensor([0.0, np.nan, 0.0])}, expected) == (
        "b holds NaN or infinite values"
    )


def test_a_network_giving_nan_is_a_reason_not_a_null_without_one(lpips_state):
    network = LpipsAlex()
    network.load_state_dict({**lpips_state, "lin0.model.1.weight": torch.full_like(lpips_state["lin0.model.1.weight"], 3e38)})
    image = np.random.default_rng(0).random((40, 40))
    entry = lpips_entry(LoadedLpips(network.eval(), "huge.pth", "0" * 64), [(image, 1 - image)])
    assert entry.value is None and entry.reason == NOT_FINITE
    features = np.random.default_rng(1).random((4, FEATURES))
    broken = features.copy()
    broken[0, 0] = np.nan
    fid = entry_from_features(features, broken, "fid.pth", "0" * 64)
    assert fid.value is None and fid.reason == NOT_FINITE


def test_compare_refuses_a_pipe_as_weights_in_one_line_without_hanging(tmp_path, capsys):
    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume
    from app.io.nifti import save_nifti
    from main import main

    voxels = np.random.default_rng(0).normal(100, 10, (4, 24, 24)).astype(np.float32)
    original = save_nifti(Volume(voxels, Geometry.identity(), "MR", name="o"), tmp_path / "o.nii.gz")
    synthesized = save_nifti(
        Volume(voxels + 1, Geometry.identity(), "MR", name="s", provenance=Provenance("g", "1")), tmp_path / "s.nii.gz"
    )
    os.mkfifo(tmp_path / "lpips.pth")
    for option in ("--lpips-weights", "--fid-weights"):
        assert main(["compare", str(original), str(synthesized), option, str(tmp_path / "lpips.pth")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"compare: {option} ") and "not a regular file" in err


def test_fid_weights_with_negative_batch_norm_variances_are_refused(tmp_path):
    """Right keys and shapes, but a variance below 0: every feature would be NaN."""
    from app.plugins.fid_metric import FidInceptionV3

    state = FidInceptionV3().state_dict()
    state["Conv2d_1a_3x3.bn.running_var"] = -state["Conv2d_1a_3x3.bn.running_var"] - 1
    torch.save(state, tmp_path / "fid.pth")
    with pytest.raises(ArchitectureMismatchError, match="Conv2d_1a_3x3.bn.running_var holds negative variances"):
        load_fid(tmp_path / "fid.pth")
