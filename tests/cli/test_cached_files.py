"""The window's file services through the decoded-series cache (app.cli.file_services.CachedFiles)."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from app.cli.file_services import CachedFiles, file_services
from app.io.decoded_cache import DecodedCache
from app.io.loader import load_volume


@pytest.fixture
def folder(tmp_path, demo_dicom_dir):
    copy = tmp_path / "study"
    copy.mkdir()
    for source in sorted(demo_dicom_dir.iterdir())[90:98]:
        shutil.copy2(source, copy / source.name)
    return copy


def test_hit_is_verified_once_a_miss_never(tmp_path, folder):
    cached = CachedFiles(DecodedCache(tmp_path / "cache"))
    path = str(folder)
    series = cached.scan_beside(path).all_series()[0]
    cached.load_scanned(series, path)
    assert cached.verify(path, series.uid) is None  # read from the files: nothing to check
    cached.wait_for_writes()
    again = CachedFiles(cached.cache)
    assert again.scan_beside(path).all_series()[0] == series  # from the cache
    again.load_scanned(series, path)
    assert again.verify(path, series.uid) is True
    assert again.verify(path, series.uid) is None  # checked already


def test_files_changed_between_scan_and_load_are_not_stored(tmp_path, folder):
    cached = CachedFiles(DecodedCache(tmp_path / "cache"))
    path = str(folder)
    series = cached.scan_beside(path).all_series()[0]
    (folder / "notes.txt").write_text("added after the scan")
    cached.load_scanned(series, path)  # the frames the scan listed: not what a load now reads
    cached.wait_for_writes()
    assert not cached.cache.holds(path, series.uid)


def test_a_store_that_fails_costs_one_line(tmp_path, folder, monkeypatch, capsys):
    cache = DecodedCache(tmp_path / "cache")

    def broken(*args, **kwargs):
        raise ValueError("disk on fire")

    monkeypatch.setattr(cache, "put", broken)
    cached = CachedFiles(cache)
    volume = cached.load_volume(str(folder))
    cached.wait_for_writes()
    assert volume.voxels.shape[0] == 8
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["SynthView: not cached: ValueError: disk on fire"]


def test_file_services_without_a_cache(monkeypatch):
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", "off")
    assert file_services().verify_cached is None
    assert file_services(None).verify_cached is None


def test_view_screenshot_reads_the_files_not_the_cache(qtbot, tmp_path, monkeypatch):
    """A screenshot is an output shown unchecked: a cached copy (possibly stale in a way its stats
    cannot see) never stands in for the files there."""
    import main
    from app.core.orientation_phantom import orientation_phantom
    from app.io.nifti import save_nifti

    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", str(tmp_path / "cache"))
    path = save_nifti(orientation_phantom(size_ijk=(12, 10, 8)), tmp_path / "p.nii.gz")

    def no_cached_copy(*args, **kwargs):
        raise AssertionError("the screenshot asked the cache")

    monkeypatch.setattr(DecodedCache, "get", no_cached_copy)
    assert main.main(["view", str(path), "--screenshot", str(tmp_path / "shot.png"), "--size", "400x300"]) == 0
    assert (tmp_path / "shot.png").stat().st_size > 0


def edit_keeping_size_and_mtime(path) -> None:
    """Invert the last 200 bytes (pixels of the last rows), then put the mtime back."""
    status = path.stat()
    data = bytearray(path.read_bytes())
    data[-200:] = bytes(255 - byte for byte in data[-200:])
    path.write_bytes(bytes(data))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def test_an_edit_unseen_by_size_and_mtime_during_the_store_is_never_served(tmp_path, folder):
    # The store runs after the load returned: an edit keeping size and mtime made meanwhile
    # used to leave the old pixels cached under the new bytes' digest, so that the next open
    # showed the old pixels and its check found them current.
    cache = DecodedCache(tmp_path / "cache")
    gate = threading.Event()
    real_put = cache.put

    def put_after_the_edit(*args, **kwargs):
        gate.wait(10)
        return real_put(*args, **kwargs)

    cache.put = put_after_the_edit
    cached = CachedFiles(cache)
    shown = cached.load_volume(str(folder))
    edit_keeping_size_and_mtime(sorted(folder.iterdir())[4])
    gate.set()
    cached.wait_for_writes()
    fresh = load_volume(str(folder))
    assert not np.array_equal(fresh.voxels, shown.voxels)  # the edit changed pixels
    again = CachedFiles(DecodedCache(tmp_path / "cache"))
    reopened = again.load_volume(str(folder))
    assert np.array_equal(reopened.voxels, fresh.voxels)  # what the files hold now
    assert again.verify(str(folder)) is not True


def served_from_the_cache(tmp_path, folder) -> tuple[CachedFiles, str]:
    path = str(folder)
    first = CachedFiles(DecodedCache(tmp_path / "cache"))
    first.load_volume(path)
    first.wait_for_writes()
    again = CachedFiles(DecodedCache(tmp_path / "cache"))
    again.load_volume(path)
    return again, path


def test_a_cache_cleared_before_the_check_is_no_change_of_the_files(tmp_path, folder):
    # 'main.py cache --clear' (or another viewer's eviction) between a hit and its check: the
    # files did not change, so the window must not say they did (and reload).
    cached, path = served_from_the_cache(tmp_path, folder)
    DecodedCache(tmp_path / "cache").clear()  # another process
    assert cached.verify(path) is None


def test_files_touched_after_the_hit_are_a_change_even_with_the_entry_gone(tmp_path, folder):
    cached, path = served_from_the_cache(tmp_path, folder)
    one = sorted(folder.iterdir())[2]
    os.utime(one, ns=(one.stat().st_atime_ns, one.stat().st_mtime_ns + 5_000_000))
    DecodedCache(tmp_path / "cache").clear()
    assert cached.verify(path) is False


def test_a_cache_folder_inside_the_study_opened_writes_nothing_there(tmp_path, folder, monkeypatch):
    # SYNTHVIEW_CACHE_DIR=cache (relative) and the viewer started in the study's folder: the
    # entries (patient images) were written among the inputs, and being files of the folder
    # opened, each write changed the folder's key: never a hit.
    monkeypatch.chdir(folder)
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", "cache")
    cache = DecodedCache.from_environment()
    assert cache.folder.is_absolute() and cache.folder == folder / "cache"  # where, said plainly
    before = sorted(folder.rglob("*"))
    for _ in range(2):
        cached = CachedFiles(DecodedCache.from_environment())
        series = cached.scan_beside(str(folder)).all_series()[0]
        assert cached.load_scanned(series, str(folder)).voxels.shape[0] == 8
        cached.wait_for_writes()
    assert sorted(folder.rglob("*")) == before


def test_a_file_added_while_a_cached_scan_is_read_is_not_cached_without_it(tmp_path, folder, demo_dicom_dir):
    # The scan came from the cache, then its files' stats were taken: a slice added in between
    # was in those stats but not in the listing, and the volume loaded from the listing (one
    # slice short) was stored as what the folder holds.
    cache = DecodedCache(tmp_path / "cache")
    first = CachedFiles(cache)
    first.scan_beside(str(folder))
    real_get_scan = cache.get_scan
    extra = sorted(demo_dicom_dir.iterdir())[98]

    def get_scan_then_a_slice_arrives(path, key=None):
        result = real_get_scan(path, key)
        shutil.copy2(extra, folder / extra.name)
        return result

    cache.get_scan = get_scan_then_a_slice_arrives
    cached = CachedFiles(cache)
    series = cached.scan_beside(str(folder)).all_series()[0]
    assert len(series.frames) == 8  # the listing from the cache, before the slice came
    cached.load_scanned(series, str(folder))
    cached.wait_for_writes()
    again = CachedFiles(DecodedCache(tmp_path / "cache")).load_volume(str(folder), series.uid)
    assert again.voxels.shape[0] == 9
