"""A label map written by SynthView stays a label map when read back: a NIfTI of a segmentation
read again was a plain image (modality SEG, not synthetic, not a label map), so ``export --dicom``
wrote it as an image series with no synthetic marking and ``convert`` dropped its label table.
The map of a synthesized image says so (``source_synthetic``), and is never itself synthetic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.errors import LoadError
from app.io.nifti import load_nifti, save_nifti
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, segment
from main import main
from tests.plugins.plugin_factory import make_segmentation_plugin


@pytest.fixture
def labels_of_synthetic(tmp_path):
    voxels = np.zeros((3, 16, 16), np.float32)
    voxels[:, 4:12, 4:12] = 100
    voxels[:, 6:10, 6:10] = 200
    synthesized = Volume(voxels, Geometry.identity(), "MR", name="syn", provenance=Provenance("gan", "1"))
    plugin = make_segmentation_plugin(tmp_path / "seg", input={"modality": "MR"})
    labels = segment(load_manifest(plugin), synthesized, RunOptions(device="cpu")).volume
    return save_nifti(labels, tmp_path / "labels.nii.gz"), labels


def test_the_map_of_a_synthesized_image_says_so_and_is_not_synthetic(labels_of_synthetic):
    _, labels = labels_of_synthetic
    record = labels.label_map.to_dict()
    assert not labels.is_synthetic and record["synthetic"] is False and record["source_synthetic"] is True
    assert "of a SYNTHETIC image" in labels.label_map.label()


def test_a_label_map_read_back_is_a_label_map_with_its_table(labels_of_synthetic):
    path, labels = labels_of_synthetic
    back = load_nifti(path)
    assert back.is_label_map and not back.is_synthetic and back.modality == "SEG"
    assert back.label_map.labels == labels.label_map.labels
    assert back.label_map.source_synthetic is True and back.label_map.plugin_name == "tiny-tissue-seg"
    np.testing.assert_array_equal(back.voxels, labels.voxels)


def test_export_refuses_a_label_map_read_back_as_an_image_series_and_convert_keeps_it(
    labels_of_synthetic, tmp_path, capsys
):
    path, _ = labels_of_synthetic
    assert main(["export", str(path), "--dicom", str(tmp_path / "series")]) == 2
    assert "a label map (segmentation) is not an image" in capsys.readouterr().err
    assert not (tmp_path / "series").exists()
    assert main(["convert", str(path), str(tmp_path / "copy.nii.gz")]) == 0
    copied = json.loads((tmp_path / "copy.json").read_text())["LabelMap"]
    assert copied["source_synthetic"] is True and copied["synthetic"] is False
    assert main(["info", str(path)]) == 0
    assert "[LABEL MAP: tiny-tissue-seg 0.1.0, derived, of a SYNTHETIC image, not an image]" in capsys.readouterr().out


def test_without_its_sidecar_the_header_still_says_label_map(labels_of_synthetic):
    path, _ = labels_of_synthetic
    path.with_name("labels.json").unlink()
    back = load_nifti(path)
    assert back.is_label_map and not back.is_synthetic


def test_a_damaged_label_table_is_a_clear_load_error(labels_of_synthetic):
    path, _ = labels_of_synthetic
    sidecar = path.with_name("labels.json")
    record = json.loads(sidecar.read_text())
    record["LabelMap"]["labels"] = [{"name": "no value"}]
    sidecar.write_text(json.dumps(record))
    with pytest.raises(LoadError, match="LabelMap block is damaged"):
        load_nifti(path)
