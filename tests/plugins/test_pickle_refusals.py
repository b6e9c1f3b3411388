"""Code-running pickles are refused by reading their opcodes, naming what they would run, in one
first line; nothing runs, and torch's own warnings never reach stderr (issues 13 and 22)."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pytest
import torch

from app.plugins.errors import UnsafeWeightsError, WeightsFormatError
from app.plugins.pickle_scan import scan_pickle_stream
from app.plugins.weights import load_state_dict, sha256_of_file
from tests.plugins.plugin_factory import make_builtin_plugin, run_plugins_check


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


def _protocol_0_inst(marker: Path) -> bytes:
    """INST opcode (protocol 0): imports and calls os.system with the marked arguments."""
    return f"(S'touch {marker}'\nios\nsystem\np0\n.".encode()


def _memoised_stack_global(marker: Path) -> bytes:
    """STACK_GLOBAL whose module and name strings come back from the memo (BINGET), as a
    hand-made protocol 4 pickle would hide them."""
    body = (
        b"\x8c\x05posix\x94"  # SHORT_BINUNICODE 'posix', MEMOIZE (0)
        b"\x8c\x06system\x94"  # 'system', MEMOIZE (1)
        b"0"  # POP: drop 'system' from the stack
        b"h\x01"  # BINGET 1: 'system' again
        b"\x93"  # STACK_GLOBAL posix.system
        b"\x8c" + bytes([len(f"touch {marker}")]) + f"touch {marker}".encode() + b"\x85R."
    )
    return b"\x80\x04" + body


CASES = {
    "torch.save zip, os.system": ("zip", "posix.system"),
    "torch.save legacy, os.system": ("legacy", "posix.system"),
    "pickle protocol 2, eval": ("p2-eval", "builtins.eval"),
    "pickle protocol 4, os.system": ("p4", "posix.system"),
    "pickle protocol 5, os.system": ("p5", "posix.system"),
    "protocol 0 INST": ("inst", "os.system"),
    "memoised STACK_GLOBAL": ("memo", "posix.system"),
    "plain pickle of tensors": ("p5-tensors", "torch.storage._load_from_bytes"),
}


def _write(kind: str, path: Path, marker: Path) -> None:
    payload = {"model.1.weight": torch.zeros(2), "x": _System(marker)}
    if kind == "zip":
        torch.save(payload, path)
    elif kind == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    elif kind == "p2-eval":
        path.write_bytes(pickle.dumps([_Eval(marker)], protocol=2))
    elif kind in ("p4", "p5"):
        path.write_bytes(pickle.dumps({"x": _System(marker)}, protocol=int(kind[1])))
    elif kind == "inst":
        path.write_bytes(_protocol_0_inst(marker))
    elif kind == "memo":
        path.write_bytes(_memoised_stack_global(marker))
    elif kind == "p5-tensors":
        path.write_bytes(pickle.dumps({"model.1.weight": torch.zeros(2)}, protocol=5))


@pytest.mark.parametrize("case", list(CASES))
def test_code_running_pickles_are_refused_naming_the_global(tmp_path, case):
    kind, offender = CASES[case]
    marker, path = tmp_path / "code-ran", tmp_path / "latest_net_G.pth"
    _write(kind, path, marker)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning torch let through would fail the test
        with pytest.raises(UnsafeWeightsError) as caught:
            load_state_dict(path)
    first = str(caught.value).splitlines()[0]
    assert first.startswith(
        f"latest_net_G.pth: refused: the weights file would run code ({offender}) when loaded;"
    )
    assert "torch.save(model.state_dict(), path)" in first and len(first) < 300
    assert not marker.exists()


def test_the_hand_made_pickles_really_would_run_code(tmp_path):
    """The scanner's cases are real: unpickled, each of them runs its command."""
    for maker in (_protocol_0_inst, _memoised_stack_global):
        marker = tmp_path / maker.__name__
        pickle.loads(maker(marker))  # noqa: S301 (the point of the test)
        assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickle_without_code_is_named_as_such(tmp_path, protocol):
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"epoch": 3, "lr": [0.1, 0.2]}, protocol=protocol))
    with pytest.raises(WeightsFormatError) as caught:
        load_state_dict(path)
    text = str(caught.value)
    assert text.startswith(f"weights.pkl: a plain Python pickle (protocol {protocol}), not a PyTorch checkpoint:")
    assert "corrupt" not in text and "\n" not in text


def test_legacy_and_zip_state_dicts_still_load(tmp_path):
    state = {"a": torch.arange(3.0), "b": torch.ones(2, dtype=torch.float16)}
    for name, legacy in (("new.pth", False), ("old.pth", True)):
        torch.save(state, tmp_path / name, _use_new_zipfile_serialization=not legacy)
        loaded = load_state_dict(tmp_path / name)
        assert torch.equal(loaded["a"], state["a"]) and loaded["b"].dtype == torch.float16


def test_scan_reports_protocol_and_format(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    scan = scan_pickle_stream((tmp_path / "old.pth").read_bytes())
    assert scan.legacy_torch and scan.unsafe_globals == () and "torch._utils._rebuild_tensor_v2" in scan.globals
    plain = scan_pickle_stream(pickle.dumps({"a": 1}, protocol=4))
    assert plain.protocol == 4 and not plain.legacy_torch and plain.globals == ()


def test_torchscript_file_declared_as_a_state_dict_says_which_type_to_set(tmp_path):
    path = tmp_path / "g.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(torch.nn.Tanh()).save(str(path))
    with pytest.raises(WeightsFormatError, match=r"^g.pt: a TorchScript archive, not a state dict: set architecture.type: torchscript"):
        load_state_dict(path)


def test_plugins_check_on_a_legacy_pickle_prints_one_refusal_and_nothing_from_torch(tmp_path):
    folder = make_builtin_plugin(tmp_path / "evil")
    weights = folder / "latest_net_G.pth"
    marker = tmp_path / "code-ran"
    torch.save({"x": _System(marker)}, weights, _use_new_zipfile_serialization=False)
    text = (folder / "plugin.yaml").read_text()
    sha = [line.split()[-1] for line in text.splitlines() if "sha256" in line][0]
    (folder / "plugin.yaml").write_text(text.replace(sha, sha256_of_file(weights)))
    result = run_plugins_check(folder)
    assert result.returncode == 1 and not marker.exists()
    assert result.stderr.strip() == "plugin check FAILED"  # no UserWarning, no source line
    failure = next(line for line in result.stdout.splitlines() if line.startswith("FAIL"))
    assert "would run code (posix.system) when loaded" in failure


def test_pickle_with_a_clean_zip_appended_is_still_scanned_as_a_pickle(tmp_path):
    """torch.load reads a file as a zip only when it starts like one; so does the scanner."""
    clean = tmp_path / "clean.pth"
    torch.save({"a": torch.zeros(1)}, clean)
    marker = tmp_path / "code-ran"
    polyglot = tmp_path / "polyglot.pth"
    polyglot.write_bytes(pickle.dumps(_System(marker), protocol=2) + clean.read_bytes())
    with pytest.raises(UnsafeWeightsError, match=r"would run code \(posix.system\)"):
        load_state_dict(polyglot)
    assert not marker.exists()


def test_weights_swapped_after_the_hash_check_are_not_what_is_loaded(tmp_path, monkeypatch):
    """The bytes hashed are the bytes scanned and loaded: replacing the file between the hash
    check and torch.load changes nothing."""
    import app.plugins.loading as loading
    from app.plugins.loading import load_plugin
    from app.plugins.manifest import load_manifest

    folder = make_builtin_plugin(tmp_path / "p")
    manifest = load_manifest(folder)
    marker = tmp_path / "code-ran"
    real_read = loading.read_verified

    def read_then_swap(path, sha):
        verified = real_read(path, sha)
        Path(path).write_bytes(pickle.dumps(_System(marker), protocol=2))  # the attacker's move
        return verified

    monkeypatch.setattr(loading, "read_verified", read_then_swap)
    plugin = load_plugin(manifest)
    assert plugin.weights_sha256 == manifest.weights.sha256 and not marker.exists()
    output = plugin.generator(torch.zeros(1, 1, 32, 32))
    assert output.shape == (1, 1, 32, 32)
