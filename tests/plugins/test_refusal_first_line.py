"""Every refusal's first line says what is wrong and what to change (issue 22); details follow.

Each case builds a broken plugin the way a researcher would get it wrong and reads the first
line ``plugins check`` shows for the failing step.
"""

from __future__ import annotations

import pickle
import re
import warnings

import pytest
import torch
import yaml

from app.plugins.contract import check_plugin
from tests.plugins.plugin_factory import (
    make_builtin_plugin,
    make_torchscript_plugin,
    sha256,
    write_manifest,
)


def _manifest(folder):
    return yaml.safe_load((folder / "plugin.yaml").read_text())


def _replace_weights(folder, write) -> None:
    """Put other bytes in the weights file and vouch for them in the manifest (right hash)."""
    data = _manifest(folder)
    path = folder / data["weights"]["file"]
    write(path)
    data["weights"]["sha256"] = sha256(path)
    write_manifest(folder, data)


def wrong_ngf(folder):
    make_builtin_plugin(folder)
    data = _manifest(folder)
    data["architecture"]["ngf"] = 64
    write_manifest(folder, data)


def wrong_type(folder):
    make_builtin_plugin(folder)
    data = _manifest(folder)
    data["architecture"]["type"] = "resnet_9blocks"
    write_manifest(folder, data)


def wrong_hash(folder):
    make_builtin_plugin(folder)
    (folder / "latest_net_G.pth").write_bytes(b"retrained")


def code_running_pickle(folder):
    make_builtin_plugin(folder)
    _replace_weights(folder, lambda p: p.write_bytes(pickle.dumps(eval, protocol=4)))


def plain_pickle(folder):
    make_builtin_plugin(folder)
    _replace_weights(folder, lambda p: p.write_bytes(pickle.dumps({"w": [1.0]}, protocol=5)))


def garbage_weights(folder):
    make_builtin_plugin(folder)
    _replace_weights(folder, lambda p: p.write_bytes(b"\x00\x01 not a checkpoint"))


def torchscript_as_state_dict(folder):
    make_builtin_plugin(folder)

    def script(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.script(torch.nn.Tanh()).save(str(path))

    _replace_weights(folder, script)


def state_dict_as_torchscript(folder):
    make_builtin_plugin(folder)
    data = _manifest(folder)
    data["architecture"] = {"type": "torchscript"}
    write_manifest(folder, data)


def unreadable_onnx(folder):
    make_builtin_plugin(folder)
    data = _manifest(folder)
    data["architecture"] = {"type": "onnx"}
    write_manifest(folder, data)


def weights_outside(folder):
    make_builtin_plugin(folder)
    data = _manifest(folder)
    data["weights"]["file"] = "../elsewhere.pth"
    (folder.parent / "elsewhere.pth").write_bytes(b"x")
    write_manifest(folder, data)


def missing_weights(folder):
    make_builtin_plugin(folder)
    (folder / "latest_net_G.pth").unlink()


def yaml_tag(folder):
    make_builtin_plugin(folder)
    text = (folder / "plugin.yaml").read_text()
    (folder / "plugin.yaml").write_text(text.replace("task: cross-modality", "task: !!python/name:os.system"))


def yaml_syntax(folder):
    make_builtin_plugin(folder)
    (folder / "plugin.yaml").write_text((folder / "plugin.yaml").read_text() + "plane: [axial\n")


def schema_field(folder):
    make_builtin_plugin(folder, task="colourise", patch_size=[64, 1e30])


class _Small(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 64) if x.shape[-1] < 64 else torch.tanh(x)


def probe_too_small(folder):
    make_torchscript_plugin(folder, _Small())


CASES = {
    wrong_ngf: r"weights have ngf 4, manifest says 64: set architecture\.ngf: 4$",
    wrong_type: r"weights have type resnet_6blocks, manifest says resnet_9blocks: set architecture\.type: resnet_6blocks$",
    wrong_hash: r"SHA-256 mismatch, refusing to load: .* set weights\.sha256: [0-9a-f]{64}$",
    code_running_pickle: r"would run code \(builtins\.eval\) when loaded; re-save the generator with torch\.save",
    plain_pickle: r"a plain Python pickle \(protocol 5\), not a PyTorch checkpoint: re-save",
    garbage_weights: r"not a PyTorch checkpoint .*: re-save the generator",
    torchscript_as_state_dict: r"a TorchScript archive, not a state dict: set architecture\.type: torchscript",
    state_dict_as_torchscript: r"a torch\.save checkpoint, not TorchScript: set architecture\.type to the built-in",
    unreadable_onnx: r"not a readable ONNX model .*: export it again .* or set architecture\.type",
    weights_outside: r"weights\.file: \.\./elsewhere\.pth resolves outside the plugin folder .*: copy the file into",
    missing_weights: r"weights\.file: .*latest_net_G\.pth does not exist: put the file there or fix the name",
    yaml_tag: r"plugin\.yaml:\d+: YAML tags .* not allowed in a manifest: remove the tag",
    yaml_syntax: r"plugin\.yaml:\d+: not valid YAML: .*: fix the syntax on that line",
    schema_field: r"patch_size\.1: 1e\+30 is not a whole number: write an integer \(1 more problem below\)$",
    probe_too_small: r"fails on 32 x 32 images but runs on 64 x 64: set size_multiple: 64",
}


@pytest.mark.parametrize("make", list(CASES), ids=lambda make: make.__name__)
def test_first_line_says_what_to_change(tmp_path, make):
    folder = tmp_path / "plugin"
    make(folder)
    failed = [step for step in check_plugin(folder) if not step.passed]
    assert len(failed) == 1
    first = failed[0].detail.splitlines()[0]
    assert re.search(CASES[make], first), first
    assert len(first) < 400 and "Traceback" not in failed[0].detail
