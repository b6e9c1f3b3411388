"""The frozen app's optional switch to an installed CUDA torch (packaging/runtime_hooks)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HOOK_PATH = Path(__file__).resolve().parents[2] / "packaging" / "runtime_hooks" / "external_torch.py"


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("external_torch_hook", HOOK_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not frozen: the module applies nothing on import
    return module


def _fake_torch(site_packages: Path, tag: str = "311") -> Path:
    (site_packages / "torch").mkdir(parents=True)
    (site_packages / "torch" / "__init__.py").write_text("WHERE = 'external'\n")
    (site_packages / "torch" / f"_C.cpython-{tag}-x86_64-linux-gnu.so").write_bytes(b"")
    return site_packages


def test_nothing_configured_keeps_bundled_torch(hook, tmp_path):
    assert hook.external_torch_site_packages({}, tmp_path, "linux", "311") == (None, None)


def test_environment_variable_points_at_a_matching_torch(hook, tmp_path):
    site = _fake_torch(tmp_path / "site")
    found, warning = hook.external_torch_site_packages(
        {hook.ENV_VARIABLE: str(site)}, tmp_path, "linux", "311"
    )
    assert found == site and warning is None


def test_first_run_config_file_is_read(hook, tmp_path):
    site = _fake_torch(tmp_path / "site")
    pointer = hook.config_file({}, tmp_path, "linux")
    assert pointer == tmp_path / ".config" / "SynthView" / "external-torch.txt"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(f"{site}\n")
    assert hook.external_torch_site_packages({}, tmp_path, "linux", "311") == (site, None)


def test_windows_config_lives_in_appdata(hook, tmp_path):
    pointer = hook.config_file({"APPDATA": str(tmp_path / "Roaming")}, tmp_path, "win32")
    assert pointer == tmp_path / "Roaming" / "SynthView" / "external-torch.txt"


def test_torch_for_another_python_is_refused_with_a_message(hook, tmp_path):
    site = _fake_torch(tmp_path / "site", tag="312")
    found, warning = hook.external_torch_site_packages(
        {hook.ENV_VARIABLE: str(site)}, tmp_path, "linux", "311"
    )
    assert found is None and "not built for Python 3.11" in warning


def test_folder_without_torch_is_refused_with_a_message(hook, tmp_path):
    found, warning = hook.external_torch_site_packages(
        {hook.ENV_VARIABLE: str(tmp_path)}, tmp_path, "linux", "311"
    )
    assert found is None and "no torch" in warning


def test_finder_serves_only_torch_packages(hook, tmp_path):
    site = _fake_torch(tmp_path / "site")
    (site / "numpy").mkdir()
    (site / "numpy" / "__init__.py").write_text("")
    finder = hook.ExternalTorchFinder(site)
    spec = finder.find_spec("torch")
    assert spec is not None and Path(spec.origin) == site / "torch" / "__init__.py"
    assert finder.find_spec("numpy") is None
