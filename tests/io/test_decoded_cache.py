"""The decoded-series cache: a hit is the volume a fresh load gives, field for field; anything
changed, damaged or foreign is a miss (and goes); writes are atomic and bounded."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.label_map import LabelCode, LabelEntry, LabelMapProvenance
from app.core.orientation_phantom import orientation_phantom
from app.core.provenance import Provenance
from app.core.quantity_map import MapKind, QuantityMap
from app.core.tilt import TiltCorrectionRecord
from app.core.volume import Geometry, Volume
from app.io import atomic, decoded_cache
from app.io.decoded_cache import DecodedCache, default_cache_dir
from app.io.loader import load_volume, scan_beside
from app.io.nifti import save_nifti
from tests.io.series_factory import write_series, write_tilted_ball_series

ROOT = Path(__file__).resolve().parents[2]


def same(a, b) -> bool:
    """Equal values of equal types, through containers and dataclasses (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return (
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def same_volume(cached: Volume, fresh: Volume) -> bool:
    """Every field of Volume (a field added later is compared too)."""
    for field in dataclasses.fields(Volume):
        a, b = getattr(cached, field.name), getattr(fresh, field.name)
        if field.name == "voxels":
            a, b = np.asarray(a), np.asarray(b)  # a NIfTI's voxels may be a memmap
        if not same(a, b):
            return False
    return True


@pytest.fixture
def cache(tmp_path) -> DecodedCache:
    return DecodedCache(tmp_path / "cache", max_bytes=1 << 30)


@pytest.fixture
def phantom() -> Volume:
    return orientation_phantom(size_ijk=(12, 10, 8))


@pytest.fixture
def small_demo(tmp_path, demo_dicom_dir) -> Path:
    """A copy of 12 demo slices (changing files must not touch the shared demo)."""
    folder = tmp_path / "demo12"
    folder.mkdir()
    for source in sorted(demo_dicom_dir.iterdir())[80:92]:
        shutil.copy2(source, folder / source.name)
    return folder


def round_trip(cache: DecodedCache, path, series_uid=None) -> tuple[Volume, Volume]:
    fresh = load_volume(path, series_uid)
    assert cache.put(path, series_uid, fresh)
    cached = cache.get(path, series_uid)
    assert cached is not None
    return cached, fresh


# ----- a hit is a fresh load ------------------------------------------------------------------
def test_demo_dicom_folder_round_trips(cache, demo_dicom_dir):
    cached, fresh = round_trip(cache, demo_dicom_dir)
    assert same_volume(cached, fresh)
    assert cached.voxels.shape == (189, 233, 197) and cached.metadata["PatientID"] == "MNI152"


def test_one_demo_file_with_its_series_round_trips(cache, demo_dicom_dir):
    one = sorted(demo_dicom_dir.iterdir())[5]
    uid = scan_beside(one).all_series()[0].uid
    cached, fresh = round_trip(cache, one, uid)
    assert same_volume(cached, fresh) and cached.voxels.shape[0] == 189


def test_nifti_with_provenance_sidecar_stays_synthetic(cache, tmp_path, phantom):
    provenance = Provenance(
        "toy-gan", "0.3", task="t1-to-t2", seed=4, parameters={"steps": 3, "nan": float("nan")}
    )
    path = save_nifti(
        phantom.with_voxels(phantom.voxels.astype(np.float32), provenance=provenance), tmp_path / "s.nii.gz"
    )
    cached, fresh = round_trip(cache, path)
    assert same_volume(cached, fresh)
    assert cached.is_synthetic and same(cached.provenance, fresh.provenance)
    assert cached.metadata["sidecar"]["provenance"]["plugin_name"] == "toy-gan"


def test_synthesized_dicom_series_stays_synthetic(cache, tmp_path):
    from app.io.dicom_export import write_derived_series

    voxels = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5)
    geometry = Geometry(np.array([-10.0, 20.0, 30.0]), np.array([0.8, 0.9, 2.0]), np.eye(3))
    provenance = Provenance("mr-denoise", "1.2", task="denoising", weights_sha256="ab" * 32, seed=7)
    write_derived_series(Volume(voxels, geometry, modality="MR", provenance=provenance), tmp_path / "synth")
    cached, fresh = round_trip(cache, tmp_path / "synth")
    assert same_volume(cached, fresh)
    assert cached.is_synthetic and cached.provenance.plugin_name == "mr-denoise"


def test_compressed_transfer_syntax_round_trips(cache):
    pydicom_data = pytest.importorskip("pydicom.data")
    path = Path(pydicom_data.get_testdata_file("MR_small_jp2klossless.dcm"))
    cached, fresh = round_trip(cache, path)
    assert same_volume(cached, fresh)


def test_multi_series_folder_by_series_uid(cache, tmp_path):
    folder = tmp_path / "two"
    write_series(folder, [0.0, 2.0, 4.0, 6.0], series_uid="1.2.3.1", prefix="a")
    write_series(folder, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], series_uid="1.2.3.2", prefix="b")
    first, fresh_first = round_trip(cache, folder, "1.2.3.1")
    second, fresh_second = round_trip(cache, folder, "1.2.3.2")
    assert same_volume(first, fresh_first) and same_volume(second, fresh_second)
    assert first.voxels.shape[0] == 4 and second.voxels.shape[0] == 6
    assert cache.get(folder) is None  # no series named: another request (the largest series)


def test_gantry_tilt_record_round_trips(cache, tmp_path):
    write_tilted_ball_series(tmp_path / "tilt", (0.0, 0.0, 20.0), 8.0, slices=12, shape=(20, 18))
    cached, fresh = round_trip(cache, tmp_path / "tilt")
    assert fresh.tilt_correction is not None and fresh.load_warnings
    assert same_volume(cached, fresh)


def test_every_volume_field_round_trips(cache, tmp_path, phantom):
    """Each field of Volume set away from its default (a new field must be handled, or this
    test fails); the path is only the key."""
    key_file = save_nifti(phantom, tmp_path / "key.nii.gz")
    labels = (
        LabelEntry(0, "background", (0, 0, 0)),
        LabelEntry(1, "lesion", (255, 0, 0), LabelCode("SCT", "1", "x")),
    )
    volume = Volume(
        voxels=np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4),
        geometry=Geometry(np.array([1.5, -2.25, 3.0]), np.array([0.7, 0.8, 2.5]), np.eye(3)[:, [1, 0, 2]]),
        modality="CT",
        units="HU",
        name="every field",
        provenance=Provenance("p", "1", parameters={"tuple": (1, 2), "nested": {"a": [1.0, float("inf")]}}),
        metadata={"WindowCenter": 40.0, "list": [1, "a", None], 3: "int key", "flag": True},
        label_map=LabelMapProvenance("seg", "2", labels, source_synthetic=True),
        quantity_map=QuantityMap(MapKind.ENSEMBLE_SD, {"runs": 5}),
        source_path="/somewhere",
        load_warnings=("one", "two"),
        derived_from_series="/series",
        blinded_study_image=True,
        tilt_correction=TiltCorrectionRecord(12.5, 3.25, (20, 18), (22, 18), -1024.0),
    )
    defaults = Volume(np.zeros((1, 1, 1)), Geometry.identity())
    for field in dataclasses.fields(Volume):
        if field.name not in ("voxels", "geometry"):
            assert getattr(volume, field.name) != getattr(defaults, field.name), field.name
    assert cache.put(key_file, None, volume)
    cached = cache.get(key_file)
    assert cached is not None and same_volume(cached, volume)
    assert cached.quantity_map.kind is MapKind.ENSEMBLE_SD


def test_colour_and_fortran_ordered_voxels(cache, tmp_path, phantom):
    key_file = save_nifti(phantom, tmp_path / "key.nii.gz")
    colour = Volume(np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3), Geometry.identity())
    assert cache.put(key_file, None, colour) and same_volume(cache.get(key_file), colour)
    fortran = Volume(np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)), Geometry.identity())
    assert cache.put(key_file, None, fortran)
    again = cache.get(key_file)
    assert same_volume(again, fortran) and again.voxels.flags.f_contiguous


def test_scan_round_trips(cache, tmp_path, small_demo):
    (small_demo / "notes.txt").write_text("not DICOM")
    fresh = scan_beside(small_demo / "IM0085.dcm")
    assert fresh.skipped and fresh.all_series()
    assert cache.put_scan(small_demo / "IM0085.dcm", fresh)
    cached = cache.get_scan(small_demo / "IM0085.dcm")
    assert cached == fresh and same(cached, fresh)
    assert cache.get_scan(small_demo) is None  # the folder: another request
    before = cache.scan_key(small_demo / "IM0085.dcm")
    (small_demo / "more.txt").write_text("x")
    assert cache.get_scan(small_demo / "IM0085.dcm") is None  # a file added beside it
    assert not cache.put_scan(small_demo / "IM0085.dcm", fresh, key=before)  # added during the scan


def test_a_hit_imports_neither_pydicom_nor_nibabel(tmp_path, demo_dicom_dir, phantom):
    folder = tmp_path / "cache"
    nifti = save_nifti(phantom, tmp_path / "p.nii.gz")
    cache = DecodedCache(folder)
    assert cache.put(demo_dicom_dir, None, load_volume(demo_dicom_dir))
    assert cache.put(nifti, None, load_volume(nifti))
    script = (
        "import sys; from app.io.decoded_cache import DecodedCache\n"
        "cache = DecodedCache(sys.argv[1])\n"
        "a, b = cache.get(sys.argv[2]), cache.get(sys.argv[3])\n"
        "heavy = sorted(m for m in ('pydicom', 'nibabel', 'PIL', 'requests') if m in sys.modules)\n"
        "print('HIT', a is not None and b is not None, int(a.voxels.sum()), ','.join(heavy) or '-')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(demo_dicom_dir), str(nifti)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = int(load_volume(demo_dicom_dir).voxels.sum())
    assert done.stdout.split() == ["HIT", "True", str(expected), "-"], done.stdout + done.stderr


# ----- misses -----------------------------------------------------------------------------------
def _cached(cache: DecodedCache, folder: Path) -> Volume:
    volume = load_volume(folder)
    assert cache.put(folder, None, volume) and cache.get(folder) is not None
    return volume


def test_touched_file_is_a_miss_and_the_entry_goes(cache, small_demo):
    _cached(cache, small_demo)
    one = small_demo / "IM0085.dcm"
    status = one.stat()
    os.utime(one, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000))
    assert cache.get(small_demo) is None
    assert cache.entries() == []  # stale: removed, not left to eviction


def test_added_removed_and_resized_files_are_misses(cache, small_demo):
    _cached(cache, small_demo)
    (small_demo / "extra.dcm").write_bytes(b"x")
    assert cache.get(small_demo) is None
    _cached(cache, small_demo)
    (small_demo / "extra.dcm").unlink()
    assert cache.get(small_demo) is None
    _cached(cache, small_demo)
    one = small_demo / "IM0090.dcm"
    status = one.stat()
    with open(one, "ab") as handle:
        handle.write(b"\0\0")
    os.utime(one, ns=(status.st_atime_ns, status.st_mtime_ns))  # same mtime, other size
    assert cache.get(small_demo) is None
    # A hidden file is not read by the scanner: not part of the key either.
    _cached(cache, small_demo)
    (small_demo / ".DS_Store").write_bytes(b"x")
    assert cache.get(small_demo) is not None


def test_nifti_sidecar_appearing_is_a_miss(cache, tmp_path, phantom):
    path = save_nifti(phantom, tmp_path / "p.nii.gz")
    assert cache.put(path, None, load_volume(path)) and cache.get(path) is not None
    (tmp_path / "p.json").write_text(json.dumps({"provenance": {"plugin_name": "g", "plugin_version": "1"}}))
    assert cache.get(path) is None
    assert load_volume(path).is_synthetic  # what the miss then loads


def edit_keeping_size_and_mtime(path: Path) -> None:
    status = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a pixel of the last row
    path.write_bytes(bytes(data))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def test_an_edit_keeping_size_and_mtime_is_a_miss(cache, small_demo):
    _cached(cache, small_demo)
    edit_keeping_size_and_mtime(small_demo / "IM0088.dcm")
    assert cache.get(small_demo) is None  # its change time moved (any write or utime sets it)
    assert cache.entries() == []


def without_change_time(monkeypatch) -> None:
    """A file system that keeps no change time (the stats show 0 whatever happens)."""
    real = decoded_cache._stat
    monkeypatch.setattr(decoded_cache, "_stat", lambda path: (*real(path)[:3], 0))


def test_verify_catches_an_edit_the_stats_cannot_see(cache, small_demo, monkeypatch):
    without_change_time(monkeypatch)
    _cached(cache, small_demo)
    assert cache.verify(small_demo)
    edit_keeping_size_and_mtime(small_demo / "IM0088.dcm")
    hit = cache.get(small_demo)
    assert hit is not None  # the stats cannot see it ...
    assert not cache.verify(small_demo)  # ... the digest does
    assert cache.get(small_demo) is None  # and the entry went


def test_verify_catches_a_replaced_array(cache, small_demo):
    _cached(cache, small_demo)
    (entry,) = [folder for folder, _, _ in cache.entries()]
    (array_file,) = entry.glob("voxels-*.npy")
    data = bytearray(array_file.read_bytes())
    data[-1] ^= 0x01
    array_file.write_bytes(bytes(data))
    assert cache.get(small_demo) is not None
    assert not cache.verify(small_demo)


def _entry_files(cache: DecodedCache) -> tuple[Path, Path, dict]:
    (entry,) = [folder for folder, _, _ in cache.entries()]
    (array_file,) = entry.glob("voxels-*.npy")
    return entry / "entry.json", array_file, json.loads((entry / "entry.json").read_text())


def reseal(meta_path: Path, meta: dict) -> None:
    """Write an edited record with a digest that matches it (as a hostile writer could), so
    that what is tested is how its content is read, not the digest."""
    meta.pop("record_sha256", None)
    meta_path.write_text(decoded_cache._sealed(meta))


def _damaged_is_a_miss(cache: DecodedCache, folder: Path, damage) -> None:
    _cached(cache, folder)
    damage(*_entry_files(cache))
    assert cache.get(folder) is None
    assert cache.entries() == []


def test_an_edited_record_is_a_miss(cache, tmp_path, phantom):
    # The record holds what is not in the array: geometry, provenance (the SYNTHETIC marking),
    # the scan. An edit or a flipped bit there that still parses (origin 20.0 -> 28.0, the
    # provenance gone) was served as such, and the check of the files and array passed it.
    provenance = Provenance("toy-gan", "0.3")
    path = save_nifti(
        phantom.with_voxels(phantom.voxels.astype(np.float32), provenance=provenance), tmp_path / "s.nii.gz"
    )
    edits = {
        "provenance gone": lambda meta: meta["fields"].__setitem__("provenance", None),
        "origin moved": lambda meta: meta["geometry"]["origin_lps_mm"].__setitem__(1, 28.0),
        "direction flipped": lambda meta: meta["geometry"]["direction"][0].__setitem__(0, -1.0),
    }
    for name, edit in edits.items():
        assert cache.put(path, None, load_volume(path))
        (entry,) = [folder for folder, _, _ in cache.entries()]
        meta = json.loads((entry / "entry.json").read_text())
        edit(meta)
        (entry / "entry.json").write_text(json.dumps(meta, separators=(",", ":")))
        assert cache.get(path) is None, name
        assert cache.entries() == [], name
    folder = tmp_path / "series"
    write_series(folder, [0.0, 1.0, 2.0])
    assert cache.put_scan(folder, scan_beside(folder))
    (entry,) = [item for item, _, _ in cache.entries()]
    text = (entry / "entry.json").read_text()
    assert "MONOCHROME2" in text
    (entry / "entry.json").write_text(text.replace("MONOCHROME2", "MONOCHROME1"))  # shown inverted
    assert cache.get_scan(folder) is None


def test_truncated_array_is_a_miss(cache, small_demo):
    def truncate(meta_path, array_file, meta):
        array_file.write_bytes(array_file.read_bytes()[:-100])

    _damaged_is_a_miss(cache, small_demo, truncate)


def test_garbage_json_is_a_miss(cache, small_demo):
    for garbage in (b"{not json", b"[]", b'{"format": 1}', b"\xff\xfe", b"[" * 100000 + b"]" * 100000):
        _damaged_is_a_miss(
            cache, small_demo, lambda meta_path, array_file, meta, g=garbage: meta_path.write_bytes(g)
        )


def test_hostile_tags_in_json_are_a_miss(cache, small_demo):
    def hostile(meta_path, array_file, meta):
        meta["fields"]["metadata"] = {"c": "Popen", "v": {"args": "rm -rf /"}}
        reseal(meta_path, meta)

    _damaged_is_a_miss(cache, small_demo, hostile)


def test_object_array_or_pickle_in_the_array_file_is_a_miss(cache, small_demo):
    def object_array(meta_path, array_file, meta):
        np.save(array_file, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)

    def pickle_bytes(meta_path, array_file, meta):
        import pickle

        array_file.write_bytes(pickle.dumps({"evil": True}))

    def object_dtype_in_json(meta_path, array_file, meta):
        np.save(array_file, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        meta["voxels"].update(dtype="|O", shape=[2])
        reseal(meta_path, meta)

    for damage in (object_array, pickle_bytes, object_dtype_in_json):
        _damaged_is_a_miss(cache, small_demo, damage)


def test_wrong_dtype_or_shape_against_the_json_is_a_miss(cache, small_demo):
    def other_dtype(meta_path, array_file, meta):
        meta["voxels"]["dtype"] = "<f4"
        reseal(meta_path, meta)

    def other_shape(meta_path, array_file, meta):
        meta["voxels"]["shape"] = meta["voxels"]["shape"][::-1]
        reseal(meta_path, meta)

    def array_swapped(meta_path, array_file, meta):
        np.save(array_file, np.zeros(meta["voxels"]["shape"], dtype=np.float64))

    def huge_claim(meta_path, array_file, meta):
        np.lib.format.write_array_header_1_0(
            open(array_file, "wb"), {"descr": "<i2", "fortran_order": False, "shape": (10**6, 10**6, 10**6)}
        )
        meta["voxels"]["shape"] = [10**6, 10**6, 10**6]
        reseal(meta_path, meta)

    def escaping_array_name(meta_path, array_file, meta):
        meta["voxels"]["file"] = "../../outside.npy"
        reseal(meta_path, meta)

    for damage in (other_dtype, other_shape, array_swapped, huge_claim, escaping_array_name):
        _damaged_is_a_miss(cache, small_demo, damage)


def test_an_entry_of_another_key_renamed_into_place_is_a_miss(cache, tmp_path, small_demo):
    other = tmp_path / "other"
    shutil.copytree(small_demo, other)
    (other / "IM0085.dcm").unlink()
    assert cache.put(other, None, load_volume(other))
    (entry,) = [folder for folder, _, _ in cache.entries()]
    target = cache.folder / cache.key(small_demo).entry_name
    os.rename(entry, target)
    assert cache.get(small_demo) is None
    assert not target.exists()


def test_an_entry_folder_with_no_record_is_a_miss(cache, small_demo):
    _damaged_is_a_miss(cache, small_demo, lambda meta_path, array_file, meta: meta_path.unlink())


def test_eviction_keeps_the_folder_under_its_limit(tmp_path):
    key_files = []
    for n in range(5):
        key_files.append(tmp_path / f"k{n}.nii.gz")
        key_files[-1].write_bytes(b"key")  # only stats are read: any file is a key
    cache = DecodedCache(tmp_path / "cache", max_bytes=2_600_000)
    volume = Volume(np.zeros((10, 100, 1000), dtype=np.uint8), Geometry.identity())  # 1 MB
    assert cache.put(key_files[0], None, volume) and cache.put(key_files[1], None, volume)
    os.utime(cache.folder / cache.key(key_files[1]).entry_name / "entry.json", (1, 1))  # long unused
    assert cache.get(key_files[0]) is not None  # used now
    assert cache.put(key_files[2], None, volume)
    assert cache.total_bytes() <= cache.max_bytes
    assert cache.get(key_files[1]) is None  # the least recently used went
    assert cache.get(key_files[0]) is not None and cache.get(key_files[2]) is not None
    too_big = Volume(np.zeros((30, 100, 1000), dtype=np.uint8), Geometry.identity())
    assert not cache.put(key_files[3], None, too_big)  # larger than the whole cache: not stored
    assert cache.total_bytes() <= cache.max_bytes


def test_an_entry_whose_array_fits_but_not_with_its_record_is_not_stored(tmp_path):
    # Tiny limit: the array alone fits, the array with its npy header and JSON record does not.
    # It was stored, and the folder held more than its limit.
    key_file = tmp_path / "k.nii.gz"
    key_file.write_bytes(b"key")
    volume = Volume(np.zeros((10, 10, 10), dtype=np.uint8), Geometry.identity())
    cache = DecodedCache(tmp_path / "cache", max_bytes=volume.voxels.nbytes + 10)
    assert not cache.put(key_file, None, volume)
    assert cache.total_bytes() <= cache.max_bytes
    roomy = DecodedCache(tmp_path / "roomy", max_bytes=volume.voxels.nbytes + 64 * 1024)
    assert roomy.put(key_file, None, volume) and roomy.total_bytes() <= roomy.max_bytes


def test_a_write_killed_before_its_rename_leaves_no_entry(cache, small_demo, monkeypatch):
    volume = load_volume(small_demo)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill between writing the entry and renaming it

    monkeypatch.setattr(atomic, "_move_into_place", killed)
    monkeypatch.setattr(atomic, "_remove", lambda path: None)  # SIGKILL: nothing cleans up
    with pytest.raises(KeyboardInterrupt):
        cache.put(small_demo, None, volume)
    monkeypatch.undo()
    leftovers = [child.name for child in cache.folder.iterdir()]
    assert len(leftovers) == 1 and ".partial-" in leftovers[0]
    assert cache.get(small_demo) is None and cache.entries() == []
    # A later write: the leftover of this (dead or own) writer goes.
    assert cache.put(small_demo, None, volume)
    assert [child.name for child in cache.folder.iterdir()] == [cache.key(small_demo).entry_name]


def test_files_changed_during_the_load_are_not_cached(cache, small_demo):
    before = cache.key(small_demo)
    volume = load_volume(small_demo)
    (small_demo / "IM0085.dcm").unlink()
    assert not cache.put(small_demo, None, volume, key=before)
    assert cache.entries() == []


def test_unwritable_cache_folder_loads_go_on(tmp_path, small_demo, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    cache = DecodedCache(blocker / "cache")
    volume = load_volume(small_demo)
    assert not cache.put(small_demo, None, volume)
    assert not cache.put(small_demo, None, volume)
    assert cache.get(small_demo) is None and not cache.enabled
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cache off" in lines[0]


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_cache_folder_loads_go_on(tmp_path, small_demo):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o500)
    cache = DecodedCache(folder)
    assert not cache.put(small_demo, None, load_volume(small_demo))
    assert cache.get(small_demo) is None


def test_cache_folder_is_private_and_names_are_hashes(cache, small_demo):
    _cached(cache, small_demo)
    assert (cache.folder.stat().st_mode & 0o777) == 0o700
    names = [path.name for path in cache.folder.rglob("*")]
    assert all("MNI" not in name and "demo" not in name and "IM00" not in name for name in names)


def test_entries_are_private_in_a_folder_that_is_not(tmp_path, small_demo):
    # SYNTHVIEW_CACHE_DIR naming a folder that exists, readable by all (or a link to one):
    # the entries (patient images) were 0755 folders of 0644 files in it.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(shared)
    for folder in (shared, link):
        cache = DecodedCache(folder)
        _cached(cache, small_demo)
        assert cache.put_scan(small_demo, scan_beside(small_demo))
        for entry, _, _ in cache.entries():
            assert (entry.stat().st_mode & 0o777) == 0o700
            assert all((item.stat().st_mode & 0o077) == 0 for item in entry.iterdir())
        cache.clear()


def test_clear_removes_everything(cache, small_demo, tmp_path, phantom):
    _cached(cache, small_demo)
    path = save_nifti(phantom, tmp_path / "p.nii.gz")
    assert cache.put(path, None, load_volume(path))
    removed = cache.clear()
    assert len(removed) == 2 and all(size > 0 for _, size in removed)
    assert cache.entries() == [] and cache.get(small_demo) is None


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", "off")
    assert default_cache_dir() is None and DecodedCache.from_environment() is None
    monkeypatch.setenv("SYNTHVIEW_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SYNTHVIEW_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == tmp_path / "xdg" / "SynthView" / "decoded"


def test_the_tests_never_use_the_user_cache():
    assert os.environ["SYNTHVIEW_CACHE_DIR"] == "off"


def test_a_changed_loader_is_a_miss(cache, small_demo, monkeypatch):
    _cached(cache, small_demo)
    monkeypatch.setattr(decoded_cache, "_version", "1:0.1.0:another-loader")
    assert cache.get(small_demo) is None


KILLED_WRITER = r"""
import sys
import numpy as np
from app.core.volume import Geometry, Volume
from app.io.decoded_cache import DecodedCache

cache = DecodedCache(sys.argv[1])
volume = Volume(np.ones((400, 512, 512), dtype=np.int16), Geometry.identity())  # 210 MB
print("WRITING", flush=True)
cache.put(sys.argv[2], None, volume)
print("DONE", flush=True)
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_writer_killed_mid_write_leaves_nothing_accepted(tmp_path, phantom):
    import signal
    import time

    key_file = save_nifti(phantom, tmp_path / "key.nii.gz")
    folder = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(folder), str(key_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "WRITING"
        deadline = time.monotonic() + 30
        while not any(".partial-" in p.name for p in folder.glob(".*")) and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    cache = DecodedCache(folder)
    assert cache.get(key_file) is None and cache.entries() == []
    assert any(".partial-" in p.name for p in folder.iterdir())  # killed mid-write, as meant
    assert cache.put(
        key_file, None, load_volume(key_file)
    )  # the next write sweeps the dead writer's leftover
    assert [p.name for p in folder.iterdir()] == [cache.key(key_file).entry_name]


def test_another_decoder_version_is_another_cache_version(monkeypatch):
    before = decoded_cache.cache_version()
    assert any(name.startswith("pydicom-") for name in decoded_cache._reader_distributions())
    monkeypatch.setattr(decoded_cache, "_version", None)
    monkeypatch.setattr(decoded_cache, "_reader_distributions", lambda: ["pylibjpeg_openjpeg-9.9.dist-info"])
    assert decoded_cache.cache_version() != before


def test_what_else_is_in_the_folder_is_never_evicted_or_cleared(tmp_path, small_demo):
    """SYNTHVIEW_CACHE_DIR may name a folder that holds other things (a user's own)."""
    folder = tmp_path / "shared"
    (folder / "my documents").mkdir(parents=True)
    (folder / "my documents" / "thesis.txt").write_bytes(b"x" * 3_000_000)
    (folder / ".config.partial-1").mkdir()  # named like a leftover, but not one of ours
    (folder / "notes.txt").write_text("mine")
    cache = DecodedCache(folder, max_bytes=25_000_000)
    volume = load_volume(small_demo)
    assert cache.put(small_demo, None, volume)
    assert [entry.name for entry, _, _ in cache.entries()] == [cache.key(small_demo).entry_name]
    cache.clear()
    assert sorted(p.name for p in folder.iterdir()) == [".config.partial-1", "my documents", "notes.txt"]
    assert (folder / "my documents" / "thesis.txt").stat().st_size == 3_000_000


def test_series_preview_round_trips_and_follows_its_one_file(cache, tmp_path):
    from app.cli.file_services import series_preview

    folder = tmp_path / "two"
    write_series(folder, [0.0, 2.0, 4.0, 6.0], series_uid="1.2.3.1", prefix="a")
    write_series(folder, [0.0, 1.0, 2.0], series_uid="1.2.3.2", prefix="b")
    series = scan_beside(folder).find_series("1.2.3.1")
    frame = series.frames[len(series.frames) // 2].path
    fresh = series_preview(series)
    assert cache.put_preview(frame, series.uid, fresh)
    cached = cache.get_preview(frame, series.uid)
    assert cached is not None and same_volume(cached, fresh)
    assert cache.get(folder, series.uid) is None  # a preview is not the series' volume
    (folder / "b000.dcm").unlink()  # another file: the preview reads one file only
    assert cache.get_preview(frame, series.uid) is not None
    status = Path(frame).stat()
    os.utime(frame, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000))
    assert cache.get_preview(frame, series.uid) is None


def test_another_process_writing_the_same_entry_leaves_the_cache_on(cache, small_demo, monkeypatch, capsys):
    # Two viewers storing the same study: the other's entry lands between this writer's check
    # and its rename. That used to turn the cache off for the session ("cannot write ...:
    # Directory not empty"); seen with three processes writing one entry 300 times.
    volume = load_volume(small_demo)
    entry = cache.folder / decoded_cache.make_key(small_demo).entry_name
    real_rename = os.rename

    def rename(source, target, *args, **kwargs):
        if Path(target) == entry and not entry.exists():
            entry.mkdir()
            (entry / "entry.json").write_text("{}")  # the other writer's, renamed first
        return real_rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    assert not cache.put(small_demo, None, volume)  # the other writer's entry stands
    monkeypatch.setattr(os, "rename", real_rename)
    assert cache.enabled and capsys.readouterr().err == ""
    assert cache.put(small_demo, None, volume) and cache.get(small_demo) is not None


SERIES_CASES = {
    "rescale to float": dict(z=[0.0, 1.5, 3.0, 4.5], slope=0.37, intercept=-1024.25),
    "oblique": dict(z=[0.0, 2.0, 4.0], orientation=(0.8660254, 0.5, 0.0, -0.5, 0.8660254, 0.0)),
    "a missing slice": dict(z=[0.0, 1.0, 2.0, 4.0, 5.0]),
    "one slice": dict(z=[7.5], slope=2.0, intercept=0.0),
    "sagittal, anisotropic": dict(z=[0.0, 3.0], orientation=(0, 1, 0, 0, 0, -1), spacing=(0.3, 5.0)),
}


@pytest.mark.parametrize("case", list(SERIES_CASES))
def test_series_shapes_and_scalings_round_trip_bit_for_bit(cache, tmp_path, case):
    options = dict(SERIES_CASES[case])
    folder = tmp_path / "series"
    write_series(folder, options.pop("z"), **options)
    uid = load_volume(folder).metadata["SeriesInstanceUID"]
    for path, series_uid in ((folder, None), (sorted(folder.iterdir())[0], uid)):
        cached, fresh = round_trip(cache, path, series_uid)
        assert same_volume(cached, fresh), (case, path)
        assert cached.voxels.tobytes() == fresh.voxels.tobytes()
        assert cached.geometry.lps_from_ijk.tobytes() == fresh.geometry.lps_from_ijk.tobytes()
        assert cached.load_warnings == fresh.load_warnings


def test_clear_also_removes_what_killed_writes_left(cache, small_demo):
    # A writer killed mid-write (kill -9, power cut) leaves '.<entry>.partial-<pid>' with part of
    # a patient's pixels; 'cache --clear', run before handing the machine on, left it there
    # (only the next write swept it).
    _cached(cache, small_demo)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leftover = cache.folder / f".{'ab' * 20}.partial-{int(dead.stdout)}"
    leftover.mkdir()
    (leftover / "voxels-0123456789abcdef.npy").write_bytes(b"\x93NUMPY part of a patient")
    mine = cache.folder / ".not-ours.partial-1"  # not named as this code names its writes
    mine.mkdir()
    removed = cache.clear()
    assert not leftover.exists() and leftover in [folder for folder, _ in removed]
    assert mine.exists() and cache.entries() == []
