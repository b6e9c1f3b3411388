"""What the decoded-series cache reads ahead of the window's start (CachedFiles.fetch_ahead).

The start's study is read from the cache in a thread while the window's modules are imported;
the window's requests then take it from memory. Attacked here: a request that is not the one
read ahead, a request made while the read goes on, files changed under a copy read ahead, a
miss, a second opening of the same path, and the memory it holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from app.cli.file_services import CachedFiles
from app.core.study import series_to_open
from app.io.decoded_cache import DecodedCache
from tests.ui.child_process import ROOT


@pytest.fixture
def cached_folder(tmp_path, demo_dicom_dir):
    """A two-series folder whose scan and larger series the cache holds (what a first open stores)."""
    from tests.io.series_factory import write_series

    study = tmp_path / "study"
    write_series(study, [0.0, 2.0, 4.0, 6.0, 8.0], series_uid="1.2.3.1", prefix="a")
    write_series(study, [0.0, 1.0, 2.0], series_uid="1.2.3.2", prefix="b")
    writer = CachedFiles(DecodedCache(tmp_path / "cache"))
    scan = writer.scan_beside(str(study))
    writer.load_scanned(scan.find_series("1.2.3.1"), str(study))
    writer.load_scanned(scan.find_series("1.2.3.2"), str(study))
    writer.wait_for_writes()
    return study


class CountingCache(DecodedCache):
    """Counts the cache reads (records and arrays)."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.reads: list[str] = []

    def get(self, *args, **kwargs):
        self.reads.append("volume")
        return super().get(*args, **kwargs)

    def get_scan(self, *args, **kwargs):
        self.reads.append("scan")
        return super().get_scan(*args, **kwargs)


def test_the_window_takes_what_was_read_ahead_once(tmp_path, cached_folder):
    path = str(cached_folder)
    cache = CountingCache(tmp_path / "cache")
    files = CachedFiles(cache)
    assert files.fetch_ahead([path]) is True
    assert cache.reads == ["scan", "volume"]
    assert files.in_memory("scan", path) and files.in_memory("volume", path, "1.2.3.1")
    assert not files.in_memory("volume", path, "1.2.3.2")  # only the series the window opens first
    scan = files.scan_beside(path)
    first = series_to_open(scan, path)
    assert first.uid == "1.2.3.1"  # the larger series, as the window picks it
    volume = files.load_scanned(first, path)
    assert cache.reads == ["scan", "volume"]  # both from memory
    assert volume.voxels.shape[0] == 5
    assert not files.in_memory("scan", path) and not files.in_memory("volume", path, "1.2.3.1")
    # Taken once: the same requests again read the cache, as without a read ahead.
    files.scan_beside(path)
    again = files.load_scanned(first, path)
    assert cache.reads == ["scan", "volume", "scan", "volume"]
    assert np.array_equal(again.voxels, volume.voxels)


def test_asking_for_another_series_drops_the_one_read_ahead(tmp_path, cached_folder):
    path = str(cached_folder)
    files = CachedFiles(DecodedCache(tmp_path / "cache"))
    files.fetch_ahead([path])
    scan = files.scan_beside(path)
    other = files.load_scanned(scan.find_series("1.2.3.2"), path)
    assert other.voxels.shape[0] == 3
    assert files._read_ahead == {}  # the 5-slice volume is not kept in memory for nobody


def test_a_copy_read_ahead_is_still_checked_against_its_files(tmp_path, cached_folder):
    # The volume was read ahead from the cache; then a file changed without a change of size or
    # time (seen by the rehash only): the window's check after showing it says stale.
    path = str(cached_folder)
    files = CachedFiles(DecodedCache(tmp_path / "cache"))
    files.fetch_ahead([path])
    scan = files.scan_beside(path)
    files.load_scanned(series_to_open(scan, path), path)
    victim = sorted(cached_folder.glob("a*"))[2]
    status = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF  # a pixel's byte
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert files.verify(path, "1.2.3.1") is False


def test_a_miss_reads_nothing_ahead_and_the_window_reads_the_files(tmp_path, cached_folder):
    path = str(cached_folder)
    (cached_folder / "a_new.txt").write_text("the folder changed since it was cached")
    files = CachedFiles(DecodedCache(tmp_path / "cache"))
    assert files.fetch_ahead([path]) is False
    assert files._read_ahead == {} and not files.in_memory("scan", path)
    scan = files.scan_beside(path)
    assert files.load_scanned(series_to_open(scan, path), path).voxels.shape[0] == 5


def test_a_request_made_while_the_read_goes_on_waits_for_it(tmp_path, cached_folder):
    path = str(cached_folder)
    cache = CountingCache(tmp_path / "cache")
    real_get = cache.get

    def slow_get(*args, **kwargs):
        time.sleep(0.3)
        return real_get(*args, **kwargs)

    cache.get = slow_get
    files = CachedFiles(cache)
    files.expect([path])
    reader = threading.Thread(target=files.fetch_ahead, args=([path],))
    reader.start()
    scan = files.scan_beside(path)  # waits for the read ahead rather than reading the cache too
    volume = files.load_scanned(series_to_open(scan, path), path)
    reader.join()
    assert cache.reads == ["scan", "volume"] and volume.voxels.shape[0] == 5


def test_in_memory_waits_briefly_for_a_read_still_going_on(tmp_path, cached_folder):
    path = str(cached_folder)
    cache = DecodedCache(tmp_path / "cache")
    real_get = cache.get
    cache.get = lambda *args, **kwargs: (time.sleep(2.0), real_get(*args, **kwargs))[1]
    files = CachedFiles(cache)
    files.expect([path])
    reader = threading.Thread(target=files.fetch_ahead, args=([path],))
    reader.start()
    started = time.perf_counter()
    assert files.in_memory("scan", path) is False  # the read is still going on: not waited for long
    assert time.perf_counter() - started < 1.5
    reader.join()
    assert files.in_memory("scan", path) is True


def test_a_nifti_file_is_read_ahead_as_a_volume(tmp_path):
    from app.core.orientation_phantom import orientation_phantom
    from app.io.nifti import save_nifti

    phantom = orientation_phantom(size_ijk=(12, 10, 8))

    path = str(save_nifti(phantom, tmp_path / "head.nii.gz"))
    writer = CachedFiles(DecodedCache(tmp_path / "cache"))
    writer.load_volume(path)
    writer.wait_for_writes()
    cache = CountingCache(tmp_path / "cache")
    files = CachedFiles(cache)
    assert files.fetch_ahead([path]) is True and files.in_memory("volume", path)
    assert np.array_equal(files.load_volume(path).voxels, phantom.voxels)
    assert cache.reads == ["volume"]


def test_a_missing_path_is_a_miss_not_an_error(tmp_path):
    files = CachedFiles(DecodedCache(tmp_path / "cache"))
    assert files.fetch_ahead([str(tmp_path / "gone")]) is False
    assert files._reading_ahead == {}  # nobody is left waiting


PYDICOM_OFFLINE = r"""
import sys
from app.io.pydicom_import import import_pydicom_offline
import_pydicom_offline()
print("PYDICOM", "pydicom" in sys.modules, "pydicom.pixels" in sys.modules)
print("DOWNLOADER", "requests" in sys.modules, "tqdm" in sys.modules)
import requests, tqdm  # later imports work as usual
print("LATER", requests.__name__, tqdm.__name__)
import pydicom
from pydicom.data import get_testdata_file
print("DATA", get_testdata_file("CT_small.dcm") is not None)
"""


def test_pydicom_imports_without_its_downloader_and_the_downloader_imports_later():
    result = subprocess.run(
        [sys.executable, "-c", PYDICOM_OFFLINE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:4] == [
        "PYDICOM True True", "DOWNLOADER False False", "LATER requests tqdm", "DATA True",
    ]  # fmt: skip


def test_a_start_with_a_cached_dicom_file_reads_its_series_ahead(tmp_path, cached_folder):
    path = str(sorted(cached_folder.glob("b*"))[0])  # a file of the smaller series
    writer = CachedFiles(DecodedCache(tmp_path / "cache"))
    scan = writer.scan_beside(path)
    writer.load_scanned(series_to_open(scan, path), path)
    writer.wait_for_writes()
    files = CachedFiles(DecodedCache(tmp_path / "cache"))
    assert files.fetch_ahead([path]) is True
    assert files.in_memory("volume", path, "1.2.3.2")  # the file's own series, not the larger one
    shutil.rmtree(tmp_path / "cache")  # from memory now, whatever happens to the cache
    assert files.load_scanned(series_to_open(files.scan_beside(path), path), path).voxels.shape[0] == 3
