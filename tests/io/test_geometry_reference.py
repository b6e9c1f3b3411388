"""Loaded arrays and affines agree with dcm2niix and SimpleITK on real DICOM files.

Files come from pydicom's bundled test set and the pydicom-data package (``data_store``):
single-frame CT/MR in every transfer syntax, the enhanced multi-frame CT, and the demo series.
All three readers' outputs are brought to the closest canonical RAS orientation first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.io.loader import load_volume
from tests.io.reference import canonical_from_volume, dcm2niix_binary, dcm2niix_canonical, sitk_canonical

pydicom_data = pytest.importorskip("pydicom.data")
data_store = pytest.importorskip("data_store")

PYDICOM_FILES = Path(pydicom_data.get_testdata_file("CT_small.dcm")).parent
DATA_STORE_FILES = Path(data_store.__file__).parent / "data"

WITH_PATIENT_GEOMETRY = [
    PYDICOM_FILES / "CT_small.dcm",
    PYDICOM_FILES / "MR_small.dcm",
    PYDICOM_FILES / "MR_small_RLE.dcm",
    PYDICOM_FILES / "MR_small_jp2klossless.dcm",
    PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm",
    PYDICOM_FILES / "MR_small_bigendian.dcm",
    PYDICOM_FILES / "MR_small_implicit.dcm",
    PYDICOM_FILES / "693_J2KI.dcm",
    DATA_STORE_FILES / "693_UNCR.dcm",
    DATA_STORE_FILES / "693_J2KR.dcm",
    DATA_STORE_FILES / "MR2_UNCR.dcm",
    DATA_STORE_FILES / "MR2_J2KR.dcm",
    DATA_STORE_FILES / "eCT_Supplemental.dcm",  # enhanced CT, 2 frames, per-frame rescale groups
]
# Enhanced MR whose functional groups were stripped by anonymisation: no patient geometry
# to compare, but the frames and their order must match.
ENHANCED_WITHOUT_GEOMETRY = [
    DATA_STORE_FILES / name
    for name in (
        "emri_small.dcm",
        "emri_small_RLE.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
    )
]

needs_dcm2niix = pytest.mark.skipif(dcm2niix_binary() is None, reason="dcm2niix is not installed")


def _assert_same(ours, reference, in_plane_only: bool = False):
    data, affine = ours
    ref_data, ref_affine = reference
    assert data.shape == ref_data.shape
    assert np.allclose(data, ref_data, atol=1e-3), f"max |diff| {np.abs(data - ref_data).max()}"
    columns = [0, 1, 3] if in_plane_only or data.shape[2] == 1 else [0, 1, 2, 3]
    assert np.allclose(affine[:3, columns], ref_affine[:3, columns], atol=1e-3), f"\n{affine}\n{ref_affine}"


@needs_dcm2niix
@pytest.mark.parametrize("path", WITH_PATIENT_GEOMETRY, ids=lambda p: p.name)
def test_file_matches_dcm2niix(path, tmp_path):
    _assert_same(canonical_from_volume(load_volume(path)), dcm2niix_canonical([path], tmp_path))


@pytest.mark.parametrize("path", WITH_PATIENT_GEOMETRY, ids=lambda p: p.name)
def test_file_matches_simpleitk(path):
    _assert_same(canonical_from_volume(load_volume(path)), sitk_canonical([path]))


@pytest.mark.parametrize("path", ENHANCED_WITHOUT_GEOMETRY, ids=lambda p: p.name)
def test_enhanced_mr_frames_match_simpleitk(path):
    volume = load_volume(path)
    assert volume.voxels.shape == (10, 64, 64)
    assert any("no per-frame positions" in w for w in volume.load_warnings)
    _assert_same(canonical_from_volume(volume), sitk_canonical([path]), in_plane_only=True)


def test_enhanced_ct_per_frame_rescale_and_positions():
    volume = load_volume(DATA_STORE_FILES / "eCT_Supplemental.dcm")
    assert volume.voxels.shape == (2, 512, 512)
    assert volume.geometry.spacing_mm[2] == pytest.approx(10.0)
    assert volume.voxels.min() >= -1024  # per-frame intercept -1024 applied
    assert volume.units == "HU"


@needs_dcm2niix
def test_demo_series_matches_dcm2niix(demo_dicom_dir, demo_volume, tmp_path):
    files = sorted(demo_dicom_dir.glob("*.dcm"))
    _assert_same(canonical_from_volume(demo_volume), dcm2niix_canonical(files, tmp_path))


def test_demo_series_matches_simpleitk(demo_dicom_dir, demo_volume):
    files = sorted(demo_dicom_dir.glob("*.dcm"))
    _assert_same(canonical_from_volume(demo_volume), sitk_canonical(files))


def test_oblique_series_matches_dcm2niix_and_simpleitk(tmp_path):
    from tests.io.series_factory import write_series

    angle = np.deg2rad(17.0)
    row = [np.cos(angle), np.sin(angle), 0.0]
    col = [0.0, np.cos(np.deg2rad(25.0)), -np.sin(np.deg2rad(25.0))]
    col = list(np.array(col) - np.dot(col, row) * np.array(row))
    col = list(np.array(col) / np.linalg.norm(col))
    write_series(tmp_path / "dicom", [0.0, 1.5, 3.0, 4.5], shape=(7, 9), orientation=(*row, *col))
    files = sorted((tmp_path / "dicom").glob("*.dcm"))
    volume = load_volume(tmp_path / "dicom")
    assert volume.geometry.is_oblique()
    ours = canonical_from_volume(volume)
    _assert_same(ours, sitk_canonical(files))
    if dcm2niix_binary() is not None:
        _assert_same(ours, dcm2niix_canonical(files, tmp_path / "d2n"))
