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
