"""Discovery (user folder, entry points, broken manifests), lazy torch, and the contract check."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import app.plugins.discovery as discovery
from app.plugins.contract import check_plugin
from app.plugins.discovery import discover_plugins, find_plugin
from app.plugins.errors import PluginNotFoundError
from app.plugins.manifest import ArchitectureSpec
from tests.plugins.plugin_factory import make_builtin_plugin, write_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-plugins"
    make_builtin_plugin(folder / "good")
    write_manifest(folder / "broken", {"name": "broken", "version": "1"})
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(folder))
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])
    return folder


def test_user_folder_plugins_are_found_and_broken_ones_listed_with_their_error(user_dir):
    found = {p.name: p for p in discover_plugins(include_repository=False)}
    assert found["tiny-mr2ct"].manifest is not None and found["tiny-mr2ct"].source == "user"
    assert found["broken"].manifest is None and "missing required field 'task'" in found["broken"].error
    assert find_plugin("tiny-mr2ct").folder == (user_dir / "good").resolve()


def test_unknown_name_lists_available_plugins(user_dir):
    with pytest.raises(PluginNotFoundError, match="available plugins: .*tiny-mr2ct"):
        find_plugin("no-such-plugin")


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    folder = make_builtin_plugin(tmp_path / "pkg_plugin", name="from-entry-point")
    module = tmp_path / "my_plugin_pkg.py"
    module.write_text(f"def plugin_folder():\n    return {str(folder)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(tmp_path / "empty"))
    entry = EntryPoint(name="mine", value="my_plugin_pkg:plugin_folder", group=discovery.ENTRY_POINT_GROUP)
    monkeypatch.setattr(discovery, "entry_points", lambda group: [entry])
    found = {p.name: p for p in discover_plugins(include_repository=False)}
    assert found["from-entry-point"].source == "entry point mine"


def test_an_entry_point_named_failed_is_not_taken_for_a_failure(tmp_path, monkeypatch):
    """Discovery once told a failure by the word 'failed' in the source text."""
    folder = make_builtin_plugin(tmp_path / "pkg_plugin", name="from-entry-point")
    (tmp_path / "failed_pkg.py").write_text(f"def plugin_folder():\n    return {str(folder)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(tmp_path / "empty"))
    good = EntryPoint(name="failed", value="failed_pkg:plugin_folder", group=discovery.ENTRY_POINT_GROUP)
    broken = EntryPoint(name="broken", value="no_such_pkg:x", group=discovery.ENTRY_POINT_GROUP)
    monkeypatch.setattr(discovery, "entry_points", lambda group: [good, broken])
    found = {p.source: p for p in discover_plugins(include_repository=False)}
    assert found["entry point failed"].manifest is not None
    assert found["entry point broken"].manifest is None and "failed" in found["entry point broken"].error


def test_discovery_and_manifests_do_not_import_torch(user_dir):
    code = (
        "import sys; from app.plugins.discovery import discover_plugins; discover_plugins();"
        "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_contract_check_passes_for_a_good_plugin_with_reverse_generator(tmp_path):
    folder = make_builtin_plugin(tmp_path / "p", spec=ArchitectureSpec("unet_128", 1, 1, ngf=2, norm="batch"))
    forward = make_builtin_plugin(tmp_path / "p" / "reverse")
    import yaml

    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    reverse = yaml.safe_load((forward / "plugin.yaml").read_text())
    data["reverse"] = {
        "architecture": reverse["architecture"],
        "weights": {"file": "reverse/latest_net_G.pth", "sha256": reverse["weights"]["sha256"]},
    }
    write_manifest(folder, data)
    steps = check_plugin(folder)
    assert [s.name for s in steps] == [
        "manifest",
        "network input",
        "generator weights",
        "generator contract",
        "reverse generator weights",
        "reverse generator contract",
    ]
    assert all(s.passed for s in steps), steps
    assert "(1, 1, 128, 128)" in steps[3].detail


def test_contract_check_reports_the_failing_step(tmp_path):
    folder = make_builtin_plugin(tmp_path / "p")
    (folder / "latest_net_G.pth").write_bytes(b"replaced")
    steps = check_plugin(folder)
    assert steps[0].passed and not steps[-1].passed and "SHA-256 mismatch" in steps[-1].detail
