"""The composition root's file services: ``app.io``'s loader, scanner and exporters for the window.

Each function imports ``app.io`` when first called (in the loading thread): pydicom and nibabel
cost the window's start-up nothing. With the decoded-series cache on (``SYNTHVIEW_CACHE_DIR``,
see ``app.io.decoded_cache``), a study opened before is listed and shown from the cache, with
neither pydicom nor nibabel imported; what is loaded from files is cached once it is returned.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.study import series_to_open
from app.core.volume import Volume
from app.ui.services import FileServices, PacsServices

if TYPE_CHECKING:
    from app.io.decoded_cache import CacheKey, DecodedCache


def import_readers_in_background(paths: Sequence[str]) -> threading.Thread | None:
    """Start, in a daemon thread, what opening ``paths`` will need while the window's own modules
    are imported and its widgets built: what the decoded-series cache holds of them is read ahead
    (``CachedFiles.fetch_ahead``; the window's ``file_services()`` takes it over); for the rest,
    the readers (pydicom for DICOM, nibabel for NIfTI) are imported.

    The viewer started with a path loads it in a thread that first imported pydicom (0.35 s)
    once the window existed, with the UI thread idle meanwhile; begun here, the import overlaps
    the window's: the demo came on screen 0.19 s sooner (bench_startup, 5 alternated starts,
    same machine). None (nothing started) without paths."""
    paths = [path for path in paths if not str(path).startswith("-")]
    if not paths:
        return None
    nifti = [str(path).lower().endswith((".nii", ".nii.gz")) for path in paths]
    files = _files_fetched_ahead(paths)

    def import_readers() -> None:
        try:
            if files is not None and files.fetch_ahead(paths):
                return  # the window lists and shows them from what was read ahead
            if not all(nifti):
                from app.io.pydicom_import import import_pydicom_offline

                import_pydicom_offline()
            import app.io.loader  # noqa: F401

            if not all(nifti):
                import app.io.dicom_load  # noqa: F401
                import app.io.dicom_scan  # noqa: F401
            if any(nifti):
                import nibabel  # noqa: F401
        except Exception:  # noqa: BLE001, S110 - the load itself imports them again and reports
            pass

    thread = threading.Thread(target=import_readers, name="import readers", daemon=True)
    thread.start()
    return thread


def opens_with_a_scan(path) -> bool:
    """Whether opening ``path`` starts with a scan of its folder (a folder, or a DICOM file: any
    file that is not NIfTI), else it is one NIfTI volume, read whole."""
    from app.io.nifti import is_nifti_path

    return Path(path).is_dir() or not is_nifti_path(path)


_ahead_lock = threading.Lock()
_ahead: CachedFiles | None = None  # the files import_readers_in_background reads ahead into


def _files_fetched_ahead(paths: Sequence[str]) -> CachedFiles | None:
    """The CachedFiles that reads ``paths`` ahead, for the next ``file_services()`` to take
    over; None with the cache off."""
    global _ahead
    from app.io.decoded_cache import DecodedCache, cache_version

    cache = DecodedCache.from_environment()
    if cache is None:
        return None
    # Here, before the window's imports: 2 ms; in the thread while the UI thread imports, each of
    # its 45 file reads waits for the interpreter lock (0.05 s).
    cache_version()
    files = CachedFiles(cache)
    files.expect(paths)  # before it is published: a request made meanwhile waits for the read
    with _ahead_lock:
        _ahead = files
    return files


def _take_files_fetched_ahead(cache: DecodedCache) -> CachedFiles | None:
    """The CachedFiles reading ahead into ``cache``'s folder, once (then None)."""
    global _ahead
    with _ahead_lock:
        files, _ahead = _ahead, None
    return files if files is not None and files.cache.folder == cache.folder else None


class CachedFiles:
    """The window's loader, scanner and previews through a ``DecodedCache``.

    A hit returns the cached scan or volume (no pydicom, no nibabel, no decode) and is noted for
    ``verify``; a miss reads the files as without a cache and stores the result in a background
    thread once it has been returned (the window shows it meanwhile). Only what did not change
    while it was read is stored: the stats are taken before the read and compared after it.
    """

    def __init__(self, cache: DecodedCache) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        # (path, series UID or "") served from the cache -> the key (file stats) it was served under
        self._unverified: dict[tuple[str, str], CacheKey] = {}
        self._scanned_files: dict[str, tuple] = {}  # path -> the file stats its last scan saw
        self._loaded = weakref.WeakValueDictionary()  # (series UID, folder) -> a volume returned for it
        self._writers: list[threading.Thread] = []
        # Read ahead of the window's requests (fetch_ahead): path -> set once its read is over,
        # and ("scan", path) or ("volume", path, series UID) -> the result, for one request.
        self._reading_ahead: dict[str, threading.Event] = {}
        self._read_ahead: dict[tuple[str, ...], object] = {}

    # ----- reading ahead (the start of the window) -----------------------------------------
    AHEAD_WAIT_S = 10.0  # a request waits this long for the read ahead of its path, at most

    def expect(self, paths: Sequence[str]) -> None:
        """Requests for ``paths`` wait for ``fetch_ahead`` to have read them."""
        with self._lock:
            for path in paths:
                self._reading_ahead.setdefault(str(path), threading.Event())

    def fetch_ahead(self, paths: Sequence[str]) -> bool:
        """Read from the cache what opening each of ``paths`` asks for first, before it is asked:
        a NIfTI file's volume; a DICOM folder's or file's scan and the series the window shows
        first (``series_to_open``). Cache hits only, nothing decoded; each result waits in memory
        for one request, which takes it instead of reading the cache (a request made meanwhile
        waits for it). Whether the cache held all of it."""
        self.expect(paths)
        held = True
        for path in paths:
            key = str(path)
            try:
                if opens_with_a_scan(key):
                    scan_key = self.cache.scan_key(key)
                    scan = self._scan_from_cache(key, scan_key)
                    series = series_to_open(scan, key) if scan is not None else None
                    volume = None
                    if series is not None:  # the folder's files, stat-ed once for both keys
                        volume = self._volume_from_cache(key, series.uid, self.cache.key(key, series.uid, like=scan_key))
                    ahead = {("scan", key): scan, ("volume", key, series.uid if series else ""): volume}
                    held = held and scan is not None and (volume is not None or series is None)
                else:
                    volume = self._volume_from_cache(key, None)
                    ahead = {("volume", key, ""): volume}
                    held = held and volume is not None
                with self._lock:
                    self._read_ahead.update({name: found for name, found in ahead.items() if found is not None})
            except Exception:  # noqa: BLE001 - a request reads it again and reports what is wrong
                held = False
            finally:
                with self._lock:
                    event = self._reading_ahead.pop(key, None)
                if event is not None:
                    event.set()
        return held

    IN_MEMORY_WAIT_S = 0.25  # in_memory waits this long for a read ahead still going on, at most

    def in_memory(self, kind: str, path: str, series_uid: str = "") -> bool:
        """Whether ``fetch_ahead`` read that request's result and it waits in memory. A read of
        ``path`` still going on is waited for, ``IN_MEMORY_WAIT_S`` at most (the window, not
        shown yet, then shows with the study in its first paint; a read that takes longer, a
        large series, goes on while it shows)."""
        self._wait_for_read_ahead(path, self.IN_MEMORY_WAIT_S)
        name = ("scan", str(path)) if kind == "scan" else ("volume", str(path), series_uid or "")
        with self._lock:
            return str(path) not in self._reading_ahead and name in self._read_ahead

    def _wait_for_read_ahead(self, path, timeout_s: float) -> None:
        """Until ``fetch_ahead``'s read of ``path`` is over (at once when none goes on)."""
        with self._lock:
            event = self._reading_ahead.get(str(path))
        if event is not None:
            event.wait(timeout_s)

    def _take_ahead(self, path, name: tuple[str, ...]):
        """What ``fetch_ahead`` read for ``name`` (waiting for the read of ``path``), once; a
        volume request also drops the other series read ahead of that path."""
        self._wait_for_read_ahead(path, self.AHEAD_WAIT_S)
        with self._lock:
            found = self._read_ahead.pop(name, None)
            if name[0] == "volume":
                for other in [key for key in self._read_ahead if key[:2] == name[:2]]:
                    del self._read_ahead[other]
        return found

    def scan_beside(self, path) -> list:
        ahead = self._take_ahead(path, ("scan", str(path)))
        if ahead is not None:
            return ahead
        key = self.cache.scan_key(path)  # before the listing is read, from the cache or the files
        cached = self._scan_from_cache(path, key)
        if cached is not None:
            return cached
        result = scan_beside(path)
        self._remember_scan(path, key)
        self.cache.put_scan(path, result, key=key)  # a small JSON record: written here
        return result

    def load_volume(self, path, series_uid: str | None = None, progress=None) -> Volume:
        return self._load(path, series_uid, lambda: load_volume(path, series_uid, progress))

    def load_scanned(self, series, path, progress=None) -> Volume:
        files_scanned = self._scanned_files.get(str(path))
        return self._load(path, series.uid, lambda: load_scanned(series, path, progress), files_scanned)

    def series_preview(self, series) -> Volume:
        """A series whose volume was returned is its own preview (the middle slice is its
        thumbnail); others' previews come from the cache when their frame's file is unchanged:
        no frame decoded again, no pydicom for a study shown from the cache."""
        volume = self._loaded.get((str(series.uid), str(Path(series.frames[0].path).parent)))
        if volume is not None and volume.voxels.shape[0] == len(series.frames):
            return volume
        frame = series.frames[len(series.frames) // 2].path  # the one file series_preview reads
        cached = self.cache.get_preview(frame, series.uid)
        if cached is not None:
            return cached
        before = self.cache.preview_key(frame, series.uid)
        preview = series_preview(series)
        self.cache.put_preview(frame, series.uid, preview, key=before)  # one frame: written here
        return preview

    def verify(self, path, series_uid: str | None = None) -> bool | None:
        """None when the last load of (path, series) did not come from the cache; else whether
        the cached copy still matches its files, byte for byte (rehashes them: off the UI
        thread). False removes the stale entries: the next load reads the files. An entry gone
        meanwhile (``cache --clear``, another process's eviction) is no change of the files:
        None, unless their stats moved since the hit."""
        with self._lock:
            shown = self._unverified.pop((str(path), series_uid or ""), None)
        if shown is None:
            return None
        if self.cache.key(path, series_uid) != shown:
            return False  # the files changed since the cached copy was shown
        return self.cache.verify(path, series_uid)

    def wait_for_writes(self, timeout_s: float | None = None) -> None:
        """Until the entries being stored are written."""
        with self._lock:
            writers, self._writers = self._writers, []
        for writer in writers:
            writer.join(timeout_s)

    def _remember_scan(self, path, key) -> None:
        if key is not None:
            self._scanned_files[str(path)] = key.files

    def _scan_from_cache(self, path, key=None):
        """The cached scan of ``path`` (None: a miss); ``key``: the request's, taken before."""
        key = key if key is not None else self.cache.scan_key(path)
        cached = self.cache.get_scan(path, key) if key is not None else None
        if cached is not None:
            self._remember_scan(path, key)
        return cached

    def _volume_from_cache(self, path, series_uid: str | None, before=None) -> Volume | None:
        """The cached volume (None: a miss), noted for ``verify``; ``before``: the request's key."""
        before = before if before is not None else self.cache.key(path, series_uid)
        cached = self.cache.get(path, series_uid, key=before) if before is not None else None
        if cached is not None:
            with self._lock:
                self._unverified[(str(path), series_uid or "")] = before
            self._note_loaded(series_uid, cached)
        return cached

    def _load(self, path, series_uid: str | None, read: Callable[[], Volume], files_scanned=None) -> Volume:
        ahead = self._take_ahead(path, ("volume", str(path), series_uid or ""))
        if ahead is not None:
            return ahead
        before = self.cache.key(path, series_uid)
        cached = self._volume_from_cache(path, series_uid, before)
        if cached is not None:
            return cached
        volume = read()
        self._note_loaded(series_uid, volume)
        if before is not None and (files_scanned is None or files_scanned == before.files):
            writer = threading.Thread(
                target=self._store,
                args=(path, series_uid, volume, before),
                name="decoded cache write",
                daemon=True,
            )
            with self._lock:
                self._writers = [thread for thread in self._writers if thread.is_alive()] + [writer]
            writer.start()
        return volume

    def _store(self, path, series_uid: str | None, volume: Volume, before) -> None:
        try:
            self.cache.put(path, series_uid, volume, before)
        except Exception as error:  # noqa: BLE001 - a cache that cannot store is no failure of the load
            print(f"SynthView: not cached: {type(error).__name__}: {error}", file=sys.stderr)

    def _note_loaded(self, series_uid: str | None, volume: Volume) -> None:
        if series_uid:
            self._loaded[(str(series_uid), volume.source_path)] = volume


def load_volume(path, series_uid: str | None = None, progress: Callable[[int, int], None] | None = None) -> Volume:
    from app.io.loader import load_volume as load

    return load(path, series_uid=series_uid, progress=progress)


def load_scanned(series, path, progress: Callable[[int, int], None] | None = None) -> Volume:
    from app.io.loader import load_scanned_series

    return load_scanned_series(series, path, progress)


def scan_beside(path) -> list:
    from app.io.loader import scan_beside as scan

    return scan(path)


def series_preview(series) -> Volume:
    """The middle frame of a scanned series only (the browser's thumbnail)."""
    from app.io.dicom_load import load_series

    middle = series.frames[len(series.frames) // 2]
    columns, rows, _ = series.size_ijk
    return load_series(dataclasses.replace(series, frames=[middle], size_ijk=(columns, rows, 1)))


def export_annotations(
    document, volume: Volume, folder, deidentify: bool = False, warnings=None, compare_volumes=None
) -> list:
    """The annotation bundle; ``warnings`` collects what a de-identified export could not check;
    ``compare_volumes`` (panel name -> volume) are measured into the sidecar's measurements block."""
    from app.io.annotation_export import export_annotation_bundle

    return export_annotation_bundle(
        document, volume, folder, deidentify=deidentify, warnings=warnings, compare_volumes=compare_volumes
    )


def pacs_load_config():
    from app.pacs.nodes import load_config

    return load_config()


def pacs_find(node, config, query) -> list[dict]:
    from app.pacs.service import find

    return find(node, config, query)


def pacs_retrieve(node, config, study_uid, series_uid=None, progress=None, cancel=None):
    from app.pacs.cache import StudyCache

    return StudyCache.for_config(config).retrieve(node, config, study_uid, series_uid, progress, cancel)


def pacs_send(node, config, path):
    from pathlib import Path

    from app.pacs.service import send

    return send(node, config, Path(path))


def save_nifti(volume: Volume, path, extra_sidecar: dict | None = None):
    from app.io.nifti import save_nifti as save

    return save(volume, path, extra_sidecar=extra_sidecar)


_FROM_ENVIRONMENT = object()


def file_services(cache: DecodedCache | None | object = _FROM_ENVIRONMENT) -> FileServices:
    """The window's services; ``cache``: the decoded-series cache (default: the user's, as
    ``SYNTHVIEW_CACHE_DIR`` says; None: none)."""
    pacs = PacsServices(pacs_load_config, pacs_find, pacs_retrieve, pacs_send)
    if cache is _FROM_ENVIRONMENT:
        from app.io.decoded_cache import DecodedCache

        cache = DecodedCache.from_environment()
    if cache is None:
        return FileServices(
            load_volume, scan_beside, series_preview, export_annotations, pacs, load_scanned, save_nifti
        )
    cached = _take_files_fetched_ahead(cache) or CachedFiles(cache)
    return FileServices(
        cached.load_volume,
        cached.scan_beside,
        cached.series_preview,
        export_annotations,
        pacs,
        cached.load_scanned,
        save_nifti,
        verify_cached=cached.verify,
        in_memory=cached.in_memory,
    )
