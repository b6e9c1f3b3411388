"""Segmentation plugins: the manifest's label table, the runtime's label maps (argmax, no output
scaling, nearest resampling), and a label map never passing for an image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from app.core.volume import Geometry, Volume
from app.plugins.errors import ManifestError, PluginError
from app.plugins.manifest import ArchitectureSpec, load_manifest
from app.plugins.runtime import RunOptions, segment, synthesize
from tests.plugins.plugin_factory import (
    make_builtin_plugin,
    make_segmentation_plugin,
    make_torchscript_plugin,
    segmentation_overrides,
    write_manifest,
)

CPU = RunOptions(device="cpu", batch_size=4)


def three_tissue_volume(shape=(6, 20, 24), spacing=(0.9, 0.8, 2.0)) -> tuple[Volume, np.ndarray]:
    """Intensities 0 / 100 / 200 in three bands (plus small noise) and the labels they should get."""
    expected = np.zeros(shape, dtype=np.int16)
    expected[:, 5:15, 4:12] = 1
    expected[:, 5:15, 12:20] = 2
    noise = np.random.default_rng(0).uniform(-20, 20, size=shape)
    voxels = (expected * 100.0 + noise).astype(np.float32)
    geometry = Geometry(np.array([-10.0, 5.0, 40.0]), np.array(spacing), np.eye(3))
    return Volume(voxels, geometry, modality="MR", name="t1.nii.gz"), expected


def test_manifest_reads_the_label_table_with_default_colours_and_codes(tmp_path):
    manifest = load_manifest(make_segmentation_plugin(tmp_path / "seg"))
    assert manifest.is_segmentation
    assert [(e.value, e.name) for e in manifest.labels] == [
        (0, "background"),
        (1, "grey matter"),
        (2, "white matter"),
    ]
    assert manifest.labels[1].colour_rgb == (200, 120, 120)
    assert manifest.labels[1].code.scheme == "SCT" and manifest.labels[1].code.value == "389079008"
    assert manifest.labels[0].colour_rgb == (0, 0, 0)  # from the default palette
    assert "Labels: 0 background, 1 grey matter, 2 white matter" in manifest.model_card_text()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("labels"), "missing required field 'labels'"),
        (lambda d: d.update(task="denoising"), "labels: only a segmentation plugin has a label table"),
        (
            lambda d: d["labels"].append({"value": 1, "name": "again"}),
            "labels: value 1 is listed more than once",
        ),
        (lambda d: d["labels"][1].update(color=[300, 0, 0]), "labels.1.color.0: 300 is out of range"),
        (lambda d: d["labels"][1].update(code={"scheme": "SCT"}), "labels.1.code"),
    ],
)
def test_a_bad_label_table_is_refused_naming_the_field(tmp_path, change, expected):
    folder = make_segmentation_plugin(tmp_path / "seg")
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    change(data)
    write_manifest(folder, data)
    with pytest.raises(ManifestError) as error:
        load_manifest(folder)
    assert expected in str(error.value)


def test_2d_segmentation_gives_integer_labels_on_the_input_grid_not_a_synthetic_image(tmp_path):
    volume, expected = three_tissue_volume()
    result = segment(load_manifest(make_segmentation_plugin(tmp_path / "seg")), volume, CPU)
    labels = result.volume
    assert labels.voxels.dtype == np.int16
    np.testing.assert_array_equal(labels.voxels, expected)
    assert labels.geometry is volume.geometry
    assert not labels.is_synthetic and labels.provenance is None
    assert labels.is_label_map
    record = labels.label_map.to_dict()
    assert record["kind"] == "derived label map" and record["synthetic"] is False
    assert [entry["name"] for entry in record["labels"]] == ["background", "grey matter", "white matter"]
    assert record["parameters"]["input_scaling"]["method"] == "window"
    assert "LABEL MAP" in labels.label_map.label() and "SYNTHETIC" not in labels.label_map.label()
    assert labels.modality == "SEG"


def test_3d_segmentation_resampled_to_the_training_spacing_keeps_whole_labels(tmp_path):
    volume, expected = three_tissue_volume(shape=(8, 20, 24), spacing=(1.0, 1.0, 1.0))
    folder = make_segmentation_plugin(tmp_path / "seg3d", "3D", spacing_mm=[1.7, 1.3, 2.1])
    result = segment(load_manifest(folder), volume, CPU)
    assert set(np.unique(result.volume.voxels).tolist()) <= {0, 1, 2}  # nearest: no label "1.5"
    assert result.volume.voxels.shape == expected.shape
    assert (result.volume.voxels == expected).mean() > 0.85  # only the band edges move
    assert any("training spacing" in m or "resampled" in m for m in result.messages)


def test_a_random_state_dict_generator_with_three_outputs_segments(tmp_path):
    spec = ArchitectureSpec("resnet_6blocks", 1, 3, ngf=4, norm="instance")
    overrides = segmentation_overrides()
    overrides["normalization"] = {
        "input": {"method": "percentile", "low_percentile": 1, "high_percentile": 99},
        "output": {"method": "none"},
    }
    folder = make_builtin_plugin(tmp_path / "rand", spec, seed=3, **overrides)
    volume, _ = three_tissue_volume(shape=(2, 16, 16))
    labels = segment(load_manifest(folder), volume, CPU).volume.voxels
    assert labels.dtype == np.int16 and set(np.unique(labels).tolist()) <= {0, 1, 2}


def test_synthesize_refuses_a_segmentation_plugin_and_segment_an_image_plugin(tmp_path):
    volume, _ = three_tissue_volume(shape=(2, 8, 8))
    with pytest.raises(PluginError, match="segmentation plugin: it makes label maps, not images"):
        synthesize(load_manifest(make_segmentation_plugin(tmp_path / "seg")), volume, CPU)
    image_plugin = make_builtin_plugin(tmp_path / "gan")
    with pytest.raises(PluginError, match="not a segmentation plugin"):
        segment(load_manifest(image_plugin), volume.with_voxels(volume.voxels), CPU)


class FourChannels(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x * 0, x * 0, x * 0, x * 0 + 1], dim=1)


class NotANumber(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x * float("nan"), x], dim=1)


class TwoChannels(torch.nn.Module):
    """Fewer channels than the table's labels: 'white matter' could never come out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([-x, x], dim=1)


class LabelThree(torch.nn.Module):
    """One channel of labels (the network returns the labels themselves), one not in the table."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0 + 3


def test_a_label_outside_the_table_or_nan_output_is_refused(tmp_path):
    volume, _ = three_tissue_volume(shape=(2, 8, 8))
    four = make_torchscript_plugin(tmp_path / "four", FourChannels(), **segmentation_overrides())
    with pytest.raises(PluginError, match="returns 4 channels but the label table runs 0-2"):
        segment(load_manifest(four), volume, CPU)
    three = make_torchscript_plugin(tmp_path / "three", LabelThree(), **segmentation_overrides())
    with pytest.raises(PluginError, match="returned label 3, which its label table does not list"):
        segment(load_manifest(three), volume, CPU)
    nan = make_torchscript_plugin(tmp_path / "nan", NotANumber(), **segmentation_overrides())
    with pytest.raises(PluginError, match="NaN"):
        segment(load_manifest(nan), volume, CPU)


def test_plugins_check_checks_the_channels_against_the_label_table(tmp_path):
    from app.plugins.contract import check_plugin

    steps = check_plugin(make_segmentation_plugin(tmp_path / "seg"))
    assert all(step.passed for step in steps), steps
    assert "argmax over 3 channels, 3 labels" in steps[-1].detail
    four = make_torchscript_plugin(tmp_path / "four", FourChannels(), **segmentation_overrides())
    steps = check_plugin(four)
    assert not steps[-1].passed
    assert "returns 4 channels but the label table runs 0-2" in steps[-1].detail


@pytest.mark.parametrize("module", [TwoChannels(), FourChannels()])
def test_output_channels_that_disagree_with_the_label_table_are_refused_at_run_time(tmp_path, module):
    """Not only in ``plugins check``: with 2 channels for 3 labels the run gave 'white matter: in
    neither map' (Dice n/a) as if the tissue were absent; with 4 it ran whenever channel 3 lost."""
    volume, _ = three_tissue_volume(shape=(2, 8, 8))
    folder = make_torchscript_plugin(tmp_path / "seg", module, **segmentation_overrides())
    with pytest.raises(PluginError, match=r"channels but the label table runs 0-2.*nothing was produced"):
        segment(load_manifest(folder), volume, CPU)
