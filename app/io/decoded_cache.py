"""A cache of decoded series: reopening a study the viewer has already loaded reads one ``.npy``
array and a JSON record instead of scanning, decoding (JPEG 2000, RLE...) and importing pydicom
or nibabel.

PHI AT REST: every entry holds a patient's pixels and header values (names, IDs, dates). The
cache folder is created private to the user (0700); entry names are hashes (nothing of the
patient in a file name); ``SYNTHVIEW_CACHE_DIR=off`` turns the cache off and
``python main.py cache --clear`` empties it.

An entry is keyed by what was asked for (the path as given, the working folder when that path is
relative, the resolved path, the series UID) and recorded with the (name, size, mtime_ns,
ctime_ns) of every file the load reads, as ``app.io.loader`` reads them: a folder, every file ``scan_path`` considers;
a DICOM file with a series UID, the files beside it (``scan_beside``); a DICOM file alone, that
file; a NIfTI, the file and its JSON sidecar (or that there is none); plus ``CACHE_VERSION``
(the format, the application's version and a digest of the loader's source). Any difference is
a miss, and the stale entry goes. That check is stats only (milliseconds). The change time is
in it because an edit can keep size and mtime (``os.utime`` puts the mtime back) but not the
ctime, which any write or ``utime`` sets to now: without it, such an edit made while a miss was
being stored left the old pixels cached under the new bytes' digest, served with no warning.
``verify`` rehashes the source files (and the stored array) against the SHA-256 digests recorded
at ``put``, for a caller to run in the background after a hit was shown: it catches a damaged
entry, and an edit on a file system that keeps no change time.

No pickle: arrays through ``numpy.lib.format`` with ``allow_pickle=False``, everything else as
JSON in a tagged form that rebuilds only the dataclasses and enums listed in ``_TYPES``. An
entry that is truncated, garbled, of another key, or holds an object array is a miss and is
removed; ``get`` never raises for what is in the folder. Writes are atomic (a partial folder
renamed into place: a kill mid-write leaves nothing ``get`` accepts); the folder is kept under
``max_bytes``, least recently used entries evicted first. A folder that cannot be written turns
the cache off for the process with one line on stderr: loads go on as without it.

Importing this module imports neither pydicom nor nibabel (only numpy and ``app.core``).
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import app
from app.core.label_map import LabelCode, LabelEntry, LabelMapProvenance
from app.core.provenance import Provenance
from app.core.quantity_map import MapKind, QuantityMap
from app.core.study import FrameRef, ScanResult, SeriesInfo, SkippedFile, StudyInfo
from app.core.tilt import TiltCorrectionRecord
from app.core.volume import Geometry, Volume
from app.io.atomic import atomic_folder, remove_stale_partials
from app.io.candidate_files import iter_candidate_files
from app.io.nifti import is_nifti_path, sidecar_path  # nibabel is imported by its loader only

FORMAT_VERSION = 3  # bump when the entry layout changes (2: ctime in the key; 3: record digest)
DEFAULT_MAX_BYTES = 4 * 1024**3
ENV_VARIABLE = "SYNTHVIEW_CACHE_DIR"  # a folder, or "off"
_META = "entry.json"
_MAX_META_BYTES = 256 * 1024**2  # a scan of ~500 000 frames; anything larger is not ours
_ARRAY_KINDS = "biuf"  # bool, integers, floats: what a loader returns (never objects, strings)
_CHUNK = 4 * 1024**2
_ARRAY_OVERHEAD = 1024  # beside the voxels: the npy header and the array's digest in the record
_DIGEST_BYTES = 128  # the record's own digest in it
_ENTRY_NAME = re.compile(r"^[0-9a-f]{40}$")  # CacheKey.entry_name
_LEFTOVER_NAME = re.compile(r"^\.[0-9a-f]{40}\.(?:partial|old)-\d+$")  # app.io.atomic's, and _discard's
# The dataclasses and enums an entry may hold, by name: nothing else is ever constructed.
_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Provenance,
        LabelMapProvenance,
        LabelEntry,
        LabelCode,
        QuantityMap,
        MapKind,
        TiltCorrectionRecord,
        FrameRef,
        SeriesInfo,
        StudyInfo,
        SkippedFile,
        ScanResult,
    )
}


class _NotCacheable(ValueError):
    """A value the JSON form cannot hold exactly (the volume is then not cached)."""


class _BadEntry(ValueError):
    """What is in the cache folder is not an entry this code wrote for this key."""


def default_cache_dir() -> Path | None:
    """``SYNTHVIEW_CACHE_DIR`` ("off": None; a relative one from the working folder, made
    absolute so that ``cache`` says where), else the platform's user cache folder +
    SynthView/decoded (XDG_CACHE_HOME or ~/.cache, %LOCALAPPDATA%, ~/Library/Caches)."""
    configured = os.environ.get(ENV_VARIABLE, "").strip()
    if configured.lower() in ("off", "0", "none", "false"):
        return None
    if configured:
        return Path(configured).expanduser().absolute()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "SynthView" / "decoded"


_version_lock = threading.Lock()
_version: str | None = None


def cache_version() -> str:
    """The format, the application's version and a digest of the source of the packages a load
    runs through (app.io, app.core) and of the installed readers' versions (pydicom, its
    decoders, nibabel, numpy): a changed loader or decoder never serves what the old one decoded."""
    global _version
    with _version_lock:
        if _version is None:
            digest = hashlib.sha256()
            root = Path(app.__file__).parent
            for package in ("io", "core"):
                for source in sorted((root / package).glob("*.py")):
                    try:
                        digest.update(source.name.encode() + b"\0" + source.read_bytes())
                    except OSError:
                        digest.update(source.name.encode() + b"\0unreadable")
            digest.update("\n".join(_reader_distributions()).encode())
            _version = f"{FORMAT_VERSION}:{app.__version__}:{digest.hexdigest()[:16]}"
        return _version


_READERS = ("pydicom-", "pylibjpeg", "pyjpegls-", "python_gdcm-", "gdcm-", "pillow-", "nibabel-", "numpy-")


def _reader_distributions() -> list[str]:
    """The installed readers' ``NAME-VERSION.dist-info`` folders (the folder names only: a listing
    of site-packages, not importlib.metadata's scan)."""
    found = set()
    for entry in sys.path:
        if not entry.endswith("site-packages"):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        found.update(n for n in names if n.endswith(".dist-info") and n.lower().startswith(_READERS))
    return sorted(found)


@dataclass(frozen=True)
class CacheKey:
    """What an entry was made from: the request and a stats snapshot of the files it read."""

    kind: str  # "volume" or "scan"
    path: str  # as given
    cwd: str  # the working folder when ``path`` is relative ("" otherwise): a load's paths keep it
    resolved: str
    series_uid: str
    version: str
    files: tuple[tuple[str, int, int, int], ...]  # (path, size, mtime_ns, ctime_ns); -1s: absent

    @property
    def entry_name(self) -> str:
        """The entry's folder name: a hash of the request only, so that a newer load of the same
        request replaces the stale entry rather than leaving it to eviction."""
        request = json.dumps([self.kind, self.path, self.cwd, self.resolved, self.series_uid])
        return hashlib.sha256(request.encode()).hexdigest()[:40]

    def to_json(self) -> list:
        return [self.kind, self.path, self.cwd, self.resolved, self.series_uid, self.version,
                [list(entry) for entry in self.files]]  # fmt: skip


def _folder_files(folder: Path, recursive: bool) -> list[Path]:
    """What ``app.io.dicom_scan.scan(folder, recursive)`` reads. With a DICOMDIR it reads the
    files the DICOMDIR lists, anywhere below: then every file below, hidden ones too."""
    if (folder / "DICOMDIR").is_file():
        return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)
    return list(iter_candidate_files(folder, recursive))


def source_files(path: str | Path, series_uid: str | None = None, kind: str = "volume") -> list[Path] | None:
    """The files a load (``kind="volume"``: ``app.io.loader.load_volume(path, series_uid)``), a
    window's scan (``kind="scan"``: ``scan_beside(path)``) or a series' browser preview
    (``kind="preview"``: one frame of the file ``path``) reads; None: nothing to cache."""
    path = Path(path)
    if kind == "preview":
        return [path] if path.is_file() else None
    if path.is_dir():
        return _folder_files(path, recursive=True)
    if not path.is_file():
        return None
    if is_nifti_path(path):
        return [path, sidecar_path(path)] if kind == "volume" else None
    beside = series_uid if kind == "volume" else True
    if beside and path.name.upper() != "DICOMDIR":
        return _folder_files(path.parent, recursive=False)
    return [path]


def _stat(path: Path) -> tuple[str, int, int, int]:
    try:
        status = path.stat()
    except OSError:
        return (str(path), -1, -1, -1)
    return (str(path), int(status.st_size), int(status.st_mtime_ns), int(status.st_ctime_ns))


def make_key(
    path: str | Path, series_uid: str | None = None, kind: str = "volume", like: CacheKey | None = None
) -> CacheKey | None:
    """The key of a request as the files stand now (stats only); None when it is not cacheable.
    ``like``: a key just taken of the same files (a folder's scan key for a series in it): its
    stats are this key's too, when it lists the same files (a folder of 1,000 files is not
    stat-ed twice)."""
    files = source_files(path, series_uid, kind)
    if files is None:
        return None
    given = str(path)
    if like is not None and [entry[0] for entry in like.files] == [str(file) for file in files]:
        stats = like.files
    else:
        stats = tuple(_stat(file) for file in files)
    return CacheKey(
        kind=kind,
        path=given,
        cwd="" if os.path.isabs(given) else os.getcwd(),
        resolved=str(Path(path).resolve()),
        series_uid=series_uid or "",
        version=cache_version(),
        files=stats,
    )


def files_digest(key: CacheKey) -> str:
    """SHA-256 over the names and bytes of the key's files (an absent file hashes as absent)."""
    digest = hashlib.sha256()
    for name, *_ in key.files:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(name, "rb") as handle:
                while block := handle.read(_CHUNK):
                    digest.update(block)
            digest.update(b"\0end\0")
        except OSError:
            digest.update(b"\0absent\0")
    return digest.hexdigest()


def _record_text(meta: dict) -> str:
    return json.dumps(meta, allow_nan=False, separators=(",", ":"))


def _sealed(meta: dict) -> str:
    """The record's text, ending with the SHA-256 of the rest of it: the record holds what the
    array does not (geometry, provenance: the SYNTHETIC marking, the scan), so an edit or a
    flipped bit there that still parses must not be served."""
    digest = hashlib.sha256(_record_text(meta).encode("utf-8")).hexdigest()
    return _record_text({**meta, "record_sha256": digest})


def _unseal(meta: dict) -> None:
    """Take the digest off a record read back (its last field); _BadEntry if the rest differs."""
    claimed = meta.pop("record_sha256", None)
    if claimed != hashlib.sha256(_record_text(meta).encode("utf-8")).hexdigest():
        raise _BadEntry("the record was changed")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ----- the tagged JSON form -------------------------------------------------------------------
def _encode(value):
    """A JSON value that ``_decode`` turns back into ``value`` exactly (types included)."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"f": repr(value)}
    if kind is list:
        return {"l": [_encode(item) for item in value]}
    if kind is tuple:
        return {"t": [_encode(item) for item in value]}
    if kind is dict:
        return {"d": [[_encode(k), _encode(v)] for k, v in value.items()]}
    name = kind.__name__
    if _TYPES.get(name) is kind:
        if isinstance(value, enum.Enum):
            return {"e": name, "v": _encode(value.value)}
        fields = dataclasses.fields(value)
        if any(not field.init for field in fields):
            raise _NotCacheable(f"{name} has fields its constructor does not take")
        return {"c": name, "v": {field.name: _encode(getattr(value, field.name)) for field in fields}}
    raise _NotCacheable(f"a {kind.__module__}.{kind.__qualname__} cannot be cached")


def _decode(value):
    if value is None or type(value) in (bool, int, str, float):
        return value
    if type(value) is not dict or len(value) not in (1, 2):
        raise _BadEntry("not a tagged value")
    if "f" in value and len(value) == 1:
        number = float(value["f"])
        if math.isfinite(number):
            raise _BadEntry("a finite number stored as non-finite")
        return number
    if "l" in value and len(value) == 1:
        return [_decode(item) for item in _list(value["l"])]
    if "t" in value and len(value) == 1:
        return tuple(_decode(item) for item in _list(value["t"]))
    if "d" in value and len(value) == 1:
        pairs = [_list(pair) for pair in _list(value["d"])]
        if any(len(pair) != 2 for pair in pairs):
            raise _BadEntry("a dict item is not a pair")
        return {_hashable(_decode(k)): _decode(v) for k, v in pairs}
    if "e" in value and "v" in value:
        cls = _TYPES.get(value["e"]) if isinstance(value["e"], str) else None
        if cls is None or not issubclass(cls, enum.Enum):
            raise _BadEntry(f"unknown enum {value['e']!r}")
        return cls(_decode(value["v"]))
    if "c" in value and "v" in value:
        cls = _TYPES.get(value["c"]) if isinstance(value["c"], str) else None
        if cls is None or not dataclasses.is_dataclass(cls) or type(value["v"]) is not dict:
            raise _BadEntry(f"unknown record {value['c']!r}")
        names = {field.name for field in dataclasses.fields(cls)}
        if set(value["v"]) != names:
            raise _BadEntry(f"{value['c']} fields differ")
        return cls(**{name: _decode(item) for name, item in value["v"].items()})
    raise _BadEntry("unknown tag")


def _list(value) -> list:
    if type(value) is not list:
        raise _BadEntry("a list was expected")
    return value


def _hashable(key):
    hash(key)  # TypeError for a list or dict key: caught as a bad entry
    return key


_VOLUME_FIELDS = tuple(field.name for field in dataclasses.fields(Volume))
_PLAIN_FIELDS = tuple(name for name in _VOLUME_FIELDS if name not in ("voxels", "geometry"))


def _geometry_json(geometry: Geometry) -> dict:
    return {
        "origin_lps_mm": [float(v) for v in geometry.origin_lps_mm],
        "spacing_mm": [float(v) for v in geometry.spacing_mm],
        "direction": [[float(v) for v in row] for row in geometry.direction],
    }


def _geometry_from(record) -> Geometry:
    if type(record) is not dict or set(record) != {"origin_lps_mm", "spacing_mm", "direction"}:
        raise _BadEntry("geometry")
    arrays = {}
    for name, shape in (("origin_lps_mm", (3,)), ("spacing_mm", (3,)), ("direction", (3, 3))):
        array = np.array(record[name], dtype=np.float64)
        if array.shape != shape:
            raise _BadEntry(f"geometry {name} has shape {array.shape}")
        arrays[name] = array
    return Geometry(**arrays)


class _HashingWriter:
    """A file object for ``numpy.lib.format.write_array`` that hashes what it writes."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)
        return self.handle.write(data)


def _read_array(path: Path, dtype: str, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    """The array in ``path``, checked against what the entry's JSON says before any data is read
    (a hostile header cannot make it allocate more than the file holds)."""
    expected = np.dtype(dtype)
    if expected.kind not in _ARRAY_KINDS or expected.hasobject or expected.fields is not None:
        raise _BadEntry(f"dtype {dtype} is not a voxel type")
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(handle)
        else:
            raise _BadEntry(f"npy version {version}")
        found_shape, found_fortran, found_dtype = header
        if tuple(found_shape) != shape or bool(found_fortran) != fortran or found_dtype != expected:
            raise _BadEntry("the array's header does not match the entry")
        data_bytes = int(np.prod(shape, dtype=np.int64)) * expected.itemsize
        if os.fstat(handle.fileno()).st_size - handle.tell() != data_bytes:
            raise _BadEntry("the array file is truncated or padded")
        handle.seek(0)
        array = np.lib.format.read_array(handle, allow_pickle=False)
    if array.dtype != expected or array.shape != shape:
        raise _BadEntry("the array read differs from its header")
    return array


class DecodedCache:
    """Decoded volumes (and the scans listing them) on disk, keyed by their source files' stats.

    ``get``/``get_scan`` answer None for any miss (absent, stale, damaged: the entry is removed);
    ``put``/``put_scan`` return whether the entry was stored. Thread-safe within one process;
    several processes may share a folder (every write is a rename).
    """

    def __init__(self, folder: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.enabled = True  # False once the folder proved unwritable (one line said why)
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, max_bytes: int = DEFAULT_MAX_BYTES) -> DecodedCache | None:
        """The user's cache (``default_cache_dir``); None when turned off."""
        folder = default_cache_dir()
        return None if folder is None else cls(folder, max_bytes)

    # ----- reading -------------------------------------------------------------------------
    def get(
        self, path: str | Path, series_uid: str | None = None, key: CacheKey | None = None
    ) -> Volume | None:
        """The volume ``load_volume(path, series_uid)`` would return, if cached and current
        (``key``: the request's ``key`` if the caller took it already)."""
        return self._get_volume(key if key is not None else make_key(path, series_uid, "volume"))

    def get_preview(self, frame_path: str | Path, series_uid: str) -> Volume | None:
        """A series' browser preview (one frame of ``frame_path``), if cached and current. Not
        rehashed by ``verify``: a thumbnail, checked by its file's stats only."""
        return self._get_volume(make_key(frame_path, series_uid, "preview"))

    def _get_volume(self, key: CacheKey | None) -> Volume | None:
        entry = self._current_entry(key)
        if entry is None:
            return None
        folder, meta = entry
        try:
            return self._volume_from(folder, meta)
        except Exception:  # noqa: BLE001 - whatever is wrong with an entry, it is a miss
            self._discard(folder)
            return None

    def get_scan(self, path: str | Path, key: CacheKey | None = None) -> ScanResult | None:
        """What ``scan_beside(path)`` would return, if cached and current (``key``: the
        request's ``scan_key`` if the caller took it already)."""
        entry = self._current_entry(key if key is not None else make_key(path, None, "scan"))
        if entry is None:
            return None
        folder, meta = entry
        try:
            result = _decode(meta["scan"])
            if type(result) is not ScanResult:
                raise _BadEntry("not a scan")
            return result
        except Exception:  # noqa: BLE001 - a miss
            self._discard(folder)
            return None

    def holds(self, path: str | Path, series_uid: str | None = None, scan: bool = False) -> bool:
        """Whether a current entry answers the request (its record checked, nothing decoded)."""
        return self._current_entry(make_key(path, series_uid, "scan" if scan else "volume")) is not None

    def verify(self, path: str | Path, series_uid: str | None = None) -> bool | None:
        """Whether the cached volume still matches its source files byte for byte (and its stored
        array is the one written): rehashes everything, for a background thread after a hit.
        False removes the entry, and the scan entry of ``path``, which the same files made. None:
        no current entry to check (cleared, evicted, or the files' stats changed: the caller
        compares them with those of the hit it showed)."""
        key = make_key(path, series_uid, "volume")
        entry = self._current_entry(key)
        if entry is None:
            return None
        folder, meta = entry
        try:
            array_file = folder / meta["voxels"]["file"]
            good = meta.get("files_sha256") == files_digest(key)
            good = good and meta.get("voxels_sha256") == _file_sha256(array_file)
        except Exception:  # noqa: BLE001 - an unreadable entry is no proof
            good = False
        if not good:
            self._discard(folder)
            scan_key = make_key(path, None, "scan")
            if scan_key is not None:
                self._discard(self.folder / scan_key.entry_name)
        return good

    def _current_entry(self, key: CacheKey | None) -> tuple[Path, dict] | None:
        """The entry folder and its record when it was written for exactly ``key``."""
        if key is None or not self.enabled:
            return None
        folder = self.folder / key.entry_name
        meta_path = folder / _META
        try:
            if meta_path.stat().st_size > _MAX_META_BYTES:
                raise _BadEntry("record too large")
            meta = json.loads(meta_path.read_bytes())
            if type(meta) is not dict or meta.get("format") != FORMAT_VERSION:
                raise _BadEntry("not an entry of this format")
            _unseal(meta)
            if meta.get("key") != key.to_json():
                raise _BadEntry("another key, or the files changed")
        except FileNotFoundError:
            if folder.exists() or folder.is_symlink():
                self._discard(folder)  # a folder with no record is no entry
            return None
        except Exception:  # noqa: BLE001 - garbled, foreign, stale: a miss
            self._discard(folder)
            return None
        try:
            os.utime(meta_path)  # the least recently used entries are evicted first
        except OSError:
            pass
        return folder, meta

    def _volume_from(self, folder: Path, meta: dict) -> Volume:
        voxels_record = meta["voxels"]
        name = voxels_record["file"]
        if type(name) is not str or not name.startswith("voxels-") or "/" in name or "\\" in name:
            raise _BadEntry("array file name")
        shape = tuple(int(n) for n in _list(voxels_record["shape"]))
        voxels = _read_array(folder / name, voxels_record["dtype"], shape, bool(voxels_record["fortran"]))
        fields = meta["fields"]
        if type(fields) is not dict or set(fields) != set(_PLAIN_FIELDS):
            raise _BadEntry("volume fields differ")
        values = {field: _decode(fields[field]) for field in _PLAIN_FIELDS}
        return Volume(voxels=voxels, geometry=_geometry_from(meta["geometry"]), **values)

    # ----- writing -------------------------------------------------------------------------
    def key(self, path: str | Path, series_uid: str | None = None, like: CacheKey | None = None) -> CacheKey | None:
        """A volume request's key now: take it before a load and hand it to ``put``, so that
        files changed during the load are not cached under their new stats (``like``: see
        ``make_key``)."""
        return make_key(path, series_uid, "volume", like)

    def put(
        self, path: str | Path, series_uid: str | None, volume: Volume, key: CacheKey | None = None
    ) -> bool:
        """Store ``volume`` as what ``load_volume(path, series_uid)`` returns. ``key`` (from
        ``key`` before the load): stored only if the files have not changed since."""
        return self._put_volume(make_key(path, series_uid, "volume"), volume, key)

    def put_preview(
        self, frame_path: str | Path, series_uid: str, volume: Volume, key: CacheKey | None = None
    ) -> bool:
        """Store a series' browser preview read from ``frame_path`` (``key``: ``preview_key``
        taken before it was read)."""
        return self._put_volume(make_key(frame_path, series_uid, "preview"), volume, key)

    def preview_key(self, frame_path: str | Path, series_uid: str) -> CacheKey | None:
        return make_key(frame_path, series_uid, "preview")

    def _put_volume(self, current: CacheKey | None, volume: Volume, key: CacheKey | None) -> bool:
        if current is None or not self.enabled or (key is not None and key != current):
            return False
        if self._inside_opened_folder(current):
            return False
        voxels = volume.voxels
        if not isinstance(voxels, np.ndarray) or voxels.dtype.kind not in _ARRAY_KINDS:
            return False
        if voxels.nbytes > self.max_bytes:
            return False
        try:
            fields = {name: _encode(getattr(volume, name)) for name in _PLAIN_FIELDS}
        except _NotCacheable:
            return False
        fortran = bool(voxels.flags.f_contiguous and not voxels.flags.c_contiguous)
        meta = {
            "format": FORMAT_VERSION,
            "key": current.to_json(),
            "files_sha256": files_digest(current),
            "geometry": _geometry_json(volume.geometry),
            "fields": fields,
            "voxels": {
                "file": f"voxels-{secrets.token_hex(8)}.npy",
                "dtype": voxels.dtype.str,
                "shape": list(voxels.shape),
                "fortran": fortran,
            },
        }
        return self._write(current, meta, voxels)

    def put_scan(self, path: str | Path, result: ScanResult, key: CacheKey | None = None) -> bool:
        """Store what ``scan_beside(path)`` returned (``key``: as for ``put``)."""
        current = make_key(path, None, "scan")
        if current is None or not self.enabled or (key is not None and key != current):
            return False
        if self._inside_opened_folder(current):
            return False
        try:
            meta = {"format": FORMAT_VERSION, "key": current.to_json(), "scan": _encode(result)}
        except _NotCacheable:
            return False
        return self._write(current, meta, None)

    def scan_key(self, path: str | Path) -> CacheKey | None:
        """A scan request's key now (see ``key``)."""
        return make_key(path, None, "scan")

    def _write(self, key: CacheKey, meta: dict, voxels: np.ndarray | None) -> bool:
        text = _record_text(meta)
        size = len(text) + _DIGEST_BYTES + (voxels.nbytes + _ARRAY_OVERHEAD if voxels is not None else 0)
        if size > self.max_bytes:
            return False  # could never fit: the folder stays under its limit
        with self._lock:
            try:
                self._make_folder()
                self._evict(size, keep=key.entry_name)
                with atomic_folder(self.folder / key.entry_name, replace=True) as partial:
                    # Private whatever the cache folder is (a folder the user named may be
                    # readable by all): the entry and its files are the user's only.
                    os.chmod(partial, 0o700)
                    if voxels is not None:
                        with _private_file(partial / meta["voxels"]["file"]) as handle:
                            writer = _HashingWriter(handle)
                            np.lib.format.write_array(writer, voxels, allow_pickle=False)
                        meta["voxels_sha256"] = writer.digest.hexdigest()
                    with _private_file(partial / _META) as handle:
                        handle.write(_sealed(meta).encode("utf-8"))
            except OSError as error:
                if not self._lost_a_race(error):
                    self._turn_off(error)
                return False
        return True

    def _lost_a_race(self, error: OSError) -> bool:
        """Whether a write failed because another process wrote or removed the same entry at
        the same moment (its rename first): no reason to turn the cache off."""
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            return False
        return self.folder.is_dir() and os.access(self.folder, os.W_OK)

    def _inside_opened_folder(self, key: CacheKey) -> bool:
        """Whether a request reads files in the cache folder (a relative SYNTHVIEW_CACHE_DIR and
        the viewer started in the study's folder): nothing is written among the inputs, and the
        entries, files of the folder opened, would change its key with every write."""
        cache = os.path.join(os.path.realpath(self.folder), "")
        if os.path.isdir(key.resolved) and cache.startswith(os.path.join(key.resolved, "")):
            return True  # a folder read recursively: the entries would be listed next time
        folders = {os.path.dirname(name) for name, *_ in key.files}  # a few: realpath each once
        return any(os.path.join(os.path.realpath(folder), "").startswith(cache) for folder in folders)

    def _make_folder(self) -> None:
        if not self.folder.is_dir():
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            self.folder.mkdir(mode=0o700, exist_ok=True)  # patient images: private to the user

    def _turn_off(self, error: OSError) -> None:
        if self.enabled:
            self.enabled = False
            reason = error.strerror or type(error).__name__
            print(f"SynthView: decoded-series cache off for this session: cannot write {self.folder} ({reason})",
                  file=sys.stderr)  # fmt: skip

    # ----- size --------------------------------------------------------------------------
    def entries(self) -> list[tuple[Path, int, float]]:
        """(folder, bytes, last used) of every entry, and nothing else in the cache folder."""
        found = []
        try:
            children = list(self.folder.iterdir())
        except OSError:
            return found
        for child in children:
            # Only folders named as this code names entries: whatever else a user keeps in a
            # folder given as SYNTHVIEW_CACHE_DIR is never counted, evicted or cleared.
            if not _ENTRY_NAME.match(child.name) or not child.is_dir() or child.is_symlink():
                continue
            try:
                files = [item.stat() for item in child.iterdir()]
                used = (child / _META).stat().st_mtime
            except OSError:
                files, used = [], 0.0
            found.append((child, sum(status.st_size for status in files), used))
        return found

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def _evict(self, incoming: int, keep: str) -> None:
        """Remove least recently used entries until ``incoming`` more bytes fit; leftovers of
        killed writes go too."""
        self._sweep_leftovers()
        entries = sorted(self.entries(), key=lambda entry: entry[2])
        total = sum(size for folder, size, _ in entries if folder.name != keep)
        for folder, size, _ in entries:
            if total + incoming <= self.max_bytes:
                break
            if folder.name != keep:
                self._discard(folder)
                total -= size

    def clear(self) -> list[tuple[Path, int]]:
        """Remove every entry, and what writes killed mid-way left; returns (path, bytes) of each."""
        removed = []
        with self._lock:
            for folder, size, _ in self.entries():
                self._discard(folder)
                removed.append((folder, size))
            removed += self._sweep_leftovers()  # part of a patient's pixels too
        return removed

    def _sweep_leftovers(self) -> list[tuple[Path, int]]:
        """Remove what writes killed mid-way left (named as this code names its writes, their
        process gone); returns (path, bytes) of each removed."""
        try:
            children = [child for child in self.folder.iterdir() if _LEFTOVER_NAME.match(child.name)]
        except OSError:
            return []
        sizes = {child: _tree_bytes(child) for child in children}
        removed = []
        for entry_name in sorted({child.name[1:41] for child in children}):
            removed += remove_stale_partials(self.folder / entry_name)
        return [(path, sizes.get(path, 0)) for path in removed]

    def _discard(self, folder: Path) -> None:
        """Remove an entry: renamed aside first, so that no reader sees it half deleted."""
        aside = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        try:
            if aside.exists() or aside.is_symlink():
                _remove_tree(aside)
            os.rename(folder, aside)
        except OSError:
            return
        _remove_tree(aside)


def _private_file(path: Path):
    """A new file open for writing, readable and writable by its owner only (0600)."""
    return os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600), "wb"
    )


def _tree_bytes(path: Path) -> int:
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
        return sum(item.lstat().st_size for item in path.iterdir())
    except OSError:
        return 0


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
