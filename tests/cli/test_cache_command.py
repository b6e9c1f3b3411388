"""``main.py cache [--clear]``: the decoded-series cache's place and size; --clear empties it."""

from __future__ import annotations

import main
from app.core.orientation_phantom import orientation_phantom
from app.io.decoded_cache import DecodedCache
from app.io.loader import load_volume
from app.io.nifti import save_nifti


def test_cache_command_lists_and_clears(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", str(folder))
    path = save_nifti(orientation_phantom(size_ijk=(12, 10, 8)), tmp_path / "p.nii.gz")
    cache = DecodedCache(folder)
    assert cache.put(path, None, load_volume(path))

    assert main.main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(folder) in out and "1 entries" in out

    assert main.main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert out.count("removed ") == 2 and "1 entries removed" in out  # the entry, then the total
    assert cache.entries() == [] and cache.get(path) is None


def test_cache_command_when_off(monkeypatch, capsys):
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", "off")
    assert main.main(["cache", "--clear"]) == 0
    assert "off" in capsys.readouterr().out


def test_cache_add_decodes_every_series_once_then_only_checks(tmp_path, monkeypatch, capsys, demo_dicom_dir):
    import shutil

    from app.cli import file_services

    folder = tmp_path / "cache"
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", str(folder))
    study = tmp_path / "study"
    study.mkdir()
    for source in sorted(demo_dicom_dir.iterdir())[90:96]:
        shutil.copy2(source, study / source.name)
    nifti = save_nifti(orientation_phantom(size_ijk=(12, 10, 8)), tmp_path / "p.nii.gz")
    assert main.main(["cache", "--add", str(study), str(nifti)]) == 0
    out = capsys.readouterr().out
    assert f"cached {study}: 1 series" in out and f"cached {nifti}: 1 series" in out
    cache = DecodedCache(folder)
    assert cache.holds(str(study), scan=True) and cache.holds(str(nifti))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(file_services, "load_scanned", no_decoding)
    monkeypatch.setattr(file_services, "load_volume", no_decoding)
    monkeypatch.setattr(file_services, "scan_beside", no_decoding)
    assert main.main(["cache", "--add", str(study), str(nifti), "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_cache_add_says_what_it_could_not_add_and_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"\x1f\x8b not a gzip stream")
    empty = tmp_path / "empty"
    empty.mkdir()
    good = save_nifti(orientation_phantom(size_ijk=(12, 10, 8)), tmp_path / "p.nii.gz")
    code = main.main(["cache", "--add", str(tmp_path / "gone"), str(broken), str(empty), str(good)])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("cache: cannot add ") for line in errors), errors
    assert "does not exist" in errors[0] and "no image series" in errors[2]
    assert f"cached {good}" in captured.out  # the good one after the bad ones


def test_cache_add_with_the_cache_off_is_an_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", "off")
    assert main.main(["cache", "--add", str(tmp_path)]) == 1
    assert "nothing added" in capsys.readouterr().err
