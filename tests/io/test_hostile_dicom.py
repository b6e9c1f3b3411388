"""Hostile DICOM (issue 13): every per-file fault is one skipped file with a one-line reason, the
good series beside it is kept, and loading the bad file alone is a ``LoadError``, never another
exception, a hang or a crash."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from app.core.messages import one_line
from app.core.study import SkippedFile
from app.io import memory, pixel_decoders
from app.io.dicom_scan import scan
from app.io.errors import LoadError
from app.io.loader import load_volume
from tests.io.series_factory import write_series

REPO = Path(__file__).resolve().parents[2]


def _edit(path: Path, **values) -> None:
    """Set header values with their dictionary VR (DS/IS values given as text keep nan/inf)."""
    dataset = pydicom.dcmread(path)
    patches = {}
    for keyword, value in values.items():
        tag = pydicom.datadict.tag_for_keyword(keyword)
        vr = pydicom.datadict.dictionary_VR(tag)
        if vr == "IS" and value == "nan":  # pydicom refuses to write it: patched in the bytes
            dataset.add_new(tag, vr, "7777")
            patches[b"7777"] = b"nan "
        elif vr in ("DS", "IS"):
            text = "\\".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
            dataset.add_new(tag, vr, text)
        else:
            setattr(dataset, keyword, value)
    with warnings.catch_warnings(action="ignore"):
        dataset.save_as(path)
    data = path.read_bytes()
    for old, new in patches.items():
        data = data.replace(old, new)
    path.write_bytes(data)


def _series_with_one_bad_slice(tmp_path: Path) -> tuple[Path, Path]:
    """Four slices of one series; the last one ('bad.dcm', same series UID) is to be broken."""
    folder = tmp_path / "series"
    write_series(folder, [0.0, 1.0, 2.0, 3.0])
    bad = folder / "bad.dcm"
    folder.joinpath("s003.dcm").rename(bad)
    return folder, bad


def _assert_skipped_alone(folder: Path, bad: Path, reason_pattern: str) -> None:
    result = scan(folder)
    (series,) = result.all_series()
    assert len(series.frames) == 3 and bad.name not in {Path(p).name for p in series.files}
    (skipped,) = result.skipped
    assert Path(skipped.path) == bad
    assert len(skipped.reason) <= 200 and skipped.reason.isprintable()
    assert re.search(reason_pattern, skipped.reason), skipped.reason
    assert load_volume(folder).voxels.shape[0] == 3
    with pytest.raises(LoadError):
        load_volume(bad)


HEADER_FAULTS = {
    "orientation zero": (
        {"ImageOrientationPatient": [0, 0, 0, 0, 0, 0]},
        "ImageOrientationPatient.*unit vectors",
    ),
    "orientation parallel": ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "not perpendicular"),
    "orientation nan": ({"ImageOrientationPatient": ["nan", 0, 0, 0, 1, 0]}, "finite"),
    "orientation inf": ({"ImageOrientationPatient": [1, 0, 0, 0, "inf", 0]}, "finite"),
    "orientation denormal": ({"ImageOrientationPatient": [1e-320, 0, 0, 0, 1e-320, 0]}, "unit vectors"),
    "rows zero": ({"Rows": 0}, "Rows 0"),
    "columns zero": ({"Columns": 0}, "Columns 0"),
    "slope inf": ({"RescaleSlope": "inf"}, "RescaleSlope inf"),
    "slope nan": ({"RescaleSlope": "nan"}, "RescaleSlope nan"),
    "slope huge": ({"RescaleSlope": "1e308"}, "RescaleSlope"),
    "intercept -inf": ({"RescaleIntercept": "-inf"}, "RescaleIntercept -inf"),
    "position nan": ({"ImagePositionPatient": ["nan", 0, 3]}, "ImagePositionPatient nan"),
    "position inf": ({"ImagePositionPatient": [0, "inf", 3]}, "ImagePositionPatient"),
    "position 1e308": ({"ImagePositionPatient": [1e308, 0, 3]}, "ImagePositionPatient"),
    "spacing 1e308": ({"PixelSpacing": [1e308, 1e308]}, "PixelSpacing"),
    "spacing denormal": ({"PixelSpacing": [1e-320, 1e-320]}, "PixelSpacing"),
    "spacing nan": ({"PixelSpacing": ["nan", 1]}, "PixelSpacing"),
    "bits stored > allocated": ({"BitsStored": 17}, "BitsStored 17"),
    "bits allocated 12": ({"BitsAllocated": 12}, "BitsAllocated 12"),
    "samples zero": ({"SamplesPerPixel": 0}, "SamplesPerPixel 0"),
    "pixel representation 2": ({"PixelRepresentation": 2}, "PixelRepresentation"),
    "frames 999999": ({"NumberOfFrames": 999999}, "999999 frame"),
    "frames zero": ({"NumberOfFrames": 0}, "NumberOfFrames 0"),
    "frames nan": ({"NumberOfFrames": "nan"}, "NumberOfFrames"),
}


@pytest.mark.parametrize("fault", HEADER_FAULTS, ids=list(HEADER_FAULTS))
def test_a_bad_slice_is_skipped_and_its_series_kept(tmp_path, fault):
    values, reason = HEADER_FAULTS[fault]
    folder, bad = _series_with_one_bad_slice(tmp_path)
    _edit(bad, **values)
    _assert_skipped_alone(folder, bad, reason)


def test_unknown_vr_byte_skips_the_file_only(tmp_path):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    data = bytearray(bad.read_bytes())
    at = data.index(b"\x28\x00\x30\x00DS")  # PixelSpacing: VR 'DS' -> 'ZZ'
    data[at + 4 : at + 6] = b"ZZ"
    bad.write_bytes(bytes(data))
    _assert_skipped_alone(folder, bad, r"Unknown Value Representation 'ZZ' in tag \(0028,0030\)")


def test_wrong_value_length_of_a_series_level_value_skips_the_file_only(tmp_path):
    """A value the scanner reads only when it builds the series (SliceThickness as FD, 2 bytes):
    the series is built again without the file that fails on its own."""
    folder, bad = _series_with_one_bad_slice(tmp_path)
    data = bytearray(bad.read_bytes())
    at = data.index(b"\x18\x00\x50\x00DS")  # SliceThickness
    data[at + 4 : at + 6] = b"FD"
    bad.write_bytes(bytes(data))
    result = scan(folder)
    assert [len(s.frames) for s in result.all_series()] in ([3], [4])
    assert all(Path(s.path) == bad for s in result.skipped)


def test_number_of_frames_999999_with_one_frame_does_not_hang(tmp_path):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    _edit(bad, NumberOfFrames=999999)
    start = time.perf_counter()
    result = scan(folder)
    assert time.perf_counter() - start < 2.0
    assert "999999 frame(s) of 5 x 6 x 16 bits" in result.skipped[0].reason


def test_multiframe_with_absurd_frame_count_is_skipped(tmp_path):
    """An enhanced multi-frame file (pydicom-data's emri_small) claiming a million frames."""
    path = tmp_path / "emri.dcm"
    path.write_bytes(Path(get_testdata_file("emri_small.dcm")).read_bytes())
    _edit(path, NumberOfFrames=999999)
    start = time.perf_counter()
    result = scan(tmp_path)
    assert time.perf_counter() - start < 2.0
    assert result.all_series() == [] and "999999 frame(s)" in result.skipped[0].reason


def test_compressed_file_with_more_frames_than_bytes_is_skipped(tmp_path):
    path = tmp_path / "rle.dcm"
    path.write_bytes(Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes())
    _edit(path, NumberOfFrames=2147483647)
    result = scan(tmp_path)
    assert "compressed pixel data" in result.skipped[0].reason


def test_deep_sequence_is_skipped_with_a_reason(tmp_path):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    data = bad.read_bytes()
    (group_length,) = struct.unpack_from("<L", data, 140)
    start = 144 + group_length
    depth = 20000
    nested = (b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff") * depth
    nested += (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") * depth
    bad.write_bytes(data[:start] + nested + data[start:])
    _assert_skipped_alone(folder, bad, "recursion|unreadable|header")


def test_pixel_spacing_1e308_never_gives_an_infinite_affine(tmp_path):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    _edit(bad, PixelSpacing=[1e308, 1e308])
    from main import main

    assert main(["convert", str(bad), str(tmp_path / "out.nii.gz")]) == 1
    assert not (tmp_path / "out.nii.gz").exists()


def test_huge_declared_size_names_the_file_and_the_size(tmp_path, monkeypatch, capsys):
    """A compressed file (its bytes cannot bound the decoded size) declaring 65535 x 65535."""
    path = tmp_path / "huge.dcm"
    path.write_bytes(Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes())
    _edit(path, Rows=65535, Columns=65535)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 2 << 30)
    from main import main

    assert main(["convert", str(path), str(tmp_path / "out.nii.gz")]) == 1
    error = capsys.readouterr().err
    assert "huge.dcm" in error and "65535 x 65535 x 1 voxels" in error and "GiB" in error
    assert "cannot write" not in error


def test_rust_panic_in_the_rle_decoder_is_a_load_error(tmp_path, monkeypatch):
    """pylibjpeg-rle panics (pyo3 PanicException, a BaseException) on runs past a segment's end."""
    source = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    frame = next(pydicom.encaps.generate_frames(source.PixelData, number_of_frames=1))
    broken = frame[:64] + b"\x81\x05" * ((len(frame) - 64) // 2)
    source.PixelData = pydicom.encaps.encapsulate([broken])
    source.save_as(tmp_path / "panic.dcm")
    assert "pylibjpeg" in pixel_decoders.decoder_plugins(source.file_meta.TransferSyntaxUID)
    # pydicom's own RLE decoder reads it (with warnings); the Rust one panics: a LoadError.
    assert load_volume(tmp_path / "panic.dcm").voxels.shape == (1, 64, 64)
    monkeypatch.setattr(pixel_decoders, "decoder_plugins", lambda syntax: ["pylibjpeg"])
    with pytest.raises(LoadError, match=r"panic\.dcm: cannot decode pixel data \(.*PanicException"):
        load_volume(tmp_path / "panic.dcm")


def test_gdcm_is_never_the_first_choice():
    for syntax in ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.70"):
        plugins = pixel_decoders.decoder_plugins(syntax)
        assert plugins and "gdcm" not in plugins, (syntax, plugins)


# Run in a child interpreter: a regression here would abort the process (SIGABRT), not fail a test.
_BUNDLE_DECODING = """
import sys
sys.path.insert(0, {repo!r})
from app.io import pixel_decoders
pixel_decoders.decoder_plugins = lambda syntax: ["gdcm"]  # the bundle: no libjpeg
from app.io.loader import load_volume
from app.io.errors import LoadError
for path in sys.argv[1:]:
    try:
        print("loaded", load_volume(path).voxels.shape)
    except LoadError as error:
        print("LoadError", error)
"""


def test_gdcm_never_takes_the_process_down(tmp_path):
    """GDCM aborts (C++ exception, SIGABRT) on a JPEG-LS file whose Rows disagree with its
    codestream, and on an 8-bit lossless JPEG claiming BitsStored 1: the first is refused by the
    frame-header check, the second dies in the decoding child process."""
    rows = tmp_path / "rows.dcm"
    rows.write_bytes(Path(get_testdata_file("MR_small_jpeg_ls_lossless.dcm")).read_bytes())
    _edit(rows, Rows=256)
    bits = tmp_path / "bits.dcm"
    bits.write_bytes(Path(get_testdata_file("JPGLosslessP14SV1_1s_1f_8b.dcm")).read_bytes())
    _edit(bits, BitsStored=1)
    good = get_testdata_file("JPEG-LL.dcm")
    completed = subprocess.run(
        [sys.executable, "-c", _BUNDLE_DECODING.format(repo=str(REPO)), str(rows), str(bits), good],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.splitlines()
    assert (
        lines[0]
        == "LoadError rows.dcm: cannot decode pixel data (frame 1 is 64 x 64, the header says 64 x 256)"
    )
    assert lines[1] == "LoadError bits.dcm: cannot decode pixel data (the GDCM decoder crashed on this file)"
    assert lines[2] == "loaded (1, 1024, 256)"  # a good file still decodes with GDCM


def test_skip_reasons_are_one_short_printable_line():
    reason = "unreadable (" + "\x00\x1b[31m\n" + bytes(range(256)).decode("latin-1") * 400 + ")"
    skipped = SkippedFile("x.dcm", reason)
    assert len(skipped.reason) <= 200 and skipped.reason.isprintable() and "\n" not in skipped.reason
    assert skipped.reason.startswith("unreadable (")
    assert str(LoadError("a\nb\x00c" * 1000)).isprintable() and len(str(LoadError("x" * 10**5))) <= 400
    assert one_line("  two\n  lines ") == "two lines"


def test_binary_modality_does_not_reach_the_reason(tmp_path):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    dataset = pydicom.dcmread(bad)
    del dataset.Rows
    dataset.add_new(0x00080060, "CS", "\x01\x02" * 60)
    with warnings.catch_warnings(action="ignore"):
        dataset.save_as(bad)
    result = scan(folder)
    assert result.skipped[0].reason == "no image in this file (unknown modality object without Rows/Columns)"


def test_good_series_pixels_unchanged_by_the_checks(tmp_path):
    planes = write_series(tmp_path / "ok", [0.0, 1.0, 2.0])
    volume = load_volume(tmp_path / "ok")
    assert np.array_equal(volume.voxels[1], planes[1].astype(np.int32) - 1024)


def test_control_characters_in_names_do_not_reach_the_output(tmp_path):
    """A PatientName whose length swallowed the next elements, escape sequences included."""
    write_series(tmp_path / "s", [0.0, 1.0])
    for path in (tmp_path / "s").iterdir():
        dataset = pydicom.dcmread(path)
        dataset.PatientName = "Evil\x1b[31m\x00" + "\x10\x00LO" * 400
        dataset.SeriesDescription = "line one\nline two"
        dataset.save_as(path)
    (study,) = scan(tmp_path / "s").studies
    assert study.patient_name.isprintable() and study.patient_name.startswith("Evil [31m")
    assert len(study.patient_name) <= 1024
    assert study.series[0].description == "line one line two"


def test_a_corrupt_position_cannot_make_the_tilt_grid_exhaust_memory(tmp_path, monkeypatch):
    """Slices displaced 10 km in plane look like a gantry tilt whose corrected grid is huge."""
    write_series(tmp_path / "s", [0.0, 1.0, 2.0], x_shift_per_slice_mm=5e6)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 100 << 20)
    with pytest.raises(
        LoadError, match=r"s00\d\.dcm: declares 5 x 6 x 3 voxels of 16 bits on a \d+ x 6 tilt"
    ):
        load_volume(tmp_path / "s")


def test_uids_with_control_characters_skip_the_file(tmp_path):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    data = bad.read_bytes()
    syntax = b"1.2.840.10008.1.2.1\x00"
    bad.write_bytes(data.replace(syntax, b"1.2.840.10\x0008.1.2\x00", 1))
    _assert_skipped_alone(folder, bad, "TransferSyntaxUID is not a UID|no image in this file")
    folder, bad = _series_with_one_bad_slice(tmp_path / "2")
    _edit(bad, StudyInstanceUID="1.2\x1b3")
    _assert_skipped_alone(folder, bad, "StudyInstanceUID is not a UID")


def test_a_traceback_quoted_in_an_exception_is_not_shown():
    text = "With tag (0008,0050) got exception: Unknown VR 'ZZ'\nTraceback (most recent call last):\n  File x"
    assert one_line(text) == "With tag (0008,0050) got exception: Unknown VR 'ZZ'"


def test_compressed_file_without_pixel_data_claiming_many_frames_is_skipped_at_once(tmp_path):
    """Found by the 10,000-file fuzz run: a JPEG 2000 file whose header lengths ran past its end
    (no pixel data found) with NumberOfFrames 999999 made `info` loop for a minute."""
    dataset = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    del dataset.PixelData
    dataset.NumberOfFrames = 999999
    dataset.save_as(tmp_path / "j2k.dcm")
    start = time.perf_counter()
    result = scan(tmp_path)
    assert time.perf_counter() - start < 2.0
    assert "999999 frame(s)" in result.skipped[0].reason and "no pixel data" in result.skipped[0].reason


def test_a_header_running_past_the_end_of_the_file_is_skipped(tmp_path):
    from app.io import dicom_scan

    path = tmp_path / "past.dcm"
    path.write_bytes(Path(get_testdata_file("JPEG2000.dcm")).read_bytes())
    header = dicom_scan.read_header(path)
    header.pixel_offset = path.stat().st_size + 10_000_000  # where pydicom's seek ended up
    assert "runs past the end of the file" in dicom_scan._header_fault(header)


def test_huge_rows_and_columns_of_an_uncompressed_file_name_the_file_and_size(tmp_path, capsys):
    folder, bad = _series_with_one_bad_slice(tmp_path)
    _edit(bad, Rows=65535, Columns=65535)
    from main import main

    assert main(["convert", str(bad), str(tmp_path / "out.nii.gz")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.dcm" in error
    assert "declares 1 frame(s) of 65535 x 65535 x 16 bits (8.0 GiB)" in error
