"""The build's own checks (packaging/buildtools): glibc floor, bundle trimming, licence notice.

They run inside the PyInstaller build (minutes); here each one is tried on this machine's
libraries and on the installed Python distributions (seconds).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILDTOOLS = REPO_ROOT / "packaging" / "buildtools"
SYSTEM_LIBS = Path("/usr/lib/x86_64-linux-gnu")


@pytest.fixture(scope="module")
def tools():
    sys.path.insert(0, str(BUILDTOOLS))
    try:
        yield {name: importlib.import_module(name) for name in ("elf", "glibc_floor", "bundle_trim", "third_party_notices")}
    finally:
        sys.path.remove(str(BUILDTOOLS))


def _system_lib(name: str) -> Path:
    path = SYSTEM_LIBS / name
    if not path.exists():
        pytest.skip(f"no {path} on this machine")
    return path.resolve()


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils' readelf to compare with")
def test_elf_reader_agrees_with_readelf(tools):
    for name in ("libglib-2.0.so.0", "libz.so.1"):
        path = _system_lib(name)
        readelf = subprocess.run(["readelf", "-V", "-d", "-W", str(path)], capture_output=True, text=True).stdout
        needs = set(tools["elf"].version_needs(path.read_bytes()))
        needs_part = readelf.split("Version needs section", 1)[1]
        assert needs and needs == {
            line.split("Name: ")[1].split()[0] for line in needs_part.splitlines() if "Name: " in line and "Flags:" in line
        }
        needed = tools["elf"].needed_libraries(path.read_bytes())
        assert needed and all(f"[{soname}]" in readelf for soname in needed)
    assert tools["elf"].version_needs(b"not an ELF file") == []


def test_glibc_check_fails_a_library_newer_than_the_declared_floor(tools, tmp_path):
    check = tools["glibc_floor"]
    library = _system_lib("libglib-2.0.so.0")
    needed = check.glibc_needed(library.read_bytes())
    assert needed is not None and needed >= (2, 17)
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    shutil.copy(library, bundle / "_internal" / "libglib-2.0.so.0")
    (bundle / "_internal" / "readme.txt").write_text("not ELF")
    older = tmp_path / "older.control"
    older.write_text(f"Depends: libc6 (>= {needed[0]}.{needed[1] - 1}), libgl1\n")
    exact = tmp_path / "exact.control"
    exact.write_text(f"Depends: libc6 (>= {needed[0]}.{needed[1]}), libgl1\n")
    assert check.main([str(bundle), "--control", str(older)]) == 1
    assert check.main([str(bundle), "--control", str(exact)]) == 0


def test_the_package_declares_its_glibc_floor_and_the_readme_states_it(tools):
    control = (REPO_ROOT / "packaging" / "deb" / "control.in").read_text(encoding="utf-8")
    floor = tools["glibc_floor"].declared_floor(control)
    text = f"{floor[0]}.{floor[1]}"
    assert f"glibc {text}" in (REPO_ROOT / "packaging" / "README.md").read_text(encoding="utf-8")
    assert "libstdc++6 (>=" in control  # the system's libstdc++, not the build host's copy
    with pytest.raises(ValueError):
        tools["glibc_floor"].declared_floor("Depends: libc6, libgl1")


def test_trimming_drops_the_gtk_theme_the_libraries_only_it_needs_and_libstdcxx(tools, tmp_path):
    trim = tools["bundle_trim"]
    gio = _system_lib("libgio-2.0.so.0")  # stands in for the GTK theme plugin: needs gobject, glib
    glib = _system_lib("libglib-2.0.so.0")
    gobject = _system_lib("libgobject-2.0.so.0")
    pcre = _system_lib("libpcre2-8.so.0")
    stdcxx = _system_lib("libstdc++.so.6")
    kept_plugin = tmp_path / "site-packages" / "PySide6" / "libqxcb.so"
    kept_plugin.parent.mkdir(parents=True)
    shutil.copy(glib, kept_plugin)  # a bundled binary that needs libpcre2-8 (from the system)
    theme = tmp_path / "site-packages" / "PySide6" / "libqgtk3.so"
    shutil.copy(gio, theme)  # needs libgobject and libglib (from the system)
    binaries = [
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", str(theme), "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", str(kept_plugin), "BINARY"),
        ("libgobject-2.0.so.0", str(gobject), "BINARY"),
        ("libglib-2.0.so.0", str(glib), "BINARY"),
        ("libpcre2-8.so.0", str(pcre), "BINARY"),
        ("libstdc++.so.6", str(stdcxx), "BINARY"),
    ]
    kept = {entry[0] for entry in trim.trimmed_binaries(binaries)}
    assert kept == {"PySide6/Qt/plugins/platforms/libqxcb.so", "libpcre2-8.so.0"}


def test_licence_expressions(tools):
    allowed = frozenset({"MIT", "LGPL-3.0-only", "BSD-3-Clause", "GPL-3.0-or-later WITH GCC-exception-3.1"})
    check = tools["third_party_notices"].licence_allowed
    assert check("MIT", allowed)
    assert check("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only", allowed)  # Qt: the LGPL is chosen
    assert check("(MIT AND BSD-3-Clause) OR GPL-3.0-only", allowed)
    assert check("GPL-3.0-or-later WITH GCC-exception-3.1", allowed)
    assert not check("GPL-3.0-only", allowed)
    assert not check("MIT AND GPL-3.0-only", allowed)
    assert not check("UNKNOWN", allowed) and not check("", allowed)


def test_notice_of_the_installed_distributions_flags_only_gpl(tools, tmp_path):
    """Every distribution of this environment resolves to a licence; only a GPL one (the
    excluded pylibjpeg-libjpeg) is outside the allow-list. PySide6 ships with the LGPL texts."""
    notices = tools["third_party_notices"]
    assert notices.main(["--installed", str(tmp_path)]) in (0, 1)
    policy = notices.load_policy()
    found = notices.Inventory(
        [notices.python_component(d, policy) for d in importlib.metadata.distributions()], []
    )
    problems = notices.problems(found, policy, strict_origin=False)
    assert all("GPL-3.0-only" in problem for problem in problems), problems
    text = (tmp_path / notices.NOTICE_NAME).read_text(encoding="utf-8")
    assert "PySide6_Essentials" in text and "GNU LESSER GENERAL PUBLIC LICENSE" in text
    assert "GNU GENERAL PUBLIC LICENSE" in text  # the LGPL-3.0 builds on the GPL-3.0 text
    assert "certifi" in text and "MPL-2.0" in text


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="Debian packages are looked up with dpkg")
def test_notice_of_a_bundle_traces_every_file_and_refuses_readline(tools, tmp_path):
    notices = tools["third_party_notices"]
    import numpy
    import PySide6

    readline = _system_lib("libreadline.so.8")
    manifest = {
        "pure": [["numpy", numpy.__file__], ["os", __import__("os").__file__], ["main", str(REPO_ROOT / "main.py")]],
        "binaries": [["PySide6/QtCore.abi3.so", str(next(Path(PySide6.__file__).parent.glob("QtCore*.so")))],
                     ["libreadline.so.8", str(readline)]],
        "datas": [["mystery.bin", str(tmp_path / "mystery.bin")]],
    }
    (tmp_path / "mystery.bin").write_bytes(b"?")
    notice, problems, found = notices.generate(manifest, REPO_ROOT, tmp_path / "out")
    kinds = {component.name: component.kind for component in found.components}
    assert kinds["numpy"] == "python" and kinds["PySide6_Essentials"] == "python" and kinds["Python"] == "runtime"
    assert kinds["libreadline8"] == "system"
    assert any(p.startswith("libreadline8") and "GPL-3.0" in p for p in problems), problems
    assert any("mystery.bin" in p and "origin" in p for p in problems), problems
    text = notice.read_text(encoding="utf-8")
    assert "/usr/share/doc/libreadline8/copyright" in text  # the Debian copyright file, verbatim
