"""Scanner rules on tiny generated series: sorting, splitting, warnings, skipped files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.io.dicom_scan import scan
from app.io.errors import LoadError
from app.io.loader import load_volume
from tests.io.series_factory import write_series


def test_slices_are_sorted_along_the_normal_and_rescaled(tmp_path):
    planes = write_series(tmp_path, [0.0, 2.5, 5.0, 7.5])
    result = scan(tmp_path)
    (series,) = result.all_series()
    assert series.size_ijk == (5, 6, 4)
    assert series.spacing_mm == pytest.approx((0.7, 0.5, 2.5))
    assert series.warnings == []
    volume = load_volume(tmp_path)
    assert volume.voxels.dtype == np.int16
    # Stored values minus 1024 (intercept), slice order by position not file order.
    assert np.array_equal(volume.voxels, np.stack(planes).astype(np.int16) - 1024)
    assert np.allclose(volume.geometry.origin_lps_mm, [-10, 20, 0])


def test_non_integer_rescale_gives_float32(tmp_path):
    planes = write_series(tmp_path, [0.0, 1.0], slope=0.5, intercept=-10.0)
    volume = load_volume(tmp_path)
    assert volume.voxels.dtype == np.float32
    assert np.allclose(volume.voxels, np.stack(planes) * 0.5 - 10)


def test_sagittal_series_geometry(tmp_path):
    # Rows run anterior->posterior, columns superior->inferior: row x column points right.
    write_series(tmp_path, [0.0, 3.0, 6.0], orientation=(0, 1, 0, 0, 0, -1))
    volume = load_volume(tmp_path)
    assert volume.geometry.orientation_code() == "PIR"
    assert volume.geometry.spacing_mm[2] == pytest.approx(3.0)


def test_missing_slice_and_uneven_spacing_are_reported(tmp_path):
    write_series(tmp_path / "gap", [0.0, 1.0, 2.0, 4.0, 5.0])
    write_series(tmp_path / "uneven", [0.0, 1.0, 2.3, 3.3, 4.3])
    (gap,) = scan(tmp_path / "gap").all_series()
    (uneven,) = scan(tmp_path / "uneven").all_series()
    assert any("1 missing slice" in w for w in gap.warnings)
    assert any("uneven slice spacing" in w for w in uneven.warnings)


def test_gantry_tilt_is_reported(tmp_path):
    write_series(tmp_path, [0.0, 1.0, 2.0, 3.0], x_shift_per_slice_mm=0.2)
    (series,) = scan(tmp_path).all_series()
    assert any("gantry tilt" in w for w in series.warnings)


def test_series_mixing_orientation_and_size_is_split(tmp_path):
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, [0.0, 1.0, 2.0], series_uid=uid, prefix="ax")
    write_series(tmp_path, [0.0, 1.0], series_uid=uid, orientation=(0, 1, 0, 0, 0, -1), prefix="sag")
    write_series(tmp_path, [10.0, 11.0], series_uid=uid, shape=(4, 4), prefix="small")
    parts = scan(tmp_path).all_series()
    assert sorted(len(p.frames) for p in parts) == [2, 2, 3]
    assert {p.series_instance_uid for p in parts} == {uid}
    assert len({p.uid for p in parts}) == 3  # each part has its own key
    assert all(any("split into 3" in w for w in p.warnings) for p in parts)
    # Asking for the DICOM UID gives the largest part; a part key gives that part.
    assert load_volume(tmp_path, series_uid=uid).voxels.shape[0] == 3
    other = next(p for p in parts if p.uid != uid)
    assert load_volume(tmp_path, series_uid=other.uid).voxels.shape[0] == 2


def test_repeated_acquisitions_at_the_same_positions_are_split(tmp_path):
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, [0.0, 1.0, 2.0], series_uid=uid, acquisition=1, prefix="a")
    write_series(tmp_path, [0.0, 1.0, 2.0], series_uid=uid, acquisition=2, prefix="b")
    parts = scan(tmp_path).all_series()
    assert [len(p.frames) for p in parts] == [3, 3]
    assert all(p.warnings and "share a position" not in " ".join(p.warnings) for p in parts)


def test_unknown_series_uid_is_a_clear_error(tmp_path):
    write_series(tmp_path, [0.0, 1.0])
    with pytest.raises(LoadError, match="no series 1.2.3 in"):
        load_volume(tmp_path, series_uid="1.2.3")


def test_dicomdir_lists_the_files(tmp_path):
    from pydicom.fileset import FileSet

    source = tmp_path / "src"
    write_series(source, [0.0, 1.0, 2.0])
    fileset = FileSet()
    for path in sorted(source.iterdir()):
        fileset.add(pydicom.dcmread(path))
    out = tmp_path / "media"
    fileset.write(out)
    result = scan(out)
    (series,) = result.all_series()
    assert len(series.frames) == 3
    assert result.skipped == []


def test_fifo_and_hidden_files_do_not_block_or_count(tmp_path):
    import os

    write_series(tmp_path, [0.0, 1.0])
    os.mkfifo(tmp_path / "pipe.dcm")
    (tmp_path / ".DS_Store").write_bytes(b"\x00" * 10)
    result = scan(tmp_path)
    assert [len(s.frames) for s in result.all_series()] == [2]
    assert result.skipped == []


def test_series_mixing_explicit_and_implicit_little_endian(tmp_path):
    planes = write_series(tmp_path, [0.0, 1.0, 2.0])
    first = sorted(tmp_path.iterdir())[0]
    dataset = pydicom.dcmread(first)
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    dataset.save_as(first, implicit_vr=True, little_endian=True)
    volume = load_volume(tmp_path)
    assert np.array_equal(volume.voxels, np.stack(planes).astype(np.int16) - 1024)


def test_one_file_stands_for_its_series_in_its_folder(tmp_path):
    from app.io.loader import scan_beside

    folder = tmp_path / "cd"
    write_series(folder, [0.0, 2.0, 4.0, 6.0], series_uid="1.2.3.1", prefix="a")
    write_series(folder, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], series_uid="1.2.3.2", prefix="b")
    write_series(folder / "below", [0.0, 2.0], series_uid="1.2.3.3", prefix="c")  # another folder
    one_slice = folder / "a002.dcm"

    found = scan_beside(one_slice)
    assert sorted(s.uid for s in found.all_series()) == ["1.2.3.1", "1.2.3.2"]  # that folder only
    whole = load_volume(one_slice, "1.2.3.1")
    assert whole.voxels.shape == (4, 6, 5) and whole.geometry.spacing_mm[2] == pytest.approx(2.0)
    assert load_volume(one_slice, "1.2.3.2").voxels.shape[0] == 6  # a series beside it
    assert load_volume(one_slice).voxels.shape == (1, 6, 5)  # no series named: the file alone
    assert (
        scan_beside(folder).all_series() and len(scan_beside(folder).all_series()) == 3
    )  # a folder: recursive
