"""Out-of-distribution warnings against a declared training domain."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.ood import check_domain, mr_contrast
from app.core.volume import Geometry, Volume

DOMAIN = {
    "modalities": ["MR"],
    "contrasts": ["T1"],
    "spacing_mm": [1.0, 1.0, 1.0],
    "intensity_range": [0.0, 1000.0],
    "intensity_mean": 300.0,
    "intensity_std": 100.0,
}


def mr(values, spacing=(1.0, 1.0, 1.0), modality="MR", description="AX T1 SE"):
    return Volume(
        values.astype(np.float32),
        Geometry.identity(spacing),
        modality,
        metadata={"SeriesDescription": description},  # as the DICOM loader carries it
    )


def test_in_domain_input_gives_no_warning():
    values = np.random.default_rng(0).normal(300, 80, size=(8, 16, 16)).clip(0, 1000)
    check = check_domain(mr(values), DOMAIN)
    assert check.in_domain, check.warnings
    assert abs(check.statistics["mean"] - 300) < 10


def test_each_mismatch_is_named():
    values = np.random.default_rng(0).normal(300, 80, size=(8, 16, 16)).clip(0, 1000)
    assert any("modality CT" in w for w in check_domain(mr(values, modality="CT"), DOMAIN).warnings)
    assert any("contrast T2" in w for w in check_domain(mr(values, description="Ax T2 FSE"), DOMAIN).warnings)
    assert any("spacing 1 x 1 x 5" in w for w in check_domain(mr(values, spacing=(1, 1, 5)), DOMAIN).warnings)
    hu = values - 1024  # e.g. a CT in HU fed to an MR model
    warnings = check_domain(mr(hu), DOMAIN).warnings
    assert any("outside the trained intensity range" in w for w in warnings)
    assert any("training SDs" in w for w in warnings)


def test_spacing_bounds_and_manifest_like_objects():
    class FakeManifest:
        def declared_training_domain(self):
            return {"spacing_mm_min": [0.5, 0.5, 0.5], "spacing_mm_max": [1.5, 1.5, 3.0]}

    values = np.ones((4, 4, 4))
    assert check_domain(mr(values, spacing=(1, 1, 2)), FakeManifest()).in_domain
    assert "coarser" in check_domain(mr(values, spacing=(1, 1, 4)), FakeManifest()).warnings[0]
    assert "finer" in check_domain(mr(values, spacing=(0.3, 1, 1)), FakeManifest()).warnings[0]
    assert check_domain(mr(values), {}).in_domain  # nothing declared, nothing checked


def _textured(shape, seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(100, 30, shape).astype(np.float32), 0.8)


def test_super_resolution_input_already_sharp_at_the_target_spacing_is_warned():
    from app.core.volume import Geometry, Volume
    from app.plugins.training.degrade import thick_slices

    domain = {"super_resolution_target_mm": 1.0}
    sharp = Volume(_textured((40, 40, 40)), Geometry.identity(), "MR")
    warnings = check_domain(sharp, domain).warnings
    assert any("already at or finer" in w and "super-resolution" in w for w in warnings)
    finer = Volume(_textured((40, 40, 40)), Geometry(np.zeros(3), np.array([0.5, 0.5, 0.5]), np.eye(3)), "MR")
    assert any("already at or finer" in w for w in check_domain(finer, domain).warnings)
    # Thick slices interpolated to 1 mm are what the plugin is for; 5 mm slices as acquired too.
    interpolated = Volume(thick_slices(_textured((40, 40, 40)), 5, axis=0), Geometry.identity(), "MR")
    assert not any("already at or finer" in w for w in check_domain(interpolated, domain).warnings)
    thick = Volume(_textured((8, 40, 40)), Geometry(np.zeros(3), np.array([1.0, 1.0, 5.0]), np.eye(3)), "MR")
    assert not any("already at or finer" in w for w in check_domain(thick, domain).warnings)


def test_shipped_super_resolution_plugin_declares_its_target():
    from pathlib import Path

    from app.plugins.manifest import load_manifest

    folder = Path(__file__).resolve().parents[2] / "plugins" / "mr_t1_thick_slice_sr"
    assert load_manifest(folder).declared_training_domain()["super_resolution_target_mm"] == 1.0


@pytest.mark.parametrize(
    ("description", "contrast"),
    [
        ("T1 MNI152 2009a 1mm", "T1"),  # the demo study's
        ("sag MP-RAGE 1mm iso", "T1"),
        ("Ax T2 FSE", "T2"),
        ("AX T2 FLAIR", "FLAIR"),
        ("PDW_TSE", "PD"),
        ("DWI b1000", "DWI"),
        ("localizer", ""),
        ("T1 and T2 maps", ""),  # words that disagree: unknown, not checked
        ("FT1 T22", ""),  # only whole words count
        ("", ""),
    ],
)
def test_the_contrast_is_read_from_the_series_description(description, contrast):
    volume = mr(np.zeros((2, 4, 4)), description=description)
    assert mr_contrast(volume) == contrast
    assert check_domain(volume, DOMAIN).statistics["contrast"] == contrast


def test_an_unknown_or_non_mr_contrast_is_not_checked():
    values = np.random.default_rng(0).normal(300, 80, size=(8, 16, 16)).clip(0, 1000)
    assert check_domain(mr(values, description="survey"), DOMAIN).in_domain
    ct = mr(values, modality="CT", description="T2")  # words of a CT description name no MR contrast
    assert not any("contrast" in w for w in check_domain(ct, {"contrasts": ["T1"]}).warnings)


def test_the_demo_study_is_read_as_t1(demo_volume):
    assert mr_contrast(demo_volume) == "T1"
