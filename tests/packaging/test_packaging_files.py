"""The installer recipes agree with each other and with the app (fast: no build runs here).

The slow end-to-end check (build, install, run, uninstall) is packaging/smoke_test.sh.
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from app import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGING = REPO_ROOT / "packaging"
DEB = PACKAGING / "deb"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DEB / "synthview.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def _mime_globs() -> dict[str, set[str]]:
    root = ET.parse(DEB / "synthview-mime.xml").getroot()
    return {
        mime.get("type"): {glob.get("pattern") for glob in mime.iter(f"{MIME_NS}glob")}
        for mime in root.iter(f"{MIME_NS}mime-type")
    }


def _spec_constant(name: str):
    tree = ast.parse((PACKAGING / "synthview.spec").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def test_file_associations_cover_dicom_and_nifti():
    globs = _mime_globs()
    all_globs = set().union(*globs.values())
    assert {"*.dcm", "*.nii", "*.nii.gz"} <= all_globs
    declared = {t for t in _desktop_entry()["MimeType"].split(";") if t}
    assert declared == set(globs), "desktop entry and MIME package must name the same types"


def test_desktop_entry_runs_the_installed_launcher_with_files():
    entry = _desktop_entry()
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    command, *arguments = entry["Exec"].split()
    assert arguments == ["%F"], "double-clicked files must reach the app"
    assert command == _spec_constant("APP_NAME") == entry["Icon"]
    build_deb = (DEB / "build_deb.sh").read_text(encoding="utf-8")
    assert f"/usr/bin/{command}" in build_deb and f"apps/{entry['Icon']}.png" in build_deb


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_is_valid_for_freedesktop_tools():
    result = subprocess.run(
        ["desktop-file-validate", str(DEB / "synthview.desktop")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deb_dependencies_are_installed_by_the_install_script():
    control = (DEB / "control.in").read_text(encoding="utf-8")
    depends = re.search(r"^Depends: (.*)$", control, re.MULTILINE).group(1)
    packages = {item.strip().split()[0] for item in depends.split(",")}
    install_sh = (REPO_ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    apt_block = re.search(r"APT_PACKAGES=\((.*?)\)", install_sh, re.DOTALL).group(1)
    apt_packages = set(apt_block.split())
    assert packages - {"libc6"} <= apt_packages, packages - apt_packages
    for field in ("Package: synthview", "Version: @VERSION@", "Architecture: @ARCH@", "Installed-Size:"):
        assert field in control


def test_maintainer_scripts_are_valid_sh_and_leave_user_data_alone():
    for name in ("preinst", "postinst", "prerm", "postrm"):
        script = DEB / name
        assert script.stat().st_mode & 0o111, f"{name} must be executable"
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
        code = "\n".join(
            line
            for line in script.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        )
        assert not re.search(r"\$HOME|~/|/home/|/root|\.config", code), name
        for removed in re.findall(r"rm -[a-z]*\s+(\S+)", code) + re.findall(r"find (\S+)", code):
            assert removed.startswith(("/opt/synthview", "{}")), f"{name} removes {removed}"


def test_spec_keeps_cuda_and_gpl_libraries_out_by_default():
    prefixes = _spec_constant("CUDA_LIBRARY_PREFIXES")
    assert {"libcudnn", "libcublas", "libnccl"} <= set(prefixes)
    spec = (PACKAGING / "synthview.spec").read_text(encoding="utf-8")
    assert 'EXCLUDED_MODULES += ["libjpeg", "_libjpeg"]' in spec
    assert '"SYNTHVIEW_CUDA", "0"' in spec and '"SYNTHVIEW_INCLUDE_GPL", "0"' in spec


def test_spec_bundles_plugins_demo_study_icons_and_licences():
    spec = (PACKAGING / "synthview.spec").read_text(encoding="utf-8")
    for bundled in ('_tree("plugins")', '_tree("resources/demo/generated")', '_tree("resources/icons")'):
        assert bundled in spec
    assert '"LICENSES.md"), "packaging"' in spec  # the About dialog reads it at run time
    assert 'collect_submodules("app")' in spec  # CLI commands are imported by name
    for icon in ("synthview.svg", "synthview.png", "synthview.ico", "synthview.icns"):
        assert (REPO_ROOT / "resources" / "icons" / icon).stat().st_size > 0


def test_windows_installer_matches_the_app():
    iss = (PACKAGING / "windows" / "synthview.iss").read_text(encoding="utf-8")
    assert f'#define AppVersion "{__version__}"' in iss
    assert f'#define AppExe "{_spec_constant("APP_NAME")}.exe"' in iss
    for extension in (".dcm", ".nii"):
        assert f"Software\\Classes\\{extension}\\OpenWithProgids" in iss
    # Windows associates by the last extension only: claiming .gz would offer SynthView for every
    # gzip file, so .nii.gz is opened by drop or File > Open instead.
    assert "Classes\\.gz" not in iss and "SystemFileAssociations\\.gz" not in iss
    assert "[UninstallDelete]" not in iss.replace("No [UninstallDelete]", "")


def test_deb_has_md5sums_changelog_generated_copyright_and_does_not_own_opt():
    build_deb = (DEB / "build_deb.sh").read_text(encoding="utf-8")
    assert "DEBIAN/md5sums" in build_deb and "changelog.gz" in build_deb
    assert "THIRD-PARTY-NOTICES.txt" in build_deb and "LICENSES.md" not in build_deb
    assert "./usr ./opt/synthview" in build_deb  # the data archive has no ./opt entry of its own
    changelog = (DEB / "changelog").read_text(encoding="utf-8")
    assert changelog.startswith(f"synthview ({__version__})")
    assert re.search(r"^ -- .+ <.+>  \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", changelog, re.MULTILINE)


def test_spec_leaves_out_readline_build_tools_and_the_gtk_theme():
    excluded = set(_spec_constant("EXCLUDED_MODULES"))
    assert {"readline", "setuptools", "pkg_resources", "pip", "py"} <= excluded
    spec = (PACKAGING / "synthview.spec").read_text(encoding="utf-8")
    assert "bundle_trim.trimmed_binaries(a.binaries)" in spec
    assert "third_party_notices.generate(" in spec and "raise SystemExit" in spec


def test_macos_app_is_a_dock_app_claiming_only_dicom_and_nifti():
    spec = (PACKAGING / "synthview.spec").read_text(encoding="utf-8")
    assert 'console=sys.platform == "linux"' in spec  # False on macOS: no LSBackgroundOnly
    assert '"gz"]' not in spec and '"CFBundleTypeExtensions"' not in spec
    assert '"public.filename-extension": ["nii.gz"]' in spec
    assert "arm64" in spec and "arm64" in (PACKAGING / "README.md").read_text(encoding="utf-8")
    entitlements = (PACKAGING / "macos" / "entitlements.plist").read_text(encoding="utf-8")
    assert "com.apple.security.cs.allow-unsigned-executable-memory" in entitlements


def test_ci_workflow_builds_packaging_changes_on_pull_requests_pushes_and_tags():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "installers.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "packaging/**" in triggers["pull_request"]["paths"]
    assert triggers["push"]["branches"] == ["main"] and "packaging/**" in triggers["push"]["paths"]
    assert triggers["push"]["tags"] == ["v*"]  # path filters are not applied to tag pushes


def test_signing_steps_skip_clearly_without_secrets_and_checksums_always_run(tmp_path):
    workflow = (REPO_ROOT / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8")
    for secret in ("SYNTHVIEW_GPG_PRIVATE_KEY", "WINDOWS_CERTIFICATE_PFX_BASE64", "MACOS_CERTIFICATE_P12_BASE64", "APPLE_APP_PASSWORD"):
        assert f"secrets.{secret}" in workflow
    assert workflow.count("packaging/checksums.sh") == 3  # one per platform
    deb = tmp_path / "synthview_0_amd64.deb"
    deb.write_bytes(b"not really a deb")
    env = {k: v for k, v in __import__("os").environ.items() if k != "SYNTHVIEW_GPG_PRIVATE_KEY"}
    signed = subprocess.run(["bash", str(DEB / "sign_deb.sh"), str(deb)], capture_output=True, text=True, env=env)
    assert signed.returncode == 0 and "SKIPPED" in signed.stdout and not (tmp_path / f"{deb.name}.asc").exists()
    summed = subprocess.run(["bash", str(PACKAGING / "checksums.sh"), str(deb)], capture_output=True, text=True)
    assert summed.returncode == 0
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode == 0


def test_ci_workflow_builds_all_three_platforms():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "installers.yml").read_text())
    jobs = workflow["jobs"]
    assert {"linux", "windows", "macos"} <= set(jobs)
    commands = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "packaging/smoke_test.sh" in commands["linux"]
    assert "synthview.iss" in commands["windows"]
    assert "synthesize" in commands["windows"] and "synthview.exe" in commands["windows"]  # the GUI executable
    assert "Info.plist" in commands["macos"] and "open -a" in commands["macos"]
    assert "build_dmg.sh" in commands["macos"]


def test_ci_run_keeps_the_test_command_and_gates_the_smoke_test():
    lines = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "bash scripts/test.sh" in lines
    assert any("packaging/smoke_test.sh" in line for line in lines)
    assert any("'^packaging/'" in line for line in lines)


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in [REPO_ROOT / "main.py", *(REPO_ROOT / "app").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name != "app"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _licence_tables() -> tuple[set[str], set[str]]:
    """Normalized distribution names of LICENSES.md: (bundled table, left-out table)."""
    from app.ui.about_dialog import read_bundled_components

    bundled = {_normalized(c.distribution) for c in read_bundled_components()}
    text = (PACKAGING / "LICENSES.md").read_text(encoding="utf-8")
    left_out_section = text.split("## Left out of the bundle on purpose", 1)[1]
    left_out = {
        _normalized(line.strip("|").split("|")[0].strip())
        for line in left_out_section.splitlines()
        if line.startswith("| ") and not line.startswith(("| Component", "| ---"))
    }
    return bundled, left_out


def test_every_third_party_package_the_app_imports_is_bundled_with_a_licence_row():
    """A new dependency must get its licence row before it ships, or be excluded on purpose."""
    bundled, left_out = _licence_tables()
    excluded_modules = set(_spec_constant("EXCLUDED_MODULES"))
    distributions_of = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(_third_party_imports()):
        for distribution in distributions_of.get(module, [module]):
            name = _normalized(distribution)
            if name in bundled or (name in left_out and module in excluded_modules):
                continue
            missing.append(f"{module} ({distribution})")
    assert not missing, f"add to packaging/LICENSES.md: {missing}"


def test_spec_keeps_torch_shm_manager_that_import_torch_needs():
    """`import torch` raises when torch/bin/torch_shm_manager is missing (found by the smoke test)."""
    assert "torch/bin/torch_shm_manager" in _spec_constant("KEPT_FILES")
    assert "torch/bin/" in _spec_constant("DROPPED_FOLDERS")
