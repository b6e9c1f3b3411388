"""Weights are data: hash checked, malicious pickles refused before they run, formats read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from app.plugins.errors import UnsafeWeightsError, WeightsFormatError, WeightsHashMismatchError
from app.plugins.loading import load_generator, load_plugin
from app.plugins.manifest import ArchitectureSpec, WeightsRef, load_manifest
from app.plugins.weights import load_state_dict, sha256_of_file, verify_sha256
from tests.plugins.plugin_factory import make_builtin_plugin


class _RunsCodeWhenUnpickled:
    """What a malicious checkpoint holds: unpickling calls a function of the attacker's choice."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    weights = tmp_path / "latest_net_G.pth"
    torch.save({"model.1.weight": torch.zeros(1), "payload": _RunsCodeWhenUnpickled(marker)}, weights)
    with pytest.raises(UnsafeWeightsError) as caught:
        load_state_dict(weights)
    assert "would run code" in str(caught.value) and "state_dict" in str(caught.value)
    assert not marker.exists()


def test_malicious_pickle_refused_through_a_plugin_with_correct_hash(tmp_path):
    folder = make_builtin_plugin(tmp_path / "evil")
    marker = tmp_path / "code-ran"
    torch.save({"x": _RunsCodeWhenUnpickled(marker)}, folder / "latest_net_G.pth")
    text = (folder / "plugin.yaml").read_text()
    manifest = load_manifest(folder)
    (folder / "plugin.yaml").write_text(
        text.replace(manifest.weights.sha256, sha256_of_file(folder / "latest_net_G.pth"))
    )
    with pytest.raises(UnsafeWeightsError):
        load_plugin(load_manifest(folder))
    assert not marker.exists()


def test_hash_mismatch_names_both_hashes_and_stops_before_loading(tmp_path):
    folder = make_builtin_plugin(tmp_path / "p")
    manifest = load_manifest(folder)
    with open(manifest.weights.path, "ab") as stream:
        stream.write(b"tampered")
    with pytest.raises(WeightsHashMismatchError) as caught:
        load_plugin(manifest)
    text = str(caught.value)
    assert manifest.weights.sha256 in text and sha256_of_file(manifest.weights.path) in text
    assert "refusing to load" in text


def test_verify_returns_the_hash(tmp_path):
    path = tmp_path / "w"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert verify_sha256(path, expected.upper()) == expected


def test_garbage_and_non_state_dict_files_are_format_errors(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(WeightsFormatError, match="not a PyTorch checkpoint"):
        load_state_dict(garbage)
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(WeightsFormatError, match="expected a state dict of tensors"):
        load_state_dict(listing)


def test_wrapped_and_data_parallel_checkpoints_are_unwrapped(tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module.model.1.weight": torch.ones(2)}, "epoch": 3}, path)
    assert list(load_state_dict(path)) == ["model.1.weight"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_and_onnx_generators_run(tmp_path):
    scripted = tmp_path / "g.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.Tanh())).save(str(scripted))
    generator, _ = load_generator(
        ArchitectureSpec("torchscript"), WeightsRef(scripted, sha256_of_file(scripted))
    )
    x = torch.linspace(-2, 2, 16).reshape(1, 1, 4, 4)
    assert torch.allclose(generator(x), torch.tanh(x))

    # ONNX graph built by hand: y = tanh(0.5 * x)
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "half"], ["h"]), helper.make_node("Tanh", ["h"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        initializer=[half],
    )
    model_path = tmp_path / "g.onnx"
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    )  # older runtimes read it
    onnx.save(model, str(model_path))
    onnx_generator, _ = load_generator(
        ArchitectureSpec("onnx"), WeightsRef(model_path, sha256_of_file(model_path))
    )
    np.testing.assert_allclose(onnx_generator(x).numpy(), np.tanh(0.5 * x.numpy()), atol=1e-6)


def test_onnx_opset_newer_than_onnxruntime_says_so_without_the_cpp_signature(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)], ir_version=8)
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    with pytest.raises(WeightsFormatError) as caught:
        load_generator(ArchitectureSpec("onnx"), WeightsRef(path, sha256_of_file(path)))
    text = str(caught.value)
    assert "g.onnx: not a readable ONNX model" in text
    assert "99" in text and "opset" in text.lower()
    assert "onnxruntime_src" not in text and "std::" not in text
