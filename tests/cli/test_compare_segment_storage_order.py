"""``compare --segment`` where the synthesized file stores the same head in another axis order
(an axis flipped, i and k swapped, as converters and scanners write them): the labels must agree
exactly in world space (Dice 1.0, no region). The test segmenter depends on where a voxel lies in
the slice it is shown (left half label 1, right half label 2), so a slice presented in another
orientation, or labels put back on the wrong voxels, would not give 1.0."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_segmentation_plugin

# RAS-stored on disk, LPS in memory; anisotropic so that a swapped axis cannot pass by chance.
GEOMETRY = Geometry(np.array([20.0, 30.0, -5.0]), np.array([1.0, 1.2, 2.0]), np.diag([-1.0, -1.0, 1.0]))


class ScreenHalves(torch.nn.Module):
    """Background where the input is dark; else label 1 on the left half of the image shown, 2 on
    the right half (position-dependent: orientation errors change the labels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        column = torch.arange(width, device=x.device).view(1, 1, 1, width).float()
        left = (column < width // 2).float().expand_as(x[:, :1])
        foreground = (x[:, :1] > -0.5).float()
        return torch.cat([1 - foreground, foreground * left, foreground * (1 - left)], dim=1) * 10


def _head() -> np.ndarray:
    k, j, i = np.mgrid[0:10, 0:26, 0:30]
    voxels = np.zeros((10, 26, 30), np.float32)
    inside = ((i - 13) / 11.0) ** 2 + ((j - 12) / 10.0) ** 2 + ((k - 5) / 4.0) ** 2 < 1  # off-centre
    voxels[inside] = 100 + 50 * np.sin(i[inside] / 3.0)
    return voxels


def _stored(voxels: np.ndarray, how: str) -> Volume:
    """The same head, same world positions, written in another array order."""
    geometry = GEOMETRY
    if how.startswith("flip "):
        axis_ijk = "ijk".index(how[-1])
        voxels = np.flip(voxels, axis=2 - axis_ijk)
        direction = geometry.direction.copy()
        direction[:, axis_ijk] *= -1
        last = [voxels.shape[2 - a] - 1 if a == axis_ijk else 0 for a in range(3)]
        geometry = Geometry(geometry.lps_from_index(last), geometry.spacing_mm, direction)
    elif how == "swap i and k":
        voxels = np.transpose(voxels, (2, 1, 0))
        geometry = Geometry(geometry.origin_lps_mm, geometry.spacing_mm[[2, 1, 0]], geometry.direction[:, [2, 1, 0]])
    return Volume(np.ascontiguousarray(voxels), geometry, "MR", name=how, provenance=Provenance("copier", "1"))


@pytest.mark.parametrize("how", ["flip i", "flip j", "flip k", "swap i and k"])
def test_the_same_head_stored_in_another_axis_order_agrees_exactly(tmp_path, how):
    head = _head()
    original = save_nifti(Volume(head, GEOMETRY, "MR", name="t1"), tmp_path / "t1.nii.gz")
    other = save_nifti(_stored(head, how), tmp_path / "other.nii.gz")
    plugin = make_segmentation_plugin(tmp_path / "seg", module=ScreenHalves(), input={"modality": "MR"})
    out = tmp_path / "c.json"
    assert main(["compare", str(original), str(other), "--segment", str(plugin), "--json", str(out)]) == 0
    block = json.loads(out.read_text())["consistency"]
    assert [label["dice"] for label in block["labels"]] == [1.0, 1.0]
    assert block["disagreement_voxels"] == 0 and block["regions"] == []
    assert all(label["volume_original_ml"] > 0 for label in block["labels"])  # both halves present
