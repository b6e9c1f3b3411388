"""``compare --segment mr-t1-brain-tissue`` on real anatomy (issue 21, "what this must show"): on the
MNI152 head (the shipped plugin's held-out head; its central half, to stay fast) an unmodified
pair agrees for every tissue class, and a lateral ventricle filled with white-matter intensity
or moved by 5 mm is listed as a disagreement region at its place, in LPS millimetres."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Volume
from app.io.nifti import load_nifti, save_nifti
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, segment
from main import main
from tests.segmentation_fixtures import largest_central_csf, mni_centre

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mr_t1_brain_tissue"
CSF, WHITE_MATTER = 1, 3
SHIFT_MM = 5
MAX_REGIONS_UNMODIFIED = 12  # measured 9 on the whole head (the denoiser test)


@pytest.fixture(scope="module")
def head(tmp_path_factory, mni_t1_nifti_path):
    """The MNI152 head's central half (the ventricles lie in it) as a NIfTI file, its Volume,
    the plugin's labels of it and its largest central CSF component (the lateral ventricles)."""
    folder = tmp_path_factory.mktemp("tissue")
    path = save_nifti(mni_centre(load_nifti(mni_t1_nifti_path)), folder / "t1.nii.gz")
    volume = load_nifti(path)  # exactly what compare reads
    labels = segment(load_manifest(PLUGIN), volume, RunOptions(device="cpu", batch_size=16)).volume.voxels
    return folder, path, volume, labels, largest_central_csf(labels, CSF)


def _synthesized(folder: Path, volume: Volume, voxels: np.ndarray, name: str) -> Path:
    return save_nifti(
        Volume(voxels, volume.geometry, "MR", name=name, provenance=Provenance("test-edit", "1.0")),
        folder / f"{name}.nii.gz",
    )


def _consistency(original: Path, synthesized: Path, out: Path) -> dict:
    assert main(["compare", str(original), str(synthesized), "--segment", str(PLUGIN), "--json", str(out)]) == 0
    return json.loads(out.read_text())["consistency"]


def _centroid_lps(volume: Volume, mask: np.ndarray) -> np.ndarray:
    return np.asarray(volume.geometry.lps_from_index(np.argwhere(mask).mean(axis=0)[::-1]))


def test_an_unmodified_pair_agrees_for_every_tissue_class(head):
    folder, path, volume, _, _ = head
    copy = save_nifti(volume, folder / "resaved.nii")  # re-saved, uncompressed
    block = _consistency(path, copy, folder / "same_consistency.json")
    dice = {label["name"]: label["dice"] for label in block["labels"]}
    assert set(dice) == {"CSF", "grey matter", "white matter"}
    assert all(value >= 0.95 for value in dice.values()), dice
    assert block["regions"] == []


def test_a_filled_ventricle_is_the_largest_region_at_its_place(head):
    folder, path, volume, labels, ventricle = head
    assert ventricle.sum() > 2000  # > 2 mL at 1 mm
    filled = volume.voxels.copy()
    filled[ventricle] = np.median(volume.voxels[labels == WHITE_MATTER])
    block = _consistency(path, _synthesized(folder, volume, filled, "filled"), folder / "filled_consistency.json")
    largest = block["regions"][0]
    distance = np.linalg.norm(np.subtract(largest["centroid_lps_mm"], _centroid_lps(volume, ventricle)))
    assert distance < 3.0, distance
    # The CSF is lost; the 2D network calls the filled place grey or white matter by its context.
    assert largest["changes"][0]["original"] == CSF
    assert largest["changes"][0]["description"] in ("CSF -> white matter", "CSF -> grey matter")
    assert largest["volume_ml"] == pytest.approx(ventricle.sum() / 1000, rel=0.25)
    csf = next(label for label in block["labels"] if label["name"] == "CSF")
    assert csf["volume_change_ml"] < -0.5 * ventricle.sum() / 1000


def test_a_ventricle_moved_5_mm_up_is_listed_where_it_left_and_where_it_arrived(head):
    folder, path, volume, labels, ventricle = head
    axis = 0  # k: superior on this grid (checked below)
    up = np.asarray(volume.geometry.lps_from_index([0, 0, 1])) - volume.geometry.lps_from_index([0, 0, 0])
    assert up[2] == pytest.approx(1.0)
    moved_mask = np.roll(ventricle, SHIFT_MM, axis=axis)
    moved = volume.voxels.copy()
    moved[ventricle & ~moved_mask] = np.median(volume.voxels[labels == WHITE_MATTER])
    moved[moved_mask] = np.roll(volume.voxels, SHIFT_MM, axis=axis)[moved_mask]
    block = _consistency(path, _synthesized(folder, volume, moved, "moved"), folder / "moved_consistency.json")
    left, arrived = ventricle & ~moved_mask, moved_mask & ~ventricle
    # One-voxel boundary jitter is not listed (the default), so the change can come as more than
    # one region: where the ventricle left and where it arrived are listed together, but a thin
    # horn's part may stand alone (measured: 12.0 mL holding 81 % of where it left and 63 % of
    # where it arrived, 5.9 mm from where it left, and 1.6 mL around the far horn).
    involved = [r for r in block["regions"] if any("CSF" in c["description"] for c in r["changes"])]
    lost = sum(c["voxel_count"] for r in involved for c in r["changes"] if c["description"].startswith("CSF ->"))
    gained = sum(c["voxel_count"] for r in involved for c in r["changes"] if c["description"].endswith("-> CSF"))
    assert lost > 0.8 * left.sum() and gained > 0.5 * arrived.sum(), (lost, gained, left.sum(), arrived.sum())
    largest = block["regions"][0]
    assert largest in involved
    distance = np.linalg.norm(np.subtract(largest["centroid_lps_mm"], _centroid_lps(volume, left)))
    assert distance < 8.0, distance
    (k0, k1), _, _ = largest["bbox_kji"]
    assert k0 <= np.argwhere(left)[:, 0].mean() and k1 > np.argwhere(arrived)[:, 0].mean()
    # every listed region with a CSF change lies on the moved ventricle (its box, 5 mm margin)
    box = np.argwhere(left | arrived)
    for region in involved:
        centre_kji = np.asarray(region["centroid_ijk"])[::-1]
        assert np.all(centre_kji >= box.min(axis=0) - 5) and np.all(centre_kji <= box.max(axis=0) + 5), region


def test_the_denoisers_output_of_the_whole_head_agrees_with_few_regions(tmp_path, mni_t1_nifti_path):
    """An unmodified pair as the product meets it: the whole MNI152 head against the shipped
    denoiser's output of it (not edited; the whole head, since both plugins see cut slices at a
    crop's edges). Every tissue class keeps Dice >= 0.95 (measured: CSF 0.980, grey 0.991, white
    0.979) and the listed regions are few: measured 9 (one-voxel jitter and regions under
    50 mm^3 not listed; 23 with the jitter listed, 6504 with neither filter)."""
    from app.plugins.runtime import synthesize

    head = load_nifti(mni_t1_nifti_path)
    denoiser = load_manifest(PLUGIN.parent / "mr_t1_denoise")
    output = synthesize(denoiser, head, RunOptions(device="cpu", batch_size=16)).volume
    denoised = save_nifti(output, tmp_path / "denoised.nii.gz")
    block = _consistency(Path(mni_t1_nifti_path), denoised, tmp_path / "denoised_consistency.json")
    dice = {label["name"]: label["dice"] for label in block["labels"]}
    assert all(value >= 0.95 for value in dice.values()), dice
    assert len(block["regions"]) <= MAX_REGIONS_UNMODIFIED, [r["volume_ml"] for r in block["regions"]]
    assert block["region_filter"] == {
        "min_region_mm3": 50.0,
        "ignore_boundary_jitter": True,
        "description": "regions of at least 50 mm^3 listed; one-voxel boundary jitter ignored",
    }
    assert block["boundary_jitter_voxels"] > 0 and block["unlisted_regions"] > 0
