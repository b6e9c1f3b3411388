"""Hostile plugin folders (issue 13): files outside the folder, YAML bombs, absurd numbers.

Each is refused with one line naming the field, before any weights file is read or hashed, and
one bad plugin never stops the others from being listed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

import app.plugins.discovery as discovery
import app.plugins.weights as weights_module
from app.plugins.discovery import discover_plugins
from app.plugins.errors import ManifestError, UnsafeWeightsError
from app.plugins.loading import load_plugin
from app.plugins.manifest import MAX_MANIFEST_BYTES, load_manifest
from tests.plugins.plugin_factory import make_builtin_plugin, run_plugins_check, sha256


def _rewrite(folder: Path, change) -> None:
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    change(data)
    (folder / "plugin.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def no_hashing(monkeypatch):
    """Fail the test if anything is hashed: a refusal must come before the file is read."""

    def forbidden(path):
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(weights_module, "sha256_of_file", forbidden)
    monkeypatch.setattr(weights_module.WeightsBytes, "read", forbidden)


@pytest.fixture
def outside(tmp_path) -> Path:
    secret = tmp_path / "outside" / "x.pt"
    secret.parent.mkdir()
    secret.write_bytes(b"secret bytes the manifest must not reach")
    return secret


def _refusal(folder: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    return str(caught.value)


def test_weights_file_with_dot_dot_is_refused(tmp_path, outside, no_hashing):
    folder = make_builtin_plugin(tmp_path / "plugins" / "p")
    _rewrite(folder, lambda d: d["weights"].update(file="../../outside/x.pt", sha256=sha256(outside)))
    text = _refusal(folder)
    assert "\n" not in text
    assert "weights.file: ../../outside/x.pt resolves outside the plugin folder" in text
    assert "copy the file into" in text


def test_absolute_weights_path_is_refused(tmp_path, outside, no_hashing):
    folder = make_builtin_plugin(tmp_path / "p")
    _rewrite(folder, lambda d: d["weights"].update(file=str(outside)))
    assert f"weights.file: {outside} is an absolute path" in _refusal(folder)
    _rewrite(folder, lambda d: d["weights"].update(file="/etc/passwd"))
    assert "weights.file: /etc/passwd is an absolute path" in _refusal(folder)


def test_symlink_leading_out_of_the_folder_is_refused(tmp_path, outside, no_hashing):
    folder = make_builtin_plugin(tmp_path / "p")
    (folder / "linked.pt").symlink_to(outside)
    _rewrite(folder, lambda d: d["weights"].update(file="linked.pt", sha256=sha256(outside)))
    assert "weights.file: linked.pt resolves outside the plugin folder" in _refusal(folder)


def test_symlink_loop_is_refused(tmp_path, no_hashing):
    folder = make_builtin_plugin(tmp_path / "p")
    (folder / "a.pt").symlink_to(folder / "b.pt")
    (folder / "b.pt").symlink_to(folder / "a.pt")
    _rewrite(folder, lambda d: d["weights"].update(file="a.pt"))
    assert "weights.file: a.pt" in _refusal(folder)


def test_reverse_weights_and_model_card_file_are_confined_too(tmp_path, outside, no_hashing):
    folder = make_builtin_plugin(tmp_path / "p")

    def add_reverse(data):
        data["reverse"] = {"architecture": data["architecture"], "weights": {"file": "../outside/x.pt", "sha256": "0" * 64}}

    _rewrite(folder, add_reverse)
    assert "reverse.weights.file: ../outside/x.pt resolves outside" in _refusal(folder)
    folder = make_builtin_plugin(tmp_path / "q")
    _rewrite(folder, lambda d: d["model_card"].update(file="/etc/passwd"))
    assert "model_card.file: /etc/passwd is an absolute path" in _refusal(folder)


def test_a_manifest_with_a_few_aliases_still_loads(tmp_path):
    folder = make_builtin_plugin(tmp_path / "p")
    text = (folder / "plugin.yaml").read_text().split("training_domain:")[0]
    (folder / "plugin.yaml").write_text(text + "training_domain:\n  modalities: &mods [MR]\n  contrasts: *mods\n")
    assert load_manifest(folder).training_domain["contrasts"] == ["MR"]


def test_a_symlink_inside_the_folder_is_accepted(tmp_path):
    folder = make_builtin_plugin(tmp_path / "p")
    (folder / "weights").mkdir()
    (folder / "latest_net_G.pth").rename(folder / "weights" / "real.pth")
    (folder / "latest_net_G.pth").symlink_to(folder / "weights" / "real.pth")
    assert load_manifest(folder).weights.path == (folder / "weights" / "real.pth").resolve()


def test_weights_swapped_for_an_outside_link_after_the_manifest_was_read(tmp_path, outside):
    folder = make_builtin_plugin(tmp_path / "p")
    manifest = load_manifest(folder)
    manifest.weights.path.unlink()
    manifest.weights.path.symlink_to(outside)
    with pytest.raises(UnsafeWeightsError, match="now resolves outside the plugin folder"):
        load_plugin(manifest)


BILLION_LAUGHS = """\
name: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_refused_fast_and_discovery_lists_the_others(tmp_path, monkeypatch):
    root = tmp_path / "user-plugins"
    make_builtin_plugin(root / "good")
    (root / "bomb").mkdir(parents=True)
    (root / "bomb" / "plugin.yaml").write_text(BILLION_LAUGHS)
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(root))
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])
    started = time.perf_counter()
    found = {p.folder.name: p for p in discover_plugins(include_repository=False)}
    assert time.perf_counter() - started < 2.0
    assert found["good"].manifest is not None
    error = found["bomb"].error
    assert "\n" not in error and f"{root / 'bomb' / 'plugin.yaml'}:" in error
    assert "expands to more than 100000 values" in error and "without * aliases" in error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 16 levels"),
        ("a: &a [" + ",".join(["x"] * 400) + "]\nb: [" + ",".join(["*a"] * 400) + "]\n", "expands to more than"),
        ("name: x\n" + "# padding\n" * (MAX_MANIFEST_BYTES // 10 + 1), "larger than 1 MiB"),
        ("a: [" + "1," * 150_000 + "1]\n", "holds more than 100000 values, not a manifest"),
        ("name: [unclosed\n", "plugin.yaml:2: not valid YAML"),
        (b"name: \xff\xfe\n", "not UTF-8 text"),
    ],
)
def test_hostile_yaml_is_one_line_and_fast(tmp_path, text, expected):
    path = tmp_path / "plugin.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    started = time.perf_counter()
    message = _refusal(tmp_path)
    assert time.perf_counter() - started < 2.0
    assert expected in message and "\n" not in message and "^" not in message


def test_deep_toml_is_refused(tmp_path):
    (tmp_path / "plugin.toml").write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    assert "nested" in _refusal(tmp_path)
    (tmp_path / "plugin.toml").write_text("name = 'x'\nversion = \n")
    message = _refusal(tmp_path)
    assert f"{tmp_path / 'plugin.toml'}:2: not valid TOML" in message and "\n" not in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("patch_size", "[1.0e+30, 64]", "patch_size.0: 1e+30 is not a whole number"),
        ("patch_size", "[64, 100000]", "patch_size.1: 100000 is out of range: must be at least 1 and at most 4096"),
        ("size_multiple", "9223372036854775807", "size_multiple: 9.22337e+18 is out of range"),
        ("size_multiple", "4.5", "size_multiple: 4.5 is not a whole number"),
        ("spacing_mm", "[.inf, 1.0]", "spacing_mm.0: must be a finite number, got inf"),
        ("spacing_mm", "[.nan, 1.0]", "spacing_mm.0: must be a finite number, got nan"),
        ("spacing_mm", "[1.0e+300, 1.0]", "spacing_mm.0: 1e+300 is out of range: must be above 0 and at most 100"),
        ("context_slices", "1001", "context_slices: 1001 is out of range"),
        ("patch_overlap", "-.inf", "patch_overlap: must be a finite number, got -inf"),
    ],
)
def test_absurd_numbers_are_refused_naming_the_field(tmp_path, field, value, expected):
    folder = make_builtin_plugin(tmp_path / "p")
    (folder / "plugin.yaml").write_text((folder / "plugin.yaml").read_text() + f"{field}: {value}\n")
    message = _refusal(folder)
    assert expected in message.splitlines()[0]


@pytest.mark.parametrize(
    ("key", "value"), [("ngf", 10**9), ("input_nc", 10**6), ("output_nc", 0), ("ngf", 64.0)]
)
def test_architecture_numbers_are_bounded(tmp_path, key, value):
    folder = make_builtin_plugin(tmp_path / "p")
    _rewrite(folder, lambda d: d["architecture"].update({key: value}))
    assert f"architecture.{key}: " in _refusal(folder).splitlines()[0]


def test_toml_numbers_are_bounded_too(tmp_path):
    (tmp_path / "latest_net_G.pth").write_bytes(b"x")
    (tmp_path / "plugin.toml").write_text(
        f"""
name = "t"
version = "1"
task = "denoising"
dimensionality = "2D"
plane = "axial"
size_multiple = 1e30
input = {{ modality = "CT" }}
output = {{ modality = "CT" }}
normalization = {{ input = {{ method = "none" }}, output = {{ method = "window", low = -inf, high = 1000 }} }}
architecture = {{ type = "torchscript" }}
weights = {{ file = "latest_net_G.pth", sha256 = "{"0" * 64}" }}
model_card = {{ training_data = "t", paired = true, intended_use = "u", known_limits = "k" }}
"""
    )
    assert _refusal(tmp_path).splitlines()[0].endswith(
        "plugin.toml: normalization.output.low: must be a finite number, got -inf"
    )
    text = (tmp_path / "plugin.toml").read_text().replace("low = -inf", "low = 0")
    (tmp_path / "plugin.toml").write_text(text)
    assert "size_multiple: 1e+30 is not a whole number" in _refusal(tmp_path)


def test_plugins_check_cli_refuses_a_bomb_in_one_line(tmp_path):
    (tmp_path / "plugin.yaml").write_text(BILLION_LAUGHS)
    started = time.perf_counter()
    result = run_plugins_check(tmp_path, timeout=60)
    assert time.perf_counter() - started < 30
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  manifest: ") and "billion laughs" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_linked_manifest_reads_its_weights_beside_the_real_file(tmp_path, outside):
    real = make_builtin_plugin(tmp_path / "models" / "real")
    listed = tmp_path / "user-plugins" / "linked"
    listed.mkdir(parents=True)
    (listed / "plugin.yaml").symlink_to(real / "plugin.yaml")
    manifest = load_manifest(listed)
    assert manifest.folder == real.resolve() and manifest.weights.path == (real / "latest_net_G.pth").resolve()
    assert manifest.weights.folder == real.resolve()
