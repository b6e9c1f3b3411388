"""The window with the decoded-series cache on: a study opened again is listed and shown from the
cache (no pydicom), the same pixels at the same place; files changed in a way the stats cannot
see are caught after the image is shown, reloaded, and the user is told."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from app.cli import file_services as services_module
from app.cli.file_services import CachedFiles, file_services
from app.io.decoded_cache import DecodedCache
from app.io.loader import load_volume
from app.ui.main_window import MainWindow
from tests.ui.child_process import POLL_EVERY_5_MS, run_python_child


@pytest.fixture
def cache(tmp_path) -> DecodedCache:
    return DecodedCache(tmp_path / "cache")


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The series the window had read from files (not from the cache)."""
    calls: list[str] = []
    real_scanned, real_volume = services_module.load_scanned, services_module.load_volume

    def load_scanned(series, path, progress=None):
        calls.append(series.uid)
        return real_scanned(series, path, progress)

    def load(path, series_uid=None, progress=None):
        calls.append(series_uid or "")
        return real_volume(path, series_uid, progress)

    monkeypatch.setattr(services_module, "load_scanned", load_scanned)
    monkeypatch.setattr(services_module, "load_volume", load)
    return calls


def open_window(qtbot, viewer_settings, cache, path) -> MainWindow:
    window = MainWindow(viewer_settings, file_services(cache))
    window.resize(1000, 700)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.current is not None and not window.is_loading(), timeout=60000)
    assert not window.last_error, window.last_error
    return window


def seen_at_crosshair(window: MainWindow) -> tuple:
    volume = window.session.current
    cursor = np.asarray(window.state.cursor_lps_mm, dtype=float)
    panel = window.panels[0]
    return (
        tuple(np.round(cursor, 6)),
        volume.value_at_lps(cursor),
        tuple(volume.geometry.lps_from_ijk.ravel()),
        panel.readout_at_scene(panel.lps_to_scene(cursor)),
    )


def test_demo_opened_twice_is_shown_from_the_cache_the_second_time(
    qtbot, viewer_settings, cache, demo_dicom_dir, reads
):
    first = open_window(qtbot, viewer_settings, cache, demo_dicom_dir)
    assert len(reads) == 1  # read from the files
    uid = first.session.current.metadata["SeriesInstanceUID"]
    qtbot.waitUntil(lambda: cache.holds(str(demo_dicom_dir), reads[0]), timeout=30000)  # stored meanwhile
    assert cache.holds(str(demo_dicom_dir), scan=True)
    shown_first = seen_at_crosshair(first)
    rows_first = first.browser.tree.topLevelItemCount()

    second = open_window(qtbot, viewer_settings, cache, demo_dicom_dir)
    assert len(reads) == 1  # no second read: the cache served it
    assert second.session.current.metadata["SeriesInstanceUID"] == uid
    assert seen_at_crosshair(second) == shown_first
    assert np.array_equal(second.session.current.voxels, first.session.current.voxels)
    assert second.browser.tree.topLevelItemCount() == rows_first  # the Studies tree lists it
    assert second.session.current.name == first.session.current.name
    qtbot.wait(300)  # the check of the cached copy runs and finds it current: nothing said
    assert not second.notifications.notices


def study_copy(tmp_path, demo_dicom_dir):
    folder = tmp_path / "study"
    folder.mkdir()
    for source in sorted(demo_dicom_dir.iterdir())[60:76]:
        shutil.copy2(source, folder / source.name)
    return folder


def zero_last_rows_keeping_size_and_mtime(path) -> None:
    status = path.stat()
    data = bytearray(path.read_bytes())
    data[-2000:] = bytes(2000)  # pixels of the last rows zeroed: same size ...
    path.write_bytes(bytes(data))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))  # ... same time


def test_files_edited_keeping_size_and_mtime_are_read_again(
    qtbot, viewer_settings, cache, tmp_path, demo_dicom_dir, reads
):
    folder = study_copy(tmp_path, demo_dicom_dir)
    first = open_window(qtbot, viewer_settings, cache, folder)
    qtbot.waitUntil(lambda: cache.holds(str(folder), reads[0]), timeout=30000)
    zero_last_rows_keeping_size_and_mtime(folder / "IM0070.dcm")
    reads.clear()

    second = open_window(qtbot, viewer_settings, cache, folder)
    assert reads  # the change time moved: read from the files, never the cached pixels shown
    fresh = load_volume(folder)
    assert np.array_equal(second.session.current.voxels, fresh.voxels)
    assert not np.array_equal(second.session.current.voxels, first.session.current.voxels)
    qtbot.wait(300)
    assert not second.notifications.notices


def test_files_changed_unseen_by_their_stats_are_reloaded_and_said(
    qtbot, viewer_settings, cache, tmp_path, demo_dicom_dir, reads, monkeypatch
):
    from tests.io.test_decoded_cache import without_change_time

    without_change_time(monkeypatch)  # a file system that keeps no change time
    folder = study_copy(tmp_path, demo_dicom_dir)
    first = open_window(qtbot, viewer_settings, cache, folder)
    qtbot.waitUntil(lambda: cache.holds(str(folder), reads[0]), timeout=30000)
    zero_last_rows_keeping_size_and_mtime(folder / "IM0070.dcm")
    reads.clear()

    second = open_window(qtbot, viewer_settings, cache, folder)
    qtbot.waitUntil(lambda: bool(second.notifications.notices), timeout=30000)
    notice = second.notifications.notices[-1]
    assert "the cached copy did not match the files; reloaded from them" in notice.message
    qtbot.waitUntil(lambda: bool(reads) and not second.is_loading(), timeout=60000)
    fresh = load_volume(folder)
    assert np.array_equal(second.session.current.voxels, fresh.voxels)  # what the files hold now
    assert not np.array_equal(second.session.current.voxels, first.session.current.voxels)


def test_a_cache_that_cannot_be_written_leaves_the_window_loading(qtbot, viewer_settings, tmp_path, phantom):
    from app.io.nifti import save_nifti

    blocker = tmp_path / "a file"
    blocker.write_text("x")
    path = save_nifti(phantom, tmp_path / "p.nii.gz")
    window = open_window(qtbot, viewer_settings, DecodedCache(blocker / "cache"), path)
    assert window.session.current.voxels.shape == phantom.voxels.shape
    assert not window.notifications.notices


CACHED_START = r"""
import sys
from PySide6 import QtCore, QtWidgets
from app.cli.file_services import file_services, import_readers_in_background
import_readers_in_background([sys.argv[1]])
from app.ui.application import start_interactive_window
from app.ui.settings import ViewerSettings

settings = ViewerSettings(QtCore.QSettings(sys.argv[2], QtCore.QSettings.Format.IniFormat))
window = start_interactive_window([sys.argv[1]], file_services(), settings, (1000, 700), "mpr")
app = QtWidgets.QApplication.instance()
HEAVY = ("pydicom", "nibabel", "PIL", "requests")
shown = []


def poll():
    if not shown and window.session.current is not None and not window.is_loading():
        shown.append([m for m in HEAVY if m in sys.modules])
        QtCore.QTimer.singleShot(1500, finish)  # previews and the check of the cached copy run


def finish():
    later = [m for m in HEAVY if m in sys.modules]
    rows = QtWidgets.QTreeWidgetItemIterator(window.browser.tree)
    icons = 0
    while rows.value() is not None:  # scanned series rows with a thumbnail
        row = rows.value()
        icons += row.data(0, QtCore.Qt.ItemDataRole.UserRole + 1) is not None and not row.icon(0).isNull()
        rows += 1
    print("SHOWN", ",".join(shown[0]) or "-", "LATER", ",".join(later) or "-",
          "NOTICES", len(window.notifications.notices), "SHAPE", "x".join(map(str, window.session.current.voxels.shape)),
          "ICONS", icons)
    app.exit(0)

""" + POLL_EVERY_5_MS


def test_a_start_on_a_cached_study_imports_no_pydicom(tmp_path, demo_dicom_dir):
    folder = tmp_path / "cache"
    path = str(demo_dicom_dir)
    cached = CachedFiles(DecodedCache(folder))  # what the window's first open stores
    result = cached.scan_beside(path)
    largest = max(result.all_series(), key=lambda series: len(series.frames))
    cached.load_scanned(largest, path)
    cached.wait_for_writes()
    done = run_python_child(
        CACHED_START,
        path,
        str(tmp_path / "settings.ini"),
        QT_QPA_PLATFORM="offscreen",
        SYNTHVIEW_CACHE_DIR=str(folder),
    )
    line = done.stdout.strip().splitlines()[-1]
    assert line == "SHOWN - LATER - NOTICES 0 SHAPE 189x233x197 ICONS 1", done.stdout[-2000:] + done.stderr[-2000:]
    # The same start without the cache does import pydicom (the check sees real imports).
    done = run_python_child(
        CACHED_START, path, str(tmp_path / "settings2.ini"), QT_QPA_PLATFORM="offscreen", SYNTHVIEW_CACHE_DIR="off"
    )
    assert "pydicom" in done.stdout.strip().splitlines()[-1].split("LATER")[0]


def test_a_cached_folder_of_two_series_lists_and_previews_both_without_pydicom(tmp_path):
    from tests.io.series_factory import write_series

    study = tmp_path / "two"
    write_series(study, [0.0, 2.0, 4.0, 6.0, 8.0], series_uid="1.2.3.1", prefix="a")
    write_series(study, [0.0, 1.0, 2.0], series_uid="1.2.3.2", prefix="b")
    folder = tmp_path / "cache"
    cached = CachedFiles(DecodedCache(folder))  # what the window's first open stores
    result = cached.scan_beside(str(study))
    cached.load_scanned(result.find_series("1.2.3.1"), str(study))
    for series in result.all_series():
        cached.series_preview(series)
    cached.wait_for_writes()
    done = run_python_child(
        CACHED_START, str(study), str(tmp_path / "settings.ini"), QT_QPA_PLATFORM="offscreen",
        SYNTHVIEW_CACHE_DIR=str(folder),
    )  # fmt: skip
    line = done.stdout.strip().splitlines()[-1]
    assert line == "SHOWN - LATER - NOTICES 0 SHAPE 5x6x5 ICONS 2", done.stdout[-2000:] + done.stderr[-2000:]



def test_a_damaged_cache_entry_is_reloaded_without_blaming_the_files(
    qtbot, viewer_settings, cache, tmp_path, demo_dicom_dir, reads
):
    # A bit flipped in the stored array (the files untouched): the check catches it after the
    # hit is shown and reloads; the notice said "the files changed", which they had not.
    folder = study_copy(tmp_path, demo_dicom_dir)
    open_window(qtbot, viewer_settings, cache, folder)
    qtbot.waitUntil(lambda: cache.holds(str(folder), reads[0]), timeout=30000)
    (entry,) = [item for item, _, _ in cache.entries() if any(item.glob("voxels-*.npy"))]
    (array_file,) = entry.glob("voxels-*.npy")
    data = bytearray(array_file.read_bytes())
    data[-1] ^= 0x40
    array_file.write_bytes(bytes(data))
    reads.clear()

    second = open_window(qtbot, viewer_settings, cache, folder)
    qtbot.waitUntil(lambda: bool(second.notifications.notices), timeout=30000)
    message = second.notifications.notices[-1].message
    assert "reloaded" in message and "files changed" not in message
    qtbot.waitUntil(lambda: bool(reads) and not second.is_loading(), timeout=60000)
    assert np.array_equal(second.session.current.voxels, load_volume(folder).voxels)


def test_the_copy_found_stale_is_replaced_not_kept_open(
    qtbot, viewer_settings, cache, tmp_path, demo_dicom_dir, reads, monkeypatch, phantom
):
    # After the reload, the cached copy found stale stayed open beside the fresh one: pressing
    # compare (6) compared the files with the stale pixels; and a reload arriving after the
    # user opened another study took the screen from it.
    from tests.io.test_decoded_cache import without_change_time

    without_change_time(monkeypatch)
    folder = study_copy(tmp_path, demo_dicom_dir)
    open_window(qtbot, viewer_settings, cache, folder)
    qtbot.waitUntil(lambda: cache.holds(str(folder), reads[0]), timeout=30000)
    zero_last_rows_keeping_size_and_mtime(folder / "IM0070.dcm")
    reads.clear()
    answer = threading.Event()
    real_verify = CachedFiles.verify

    def slow_verify(self, path, series_uid=None):
        answer.wait(30)
        return real_verify(self, path, series_uid)

    monkeypatch.setattr(CachedFiles, "verify", slow_verify)
    window = open_window(qtbot, viewer_settings, cache, folder)
    stale = window.session.current
    window.open_volume(phantom)  # the user moves on before the check answers
    answer.set()
    qtbot.waitUntil(lambda: bool(reads) and not window.is_loading(), timeout=60000)
    qtbot.waitUntil(lambda: bool(window.notifications.notices), timeout=30000)
    assert window.session.current is phantom  # still what the user opened last
    opened = window.session.volumes
    assert not any(volume is stale for volume in opened)
    (fresh,) = [volume for volume in opened if volume is not phantom]
    assert np.array_equal(fresh.voxels, load_volume(folder).voxels)


def test_a_synthesized_series_shown_from_the_cache_stays_synthetic_on_screen_and_on_export(
    qtbot, viewer_settings, cache, tmp_path, reads, monkeypatch
):
    import pydicom

    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume
    from app.io.dicom_export import write_derived_series
    from app.ui import main_window as module
    from app.ui.first_image import FirstImageGrid

    voxels = (np.arange(6 * 20 * 18, dtype=np.int16).reshape(6, 20, 18) * 7) - 300
    geometry = Geometry(np.array([-10.0, 20.0, 30.0]), np.array([0.8, 0.9, 2.5]), np.eye(3)[:, [1, 0, 2]])
    provenance = Provenance("mr-denoise", "1.2", task="denoising", weights_sha256="ab" * 32, seed=7)
    write_derived_series(Volume(voxels, geometry, modality="CT", provenance=provenance), tmp_path / "synth")
    direct = load_volume(tmp_path / "synth")
    open_window(qtbot, viewer_settings, cache, tmp_path / "synth")
    qtbot.waitUntil(lambda: cache.holds(str(tmp_path / "synth"), reads[0]), timeout=30000)
    reads.clear()

    # The window a person starts (first image before the panels), served from the cache.
    monkeypatch.setattr(module, "PANEL_MODULE", "app.ui.panels_not_imported_yet")
    monkeypatch.setattr(module.MainWindow, "_import_panels", lambda self: None)  # panels held back
    window = module.MainWindow(viewer_settings, file_services(cache), first_image=True)
    window.resize(900, 600)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(tmp_path / "synth"))
    qtbot.waitUntil(lambda: window.session.current is not None and not window.is_loading(), timeout=30000)
    assert reads == []  # from the cache
    shown = window.session.current
    assert shown.is_synthetic and shown.provenance == direct.provenance
    assert np.array_equal(shown.voxels, direct.voxels) and shown.voxels.dtype == direct.voxels.dtype
    for name in ("origin_lps_mm", "spacing_mm", "direction"):
        assert np.array_equal(getattr(shown.geometry, name), getattr(direct.geometry, name))
    assert shown.metadata == direct.metadata
    grid = window.first_image
    assert isinstance(grid, FirstImageGrid)
    image = grid.grab().toImage()
    image.save(str(tmp_path / "first_image_from_cache.png"))
    red = 0
    for x in range(0, image.width(), 2):
        for y in range(0, min(image.height(), 80), 2):
            colour = image.pixelColor(x, y)
            red += colour.red() > 170 and colour.green() < 40 and colour.blue() < 60
    assert red > 100  # the SYNTHETIC label in every cell
    window.finish_first_image()
    labels = [panel.synthetic_labels() for panel in window.panels]
    assert len(labels) == 3 and all(texts and texts[0].startswith("SYNTHETIC") for texts in labels), labels

    written = write_derived_series(shown, tmp_path / "exported")
    header = pydicom.dcmread(written[0], stop_before_pixels=True)
    assert header.SyntheticData == "YES"


def test_a_nifti_shown_from_the_cache_is_the_file_bit_for_bit(qtbot, viewer_settings, cache, tmp_path, reads):
    from app.core.orientation_phantom import orientation_phantom
    from app.io.nifti import save_nifti

    oblique = np.array([[0.0, -1.0, 0.0], [0.8, 0.0, 0.6], [-0.6, 0.0, 0.8]])  # columns: i, j, k in LPS
    volume = orientation_phantom(size_ijk=(14, 11, 9), spacing_mm=(0.7, 1.3, 3.1), direction=oblique)
    path = save_nifti(volume.with_voxels(volume.voxels.astype(np.float32) * 0.37 - 11.5), tmp_path / "o.nii.gz")
    direct = load_volume(path)
    open_window(qtbot, viewer_settings, cache, path)
    qtbot.waitUntil(lambda: cache.holds(str(path)), timeout=30000)
    reads.clear()
    second = open_window(qtbot, viewer_settings, cache, path)
    assert reads == []
    shown = second.session.current
    assert shown.voxels.dtype == direct.voxels.dtype and shown.voxels.tobytes() == np.asarray(direct.voxels).tobytes()
    for name in ("origin_lps_mm", "spacing_mm", "direction"):
        assert getattr(shown.geometry, name).tobytes() == getattr(direct.geometry, name).tobytes()
    assert shown.metadata == direct.metadata and shown.name == direct.name


FIRST_PAINT_START = r"""
import gc, sys
from app.cli.desktop_process import prepare_desktop_process
prepare_desktop_process()
from PySide6 import QtCore, QtWidgets
from app.cli.file_services import file_services, import_readers_in_background
import_readers_in_background([sys.argv[1]])
from app.ui.application import start_interactive_window
from app.ui.settings import ViewerSettings

settings = ViewerSettings(QtCore.QSettings(sys.argv[2], QtCore.QSettings.Format.IniFormat))
services = file_services()
window = start_interactive_window([sys.argv[1]], services, settings, (1400, 850), "mpr")
app = QtWidgets.QApplication.instance()
current = window.session.current
print("AT-SHOW", current is not None and current.voxels.shape[0], type(window.first_image).__name__,
      "gc", gc.isenabled(), "app", type(app).__name__)


def layout():
    return window._docks["Studies"].width(), window.centralWidget().width()


def painted():
    print("PAINTED", "numpy.ma" in sys.modules, "requests" in sys.modules, "pydicom" in sys.modules)
    print("LAYOUT-AT-PAINT", *layout())


def tools_built():
    files = getattr(services.load_volume, "__self__", None)  # the CachedFiles (none with the cache off)
    left = len(files._read_ahead) if files is not None else 0
    print("TOOLS", "gc", gc.isenabled(), "left", left, "notices", len(window.notifications.notices))
    print("LAYOUT-LATER", *layout())
    app.exit(0)


window.first_image_painted.connect(painted)
window.startup_tools_built.connect(tools_built)
QtCore.QTimer.singleShot(60000, lambda: app.exit(3))
sys.exit(app.exec())
"""


def test_a_cached_start_shows_the_study_in_the_windows_first_paint(tmp_path, demo_dicom_dir):
    """The start's study, read ahead from the cache while the window was built, is in the
    window before it shows (no load in the thread pool, no second paint to wait for); nothing
    read ahead stays in memory; the collector is off during the start and on after it."""
    folder = tmp_path / "cache"
    path = str(demo_dicom_dir)
    cached = CachedFiles(DecodedCache(folder))
    scan = cached.scan_beside(path)
    cached.load_scanned(max(scan.all_series(), key=lambda series: len(series.frames)), path)
    cached.wait_for_writes()
    done = run_python_child(
        FIRST_PAINT_START, path, str(tmp_path / "settings.ini"), QT_QPA_PLATFORM="offscreen",
        SYNTHVIEW_CACHE_DIR=str(folder),
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert "AT-SHOW 189 FirstImageGrid gc False app FileOpenApplication" in lines, done.stdout + done.stderr[-2000:]
    assert "PAINTED False False False" in lines  # no numpy.ma, no pydicom, no requests
    assert "TOOLS gc True left 0 notices 0" in lines
    # The docks had their widths in that first paint: nothing moves under the image just drawn
    # (they were fitted after it and widened the left dock from 260 to 308 px, the image shrank).
    at_paint = next(line for line in lines if line.startswith("LAYOUT-AT-PAINT")).split()[1:]
    later = next(line for line in lines if line.startswith("LAYOUT-LATER")).split()[1:]
    assert at_paint == later and int(at_paint[0]) == int(0.22 * 1400), (at_paint, later)
    # Without the cache the start shows the window first and the study when it is read.
    done = run_python_child(
        FIRST_PAINT_START, path, str(tmp_path / "settings2.ini"), QT_QPA_PLATFORM="offscreen",
        SYNTHVIEW_CACHE_DIR="off",
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert "AT-SHOW False NoneType gc False app FileOpenApplication" in lines, done.stdout + done.stderr[-2000:]
    painted = next(line for line in lines if line.startswith("PAINTED")).split()
    assert painted[2:] == ["False", "True"]  # pydicom read it, without its downloader's requests
