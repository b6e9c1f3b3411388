"""Every compressed (or big-endian) variant decodes to the pixels of its uncompressed twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.io.loader import load_volume

pydicom_data = pytest.importorskip("pydicom.data")
data_store = pytest.importorskip("data_store")

P = Path(pydicom_data.get_testdata_file("CT_small.dcm")).parent
D = Path(data_store.__file__).parent / "data"

LOSSLESS_TWINS = [
    (P / "MR_small_RLE.dcm", P / "MR_small.dcm"),  # RLE
    (P / "MR_small_jp2klossless.dcm", P / "MR_small.dcm"),  # JPEG 2000 lossless
    (P / "MR_small_jpeg_ls_lossless.dcm", P / "MR_small.dcm"),  # JPEG-LS lossless
    (P / "MR_small_bigendian.dcm", P / "MR_small.dcm"),
    (P / "MR_small_implicit.dcm", P / "MR_small.dcm"),
    (P / "MR_small_expb.dcm", P / "MR_small.dcm"),
    (D / "emri_small_RLE.dcm", D / "emri_small.dcm"),  # multi-frame
    (D / "emri_small_jpeg_2k_lossless.dcm", D / "emri_small.dcm"),
    (D / "emri_small_jpeg_ls_lossless.dcm", D / "emri_small.dcm"),
    (D / "emri_small_big_endian.dcm", D / "emri_small.dcm"),
    (D / "693_J2KR.dcm", D / "693_UNCR.dcm"),
    (D / "MR2_J2KR.dcm", D / "MR2_UNCR.dcm"),
    (D / "RG1_J2KR.dcm", D / "RG1_UNCR.dcm"),
    (D / "RG3_J2KR.dcm", D / "RG3_UNCR.dcm"),
    (D / "JPEG2000_UNC.dcm", P / "JPEG2000.dcm"),  # NM multi-frame, JPEG 2000
]
LOSSY_TWINS = [
    (P / "693_J2KI.dcm", D / "693_UNCI.dcm"),
    (D / "MR2_J2KI.dcm", D / "MR2_UNCI.dcm"),
    (D / "RG1_J2KI.dcm", D / "RG1_UNCI.dcm"),
]
# Baseline/extended/lossless JPEG have no uncompressed twin in the sets: they must decode.
JPEG_ONLY = [
    D / "JPEG-LL.dcm",
    D / "JPGLosslessP14SV1_1s_1f_8b.dcm",
    P / "JPGExtended.dcm",
    D / "bad_sequence.dcm",
]


@pytest.mark.parametrize("compressed, plain", LOSSLESS_TWINS, ids=lambda p: p.name)
def test_lossless_variant_decodes_to_the_same_pixels(compressed, plain):
    decoded, reference = load_volume(compressed), load_volume(plain)
    assert decoded.voxels.shape == reference.voxels.shape
    assert np.array_equal(decoded.voxels, reference.voxels)
    assert decoded.geometry.allclose(reference.geometry)


@pytest.mark.parametrize("compressed, plain", LOSSY_TWINS, ids=lambda p: p.name)
def test_lossy_variant_stays_close_to_its_twin(compressed, plain):
    decoded = load_volume(compressed).voxels.astype(np.float64)
    reference = load_volume(plain).voxels.astype(np.float64)
    assert decoded.shape == reference.shape
    assert np.corrcoef(decoded.ravel(), reference.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("path", JPEG_ONLY, ids=lambda p: p.name)
def test_jpeg_variants_decode(path):
    volume = load_volume(path)
    assert volume.voxels.size > 0 and float(volume.voxels.max()) > float(volume.voxels.min())
