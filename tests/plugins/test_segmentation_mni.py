"""Downstream consistency on real anatomy (the MNI152 head): a filled ventricle is listed where it
was; an unmodified pair agrees fully. The segmenter is a test-made nearest-intensity classifier
(background, CSF, grey, white matter on the percentile-normalised T1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.analysis.seg_consistency import compare_label_maps
from app.core.label_map import label_names
from app.io.nifti import load_nifti
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, segment
from tests.plugins.plugin_factory import make_torchscript_plugin, segmentation_overrides
from tests.segmentation_fixtures import largest_central_csf, mni_centre

pytestmark = pytest.mark.slow

LABELS = [
    {"value": 0, "name": "background"},
    {"value": 1, "name": "CSF"},
    {"value": 2, "name": "grey matter"},
    {"value": 3, "name": "white matter"},
]


class NearestCentre(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, 4] + [1] * (x.dim() - 2)
        # MNI152 2009a intensities scaled by its 0-99.5th percentiles to [-1, 1]
        centres = torch.tensor([-1.0, -0.43, 0.52, 0.9], device=x.device).view(shape)
        return -((x[:, :1] - centres) ** 2)


@pytest.fixture(scope="module")
def mni_and_segmenter(tmp_path_factory, mni_t1_nifti_path):
    head = load_nifti(mni_t1_nifti_path)
    # The central half of the head along each axis (the ventricles lie in its middle), scaled by
    # the whole head's 0-99.5th percentiles, so the test runs on an eighth of the voxels.
    low, high = (float(v) for v in np.percentile(head.voxels, [0, 99.5]))
    volume = mni_centre(head)
    normalization = {"input": {"method": "window", "low": low, "high": high}, "output": {"method": "none"}}
    folder = make_torchscript_plugin(
        tmp_path_factory.mktemp("seg") / "tissue",
        NearestCentre(),
        **segmentation_overrides(labels=LABELS, normalization=normalization),
    )
    manifest = load_manifest(folder)
    options = RunOptions(device="cpu", batch_size=32)
    return volume, manifest, options, segment(manifest, volume, options).volume


def test_an_unmodified_mni_pair_agrees_for_every_tissue_class(mni_and_segmenter):
    volume, manifest, options, labels = mni_and_segmenter
    again = segment(manifest, volume.with_voxels(volume.voxels.copy()), options).volume
    result = compare_label_maps(labels.voxels, again.voxels, labels.geometry, label_names(manifest.labels))
    assert [a.name for a in result.labels] == ["CSF", "grey matter", "white matter"]
    assert all(a.dice >= 0.95 for a in result.labels) and result.regions == []


def test_a_filled_ventricle_is_listed_at_its_place(mni_and_segmenter):
    volume, manifest, options, labels = mni_and_segmenter
    ventricle = largest_central_csf(labels.voxels, 1)  # the lateral ventricles
    assert ventricle.sum() > 2000  # > 2 mL at 1 mm
    filled = volume.voxels.copy()
    filled[ventricle] = np.median(volume.voxels[labels.voxels == 3])  # white matter intensity
    after = segment(manifest, volume.with_voxels(filled), options).volume
    result = compare_label_maps(labels.voxels, after.voxels, labels.geometry, label_names(manifest.labels))
    largest = result.regions[0]
    expected_lps = labels.geometry.lps_from_index(np.argwhere(ventricle).mean(axis=0)[::-1])
    assert np.linalg.norm(np.subtract(largest.centroid_lps_mm, expected_lps)) < 1.0
    assert largest.volume_ml == pytest.approx(ventricle.sum() / 1000, rel=0.02)
    assert largest.changes[0].description == "CSF -> white matter"
    csf_agreement = next(a for a in result.labels if a.name == "CSF")
    assert csf_agreement.volume_change_ml == pytest.approx(-largest.volume_ml, rel=0.05)
