"""The fast explicit-VR-little-endian header reader agrees with pydicom, or defers to it."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest

from app.io.dicom_header import read_explicit_le_header
from app.io.dicom_scan import HEADER_TAGS
from tests.io.series_factory import write_series

pydicom_data = pytest.importorskip("pydicom.data")
data_store = pytest.importorskip("data_store")
P = Path(pydicom_data.get_testdata_file("CT_small.dcm")).parent
D = Path(data_store.__file__).parent / "data"
PLAIN_TAGS = [keyword for keyword in HEADER_TAGS if not keyword.endswith("Sequence")]


def _reference(path: Path):
    with open(path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(handle, stop_before_pixels=True)
        return dataset, handle.tell()


def _assert_agrees(path: Path):
    with open(path, "rb") as handle:
        fast = read_explicit_le_header(handle)
    assert fast is not None, f"{path.name} should take the fast path"
    dataset, offset, syntax = fast
    reference, reference_offset = _reference(path)
    assert syntax == pydicom.uid.ExplicitVRLittleEndian
    assert offset == reference_offset
    for keyword in PLAIN_TAGS:
        assert str(dataset.get(keyword)) == str(reference.get(keyword)), keyword


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm"])
def test_agrees_with_pydicom_on_real_files(name):
    _assert_agrees(P / name)


def test_skips_nested_undefined_length_sequences(tmp_path):
    write_series(tmp_path, [0.0])
    path = next(tmp_path.iterdir())
    dataset = pydicom.dcmread(path)
    inner = pydicom.Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator = "113100", "DCM"
    item = pydicom.Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.PurposeOfReferenceCodeSequence = [inner]
    item.is_undefined_length_sequence_item = True
    dataset.ReferencedImageSequence = [item, item]
    dataset["ReferencedImageSequence"].is_undefined_length = True
    item["PurposeOfReferenceCodeSequence"].is_undefined_length = True
    dataset.save_as(path)
    reread = pydicom.dcmread(path, stop_before_pixels=True)
    assert reread["ReferencedImageSequence"].is_undefined_length
    _assert_agrees(path)


@pytest.mark.parametrize(
    "path",
    [
        P / "MR_small_implicit.dcm",
        P / "MR_small_bigendian.dcm",
        P / "MR_small_RLE.dcm",
        P / "no_meta.dcm",
        D / "emri_small.dcm",
    ],
    ids=lambda p: p.name,
)
def test_defers_to_pydicom_for_other_syntaxes(path):
    with open(path, "rb") as handle:
        fast = read_explicit_le_header(handle)
    if path.name == "emri_small.dcm":  # explicit LE multi-frame without functional groups
        assert fast is not None and fast[0].NumberOfFrames == 10
    else:
        assert fast is None


def test_truncated_header_defers_to_pydicom(tmp_path):
    write_series(tmp_path, [0.0])
    path = next(tmp_path.iterdir())
    path.write_bytes(path.read_bytes()[:400])
    with open(path, "rb") as handle:
        assert read_explicit_le_header(handle) is None
