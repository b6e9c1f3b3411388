"""Gantry-tilted CT series: loaded onto an orthogonal grid with every voxel at its DICOM position."""

from __future__ import annotations

import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

import main
from app.io import dicom_load
from app.io.dicom_scan import scan
from app.io.loader import load_volume
from tests.io.reference import canonical, canonical_from_volume, dcm2niix_binary
from tests.io.series_factory import write_series, write_tilted_ball_series

BALL_LPS = np.array([3.0, -4.0, 30.0])
RADIUS_MM = 12.0
INSIDE_HU, OUTSIDE_HU = 2000 - 1024, 1000 - 1024  # stored values with the -1024 intercept


def bright_centroid_lps(volume) -> np.ndarray:
    """Mean LPS position of the voxels above the half-way level between ball and background."""
    level = (INSIDE_HU + OUTSIDE_HU) / 2
    ijk = np.argwhere(np.asarray(volume.voxels) > level)[:, ::-1]
    return volume.geometry.lps_from_index(ijk).mean(axis=0)


def stored_pixel_coordinates(volume, written: dict) -> tuple[np.ndarray, np.ndarray]:
    """For every grid voxel: its (column, row) position in the stored slice of the same index."""
    nk, nj, ni = volume.voxels.shape
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    world = volume.geometry.lps_from_index(np.stack([i, j, k], axis=-1).reshape(-1, 3)).reshape(nk, nj, ni, 3)
    relative = world - written["positions"][:, None, None, :]
    row_spacing, column_spacing = written["spacing"]
    return relative @ written["row"] / column_spacing, relative @ written["col"] / row_spacing, world


@pytest.fixture(scope="module")
def tilted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tilted")
    written = write_tilted_ball_series(folder, BALL_LPS, RADIUS_MM, tilt_deg=15.0)
    return folder, written


def test_tilted_ball_lands_at_its_true_lps_position_on_an_orthonormal_grid(tilted):
    folder, written = tilted
    volume = load_volume(folder)
    geometry = volume.geometry
    assert np.allclose(geometry.direction.T @ geometry.direction, np.eye(3), atol=1e-9)
    normal = np.cross(written["row"], written["col"])
    assert np.allclose(geometry.direction, np.column_stack([written["row"], written["col"], normal]))
    # Slices 2 mm apart along the table are 2 cos(15 deg) apart along the normal.
    assert geometry.spacing_mm == pytest.approx([0.8, 0.9, 2.0 * np.cos(np.radians(15.0))])
    error_mm = np.abs(bright_centroid_lps(volume) - BALL_LPS)
    assert np.all(error_mm < 0.1 * geometry.spacing_mm.min()), error_mm
    # The grid grew in plane to hold every shifted slice: 39 slices x 0.5176 mm / 0.9 mm = 22.4 rows.
    assert volume.voxels.shape == (40, 64 + 23, 60)
    assert volume.voxels.dtype == np.float32


def test_without_the_correction_the_same_check_fails(tilted, monkeypatch):
    """The centroid test discriminates: the old unsheared stacking puts the ball mm away."""
    folder, _ = tilted
    monkeypatch.setattr(dicom_load, "tilt_correction", lambda series: None)
    error_mm = np.abs(bright_centroid_lps(load_volume(folder)) - BALL_LPS)
    assert error_mm.max() > 2.0


def test_every_voxel_holds_the_value_the_dicom_puts_there(tilted):
    folder, written = tilted
    volume = load_volume(folder)
    u, v, world = stored_pixel_coordinates(volume, written)
    rows, columns = written["shape"]
    covered = (u > -1e-6) & (u < columns - 1 + 1e-6) & (v > -1e-6) & (v < rows - 1 + 1e-6)
    distance = np.linalg.norm(world - BALL_LPS, axis=-1) - RADIUS_MM
    # Farther from the surface than one pixel diagonal: all four interpolation taps agree.
    clear = np.hypot(*written["spacing"]) + 1e-3
    voxels = volume.voxels
    assert np.all(voxels[covered & (distance < -clear)] == INSIDE_HU)
    assert np.all(voxels[covered & (distance > clear)] == OUTSIDE_HU)
    # Voxels no stored slice covers get the series minimum, never a made-up value.
    assert (~covered).sum() > 1000
    fill = volume.tilt_correction.fill_value
    assert fill == OUTSIDE_HU
    assert np.all(voxels[~covered] == fill)


def test_correction_is_reported_in_the_scan_and_in_the_volume_metadata(tilted):
    folder, _ = tilted
    (series,) = scan(folder).all_series()
    (message,) = [w for w in series.warnings if "gantry tilt" in w]
    assert message.startswith("gantry tilt of 15.00 deg corrected: slices shifted in plane by up to 20.2 mm")
    assert "60 x 87 x 40 grid" in message
    volume = load_volume(folder)
    assert message in volume.load_warnings
    record = volume.tilt_correction
    assert record.gantry_tilt_deg == pytest.approx(15.0, abs=1e-3)
    assert record.max_shift_mm == pytest.approx(39 * 2.0 * np.sin(np.radians(15.0)), abs=1e-3)
    assert record.acquired_size_ij == (60, 64) and record.corrected_size_ij == (60, 87)
    assert "tilt_correction" not in volume.metadata  # a typed field, not a free-form entry
    same_grid = volume.with_voxels(volume.voxels * 2)  # e.g. a map of it: the pixels' history stays
    assert same_grid.tilt_correction is record


def test_main_info_prints_the_correction(tilted, capsys):
    folder, _ = tilted
    assert main.main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "warning: gantry tilt of 15.00 deg corrected: slices shifted in plane by up to 20.2 mm" in out


@pytest.mark.skipif(dcm2niix_binary() is None, reason="dcm2niix is installed by scripts/install.sh")
def test_matches_dcm2niix_tilt_corrected_output(tilted, tmp_path):
    folder, _ = tilted
    out = tmp_path / "out"
    out.mkdir()
    command = [dcm2niix_binary(), "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(folder)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    tilt_files = sorted(out.glob("*_Tilt_1.nii"))
    assert len(tilt_files) == 1, completed.stdout + completed.stderr
    image = nib.load(str(tilt_files[0]))
    reference, reference_affine = canonical(np.asanyarray(image.dataobj), image.affine)
    ours, our_affine = canonical_from_volume(load_volume(folder))
    assert np.allclose(our_affine, reference_affine, atol=1e-3)
    assert ours.shape == reference.shape
    # dcm2niix stores whole numbers: the two differ by its rounding only.
    assert np.abs(ours.astype(float) - reference).max() <= 0.5 + 1e-3


def test_lateral_shear_with_fractional_rescale(tmp_path):
    """Slices displaced along the rows as well; a non-integer rescale (float32 before the shift)."""
    write_tilted_ball_series(
        tmp_path, BALL_LPS, RADIUS_MM, tilt_deg=10.0, lateral_step_mm=0.3, slope=0.5, intercept=-10.0
    )
    volume = load_volume(tmp_path)
    inside, outside = 2000 * 0.5 - 10, 1000 * 0.5 - 10
    ijk = np.argwhere(volume.voxels > (inside + outside) / 2)[:, ::-1]
    error_mm = np.abs(volume.geometry.lps_from_index(ijk).mean(axis=0) - BALL_LPS)
    assert np.all(error_mm < 0.1 * volume.geometry.spacing_mm.min()), error_mm
    assert volume.voxels.dtype == np.float32
    assert volume.voxels.max() == inside and volume.voxels.min() == outside
    # 39 slices x 0.3 mm = 11.7 mm of lateral shift over 0.8 mm columns: 15 more columns.
    assert volume.voxels.shape[2] == 60 + 15


def test_untilted_series_loads_as_before_without_a_copy(tmp_path, monkeypatch):
    planes = write_series(tmp_path, [0.0, 2.5, 5.0, 7.5], shape=(16, 12))
    handed_over = []
    rescale = dicom_load._apply_rescale

    def spy(*args):
        handed_over.append(rescale(*args))
        return handed_over[-1]

    def never(*args, **kwargs):
        raise AssertionError("an untilted series must not be resampled")

    monkeypatch.setattr(dicom_load, "_apply_rescale", spy)
    monkeypatch.setattr(dicom_load, "correct_tilt", never)
    volume = load_volume(tmp_path)
    assert volume.voxels is handed_over[0]  # the reader's own array, not a copy
    assert volume.voxels.dtype == np.int16
    assert volume.voxels.tobytes() == (np.stack(planes).astype(np.int16) - 1024).tobytes()
    assert volume.tilt_correction is None
    assert np.allclose(volume.geometry.origin_lps_mm, [-10, 20, 0])


def test_displacement_below_a_tenth_of_a_pixel_is_left_alone(tmp_path):
    # 0.01 mm per slice over 4 slices: 0.03 mm, 0.04 of a 0.7 mm pixel (tilt 0.57 deg).
    write_series(tmp_path, [0.0, 1.0, 2.0, 3.0], x_shift_per_slice_mm=0.01)
    volume = load_volume(tmp_path)
    assert volume.voxels.dtype == np.int16
    assert volume.tilt_correction is None
    assert any("not resampled" in w for w in volume.load_warnings)


def test_derived_series_of_a_corrected_volume_says_so(tilted, tmp_path):
    from app.io.dicom_export import write_derived_series

    folder, _ = tilted
    paths = write_derived_series(load_volume(folder), tmp_path / "derived")
    description = pydicom.dcmread(paths[0]).DerivationDescription
    assert "gantry tilt of 15.00 deg corrected (slices shifted in plane by up to 20.2 mm" in description
    # Read back, the derived series is orthogonal: no tilt left to correct.
    assert load_volume(tmp_path / "derived").tilt_correction is None
