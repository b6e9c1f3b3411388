"""Manifest validation: a good manifest gives typed fields; every mistake gets its own line."""

from __future__ import annotations

import pytest
import yaml

from app.plugins.errors import ManifestError
from app.plugins.manifest import load_manifest
from tests.plugins.plugin_factory import manifest_data, write_manifest

GOOD_SHA = "a" * 64


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "latest_net_G.pth").write_bytes(b"x")
    return tmp_path


def test_valid_manifest_gives_typed_fields_and_training_domain(plugin_dir):
    write_manifest(plugin_dir, manifest_data("latest_net_G.pth", GOOD_SHA, spacing_mm=[1.0, 1.0]))
    manifest = load_manifest(plugin_dir)
    assert manifest.name == "tiny-mr2ct" and manifest.task == "cross-modality"
    assert manifest.weights.path == (plugin_dir / "latest_net_G.pth").resolve()
    assert manifest.architecture.type == "resnet_6blocks" and manifest.size_multiple == 4
    assert manifest.accepts_modality("mr") and not manifest.accepts_modality("CT")
    domain = manifest.declared_training_domain()
    assert domain["modalities"] == ["MR"] and domain["body_parts"] == ["head"]
    # spacing_mm is the plugin's own image frame (rows, columns) and the runtime resamples to it,
    # so it is not compared with the volume's (i, j, k) spacing before a run.
    assert manifest.spacing_mm == (1.0, 1.0) and "spacing_mm" not in domain
    assert "Known limits: produces noise" in manifest.model_card_text()


def test_every_mistake_is_reported_with_its_field(plugin_dir):
    data = manifest_data("latest_net_G.pth", "not-a-hash", task="colourise", colour="blue")
    del data["plane"]
    del data["model_card"]["known_limits"]
    write_manifest(plugin_dir, data)
    with pytest.raises(ManifestError) as caught:
        load_manifest(plugin_dir)
    text = str(caught.value)
    assert "weights.sha256: 'not-a-hash' is not a SHA-256" in text
    assert "task: 'colourise' is not one of" in text
    assert "unknown field(s)" in text and "colour" in text
    assert "missing required field 'plane' (2D and 2.5D plugins must say which plane" in text
    assert "model_card: 'known_limits' is a required property" in text


def test_unknown_normalisation_method_names_the_choices(plugin_dir):
    data = manifest_data("latest_net_G.pth", GOOD_SHA)
    data["normalization"]["input"] = {"method": "zscore"}
    data["normalization"]["output"] = {"method": "window", "low": 1000}
    write_manifest(plugin_dir, data)
    with pytest.raises(ManifestError) as caught:
        load_manifest(plugin_dir)
    text = str(caught.value)
    assert (
        "normalization.input.method: unknown method 'zscore'; choose one of window, percentile, none" in text
    )
    assert "normalization.output: 'high' is a required property" in text


def test_semantic_rules_window_order_and_2_5d_channels(plugin_dir):
    data = manifest_data("latest_net_G.pth", GOOD_SHA, dimensionality="2.5D", context_slices=4)
    data["normalization"]["output"] = {"method": "window", "low": 500, "high": -500}
    write_manifest(plugin_dir, data)
    with pytest.raises(ManifestError) as caught:
        load_manifest(plugin_dir)
    text = str(caught.value)
    assert "context_slices: must be odd" in text
    assert "architecture.input_nc: a 2.5D plugin takes 4 channels, got 1" in text
    assert "normalization.output: low must be below high" in text


def test_missing_weights_file_is_named(tmp_path):
    write_manifest(tmp_path, manifest_data("nowhere.pth", GOOD_SHA))
    with pytest.raises(ManifestError, match=r"weights.file: .*nowhere.pth does not exist"):
        load_manifest(tmp_path)


def test_yaml_that_would_construct_python_objects_is_refused(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "plugin.yaml").write_text(f"version: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert not marker.exists()
    text = str(caught.value)  # one line: file:line, what is wrong, what to do; no caret excerpt
    assert "\n" not in text and "^" not in text
    assert text.startswith(f"{tmp_path / 'plugin.yaml'}:2: YAML tags") and "remove the tag" in text


def test_folder_without_manifest_and_non_mapping(tmp_path):
    with pytest.raises(ManifestError, match="no plugin manifest found"):
        load_manifest(tmp_path)
    (tmp_path / "plugin.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ManifestError, match="a manifest is a mapping"):
        load_manifest(tmp_path)


def test_toml_manifest_is_accepted(plugin_dir):
    (plugin_dir / "plugin.toml").write_text(
        """
name = "toml-plugin"
version = "1"
task = "denoising"
dimensionality = "2D"
plane = "coronal"
input = { modality = "CT" }
output = { modality = "CT", units = "HU" }
normalization = { input = { method = "window", low = -1000, high = 1000 }, output = { method = "same_as_input" } }
architecture = { type = "unet_128", norm = "batch" }
weights = { file = "latest_net_G.pth", sha256 = "SHA" }
model_card = { training_data = "t", paired = true, intended_use = "u", known_limits = "k" }
""".replace("SHA", GOOD_SHA)
    )
    manifest = load_manifest(plugin_dir)
    assert manifest.name == "toml-plugin" and manifest.patch_size == (128, 128)


def test_misspelt_dimensionality_is_not_reported_as_a_2_5d_plugin(plugin_dir):
    data = manifest_data("latest_net_G.pth", "0" * 64)
    data["dimensionalty"] = data.pop("dimensionality")
    write_manifest(plugin_dir, data)
    with pytest.raises(ManifestError) as caught:
        load_manifest(plugin_dir)
    text = str(caught.value)
    assert "missing required field 'dimensionality'" in text and "dimensionalty" in text
    assert "context_slices" not in text and "2.5D" not in text


def test_3d_plugin_with_two_spacing_values_is_refused_not_silently_ignored(plugin_dir):
    data = manifest_data(
        "latest_net_G.pth",
        GOOD_SHA,
        dimensionality="3D",
        architecture={"type": "torchscript"},
        spacing_mm=[2, 2],
    )
    del data["plane"]
    write_manifest(plugin_dir, data)
    with pytest.raises(ManifestError, match=r"spacing_mm: a 3D plugin needs 3 values \[i, j, k\], got 2"):
        load_manifest(plugin_dir)


@pytest.mark.parametrize(
    ("task", "input_kind", "output_kind", "keeps"),
    [
        ("denoising", {"modality": "MR", "contrast": "T1"}, {"modality": "MR"}, True),
        ("super-resolution", {"modality": "MR"}, {"modality": "MR"}, True),
        ("cross-modality", {"modality": "MR"}, {"modality": "CT", "units": "HU"}, False),
        # A cross-contrast task changes the kind even when neither contrast is declared.
        ("cross-contrast", {"modality": "MR"}, {"modality": "MR"}, False),
        ("denoising", {"modality": "MR", "contrast": "T1"}, {"modality": "MR", "contrast": "T2"}, False),
        ("denoising", {"modality": "MR"}, {"modality": "CT", "units": "HU"}, False),
    ],
)
def test_keeps_image_kind_is_false_for_every_kind_change(plugin_dir, task, input_kind, output_kind, keeps):
    data = manifest_data("latest_net_G.pth", GOOD_SHA, task=task, input=input_kind, output=output_kind)
    write_manifest(plugin_dir, data)
    assert load_manifest(plugin_dir).keeps_image_kind is keeps
