"""ONNX models exported the default way (torch.onnx.export without dynamic_axes) have a fixed
batch of 1 and a fixed image size: they must run (one image at a time, tiled to the declared
patch) or be refused with a message that says what to change, never a traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from app.core.volume import Geometry, Volume
from app.plugins.contract import check_plugin
from app.plugins.errors import PluginError
from app.plugins.loading import load_plugin
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, synthesize
from tests.plugins.plugin_factory import manifest_data, sha256, write_manifest


def negating_onnx_plugin(folder, input_shape, **overrides):
    """y = -x with the given declared input/output shape (ints fixed, strings dynamic)."""
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])],
        "neg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, input_shape)],
    )
    folder.mkdir(parents=True)
    path = folder / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    data = manifest_data(
        path.name,
        sha256(path),
        architecture={"type": "onnx"},
        normalization={
            "input": {"method": "window", "low": 0, "high": 1000},
            "output": {"method": "same_as_input"},
        },
        **overrides,
    )
    write_manifest(folder, data)
    return folder


def volume(shape=(5, 40, 48)) -> Volume:
    voxels = np.random.default_rng(0).uniform(0, 1000, size=shape).astype(np.float32)
    return Volume(voxels, Geometry.identity(), modality="MR", name="t1")


def test_fixed_batch_of_one_runs_image_by_image(tmp_path):
    folder = negating_onnx_plugin(tmp_path / "p", [1, 1, "h", "w"])
    assert all(step.passed for step in check_plugin(folder))
    source = volume()
    result = synthesize(load_plugin(load_manifest(folder)), source, RunOptions(device="cpu", batch_size=4))
    np.testing.assert_allclose(result.volume.voxels, 1000.0 - source.voxels, atol=1e-3)


def test_fixed_image_size_is_tiled_to_the_declared_patch(tmp_path):
    folder = negating_onnx_plugin(tmp_path / "p", [1, 1, 32, 32], patch_size=[32, 32])
    assert all(step.passed for step in check_plugin(folder))
    source = volume()
    result = synthesize(load_plugin(load_manifest(folder)), source, RunOptions(device="cpu", batch_size=4))
    np.testing.assert_allclose(result.volume.voxels, 1000.0 - source.voxels, atol=1e-3)


def test_fixed_image_size_without_patch_size_says_what_to_add(tmp_path):
    folder = negating_onnx_plugin(tmp_path / "p", [1, 1, 32, 32])
    with pytest.raises(PluginError, match=r"fixed 32 x 32 images .* patch_size: \[32, 32\]"):
        synthesize(load_plugin(load_manifest(folder)), volume(), RunOptions(device="cpu"))
    fake_size = negating_onnx_plugin(tmp_path / "q", [1, 1, 64, 64])
    steps = check_plugin(fake_size)  # the contract's 32 px fake input meets the same refusal
    assert not steps[-1].passed and "patch_size: [64, 64]" in steps[-1].detail
