"""The installers leave out the GPL libjpeg decoder; GDCM (BSD) must decode the same files identically.

pydicom picks whichever decoder is installed; in the bundle that is GDCM for JPEG Lossless
(process 14), which hospitals' archives are full of.
"""

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.pixels import pixel_array

JPEG_LOSSLESS_AND_EXTENDED = [
    "JPEG-LL.dcm",  # 1.2.840.10008.1.2.4.70, 16-bit
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # 8-bit process 14
]
# 12-bit extended JPEG (1.2.840.10008.1.2.4.51) GDCM cannot decode: the bundle without libjpeg
# refuses it with a clear LoadError (packaging/LICENSES.md says so).


@pytest.mark.parametrize("name", JPEG_LOSSLESS_AND_EXTENDED)
def test_gdcm_decodes_like_libjpeg(name):
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} missing"
    syntax = dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert syntax.is_compressed
    by_gdcm = pixel_array(path, decoding_plugin="gdcm")
    by_libjpeg = pixel_array(path, decoding_plugin="pylibjpeg")
    assert by_gdcm.shape == by_libjpeg.shape
    assert np.array_equal(by_gdcm, by_libjpeg)
