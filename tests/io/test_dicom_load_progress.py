"""DICOM series loads report their progress, and an unspecified rescale type shows no unit."""

import pydicom

from app.io.loader import load_volume
from tests.io.series_factory import write_series


def test_progress_counts_every_frame_up_to_the_total(tmp_path):
    write_series(tmp_path, [float(z) for z in range(12)])
    reports = []
    volume = load_volume(tmp_path, progress=lambda done, total: reports.append((done, total)))
    assert volume.voxels.shape[0] == 12
    assert reports and all(total == 12 for _, total in reports)
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == 12 and done[0] > 0


def test_progress_is_optional(tmp_path):
    write_series(tmp_path, [0.0, 1.0])
    assert load_volume(tmp_path).voxels.shape[0] == 2


def test_rescale_type_us_means_no_unit(tmp_path):
    write_series(tmp_path, [0.0, 1.0])
    for path in tmp_path.glob("*.dcm"):
        dataset = pydicom.dcmread(path)
        dataset.Modality = "MR"
        dataset.RescaleType = "US"  # DICOM's "unspecified", not ultrasound
        dataset.save_as(path)
    assert load_volume(tmp_path).units == ""


def test_large_volumes_are_read_into_plain_pages_not_numpy_huge_page_arrays():
    """NumPy advises transparent huge pages for big arrays; under the usual 'madvise' defrag the
    kernel then compacts memory inside the allocation (load times swung 0.1-0.6 s). The loader's
    buffer is an anonymous mmap instead: writable, zero-filled, freed with the array."""
    import mmap

    import numpy as np

    from app.io.dicom_load import HUGE_PAGE_SAFE_BYTES, empty_volume

    big = empty_volume((40, 256, 256), np.int16)
    assert big.nbytes >= HUGE_PAGE_SAFE_BYTES and big.flags.writeable and big.shape == (40, 256, 256)
    owner = big
    while isinstance(owner, np.ndarray):
        owner = owner.base
    assert isinstance(owner, memoryview) and isinstance(owner.obj, mmap.mmap)
    big[:] = 7
    assert int(big.sum()) == 7 * big.size
    small = empty_volume((2, 8, 8), np.float32)
    assert small.base is None  # small arrays stay ordinary NumPy allocations
