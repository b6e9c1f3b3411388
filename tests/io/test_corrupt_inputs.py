"""Bad input gives a LoadError naming the file and the reason; a scan skips and reports it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from app.io.dicom_scan import scan
from app.io.errors import LoadError
from app.io.loader import load_volume, scan_path
from tests.io.series_factory import write_series

pydicom_data = pytest.importorskip("pydicom.data")
P = Path(pydicom_data.get_testdata_file("CT_small.dcm")).parent


@pytest.fixture
def good_file(tmp_path) -> Path:
    write_series(tmp_path / "good", [0.0])
    return next((tmp_path / "good").iterdir())


def test_missing_path(tmp_path):
    with pytest.raises(LoadError, match="does not exist"):
        load_volume(tmp_path / "nothing-here")
    with pytest.raises(LoadError, match="does not exist"):
        scan_path(tmp_path / "nothing-here")


def test_garbage_bytes_are_skipped_and_reported(tmp_path):
    (tmp_path / "noise.dcm").write_bytes(bytes(range(256)) * 40)
    result = scan(tmp_path)
    assert result.studies == []
    assert [s.reason for s in result.skipped] == ["not a DICOM file"]
    with pytest.raises(LoadError, match=r"no DICOM image series found .*not a DICOM file"):
        load_volume(tmp_path)


def test_truncated_pixel_data(tmp_path, good_file):
    data = good_file.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 20])
    with pytest.raises(LoadError, match=r"cut\.dcm .*file is truncated"):
        load_volume(tmp_path / "cut.dcm")


def test_pydicom_truncated_file(tmp_path):
    shutil.copy(P / "MR_truncated.dcm", tmp_path)
    with pytest.raises(LoadError, match=r"MR_truncated\.dcm .*file is truncated"):
        load_volume(tmp_path / "MR_truncated.dcm")


def test_truncated_header_is_skipped(tmp_path, good_file):
    (tmp_path / "head.dcm").write_bytes(good_file.read_bytes()[:300])
    result = scan(tmp_path / "head.dcm")
    assert len(result.skipped) == 1 and result.studies == []
    with pytest.raises(LoadError, match="no DICOM image series found"):
        load_volume(tmp_path / "head.dcm")


def test_missing_pixel_data(tmp_path, good_file):
    dataset = pydicom.dcmread(good_file)
    del dataset.PixelData
    dataset.save_as(tmp_path / "nopixels.dcm")
    with pytest.raises(LoadError, match=r"nopixels\.dcm: no pixel data"):
        load_volume(tmp_path / "nopixels.dcm")


def test_missing_pixel_data_in_a_compressed_file(tmp_path):
    dataset = pydicom.dcmread(P / "MR_small_RLE.dcm")
    del dataset.PixelData
    dataset.save_as(tmp_path / "rle_nopixels.dcm")
    with pytest.raises(LoadError, match="no pixel data"):
        load_volume(tmp_path / "rle_nopixels.dcm")


def test_non_image_dicom_is_skipped_with_reason(tmp_path):
    shutil.copy(P / "rtplan.dcm", tmp_path)
    result = scan(tmp_path)
    assert "no image in this file" in result.skipped[0].reason


def test_colour_image_with_cut_pixel_data_is_refused_clearly(tmp_path):
    # Colour images load (tests/io/test_colour_images.py); a broken one names the file.
    dataset = pydicom.dcmread(P / "SC_rgb_rle.dcm")
    dataset.PixelData = dataset.PixelData[: len(dataset.PixelData) // 3]
    dataset.save_as(tmp_path / "cut_rgb.dcm")
    with pytest.raises(LoadError, match="cut_rgb.dcm"):
        load_volume(tmp_path / "cut_rgb.dcm")


def test_undecodable_pixels_name_the_file(tmp_path):
    # (12-bit lossy JPEG-lossy.dcm, once the example here, decodes now: tests/io/test_loading_gaps.py)
    from pydicom.encaps import encapsulate

    dataset = pydicom.dcmread(P / "MR_small_jp2klossless.dcm")
    dataset.PixelData = encapsulate([bytes(range(256)) * 4])  # no JPEG 2000 codestream at all
    dataset.save_as(tmp_path / "garbled.dcm")
    with pytest.raises(LoadError, match=r"garbled\.dcm: cannot decode pixel data"):
        load_volume(tmp_path / "garbled.dcm")


def test_mixed_folder_lists_every_series_and_reports_junk(tmp_path):
    write_series(tmp_path / "a", [0.0, 1.0, 2.0])
    write_series(tmp_path / "b", [0.0, 1.0])
    shutil.copy(P / "CT_small.dcm", tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    result = scan(tmp_path)
    assert sorted(len(s.frames) for s in result.all_series()) == [1, 2, 3]
    assert [Path(s.path).name for s in result.skipped] == ["notes.txt"]
    # Without a series UID the largest series is loaded.
    assert load_volume(tmp_path).voxels.shape[0] == 3


def test_broken_nifti(tmp_path):
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(LoadError, match="broken.nii.gz: not a readable NIfTI"):
        load_volume(tmp_path / "broken.nii.gz")


def test_every_bundled_test_file_scans_and_loads_or_fails_cleanly():
    """pydicom's whole test set (odd syntaxes, RT, SR, colour, broken files): never a crash."""
    from app.io.dicom_load import load_series

    result = scan(P)
    assert len(result.all_series()) > 20 and len(result.skipped) > 5
    loaded = 0
    for series in result.all_series():
        try:
            volume = load_series(series)
        except LoadError as error:
            assert str(error)
            continue
        assert volume.shape_kji == tuple(reversed(series.size_ijk))  # colour: plus 3 samples
        loaded += 1
    assert loaded > 15
