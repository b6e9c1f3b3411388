"""Bring your own segmentation network: a MONAI UNet (the class MONAI users train), wrapped to
take SynthView's (N, C, k, j, i) array in the (N, C, i, j, k) order MONAI's LoadImage gave it in
training, exported to TorchScript and to ONNX as plugins/README.md describes, described by a
plugin.yaml, runs through the manifest and the runtime: the label map of a NIfTI file is the
network's own argmax on nibabel's array of that file (scaled as the manifest says), the same
from both exports, and ``compare --segment`` compares it end to end."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, segment
from main import main
from tests.plugins.plugin_factory import THREE_TISSUE_LABELS, sha256

UNet = pytest.importorskip("monai.networks.nets").UNet  # pinned in requirements.txt (tests only)

WINDOW = (0.0, 200.0)  # the scan's intensities the network was trained on, to network range 0..1
SHAPE = (8, 20, 24)  # k, j, i: multiples of 4 (two stride-2 levels)


class AsMonaiSawIt(torch.nn.Module):
    """plugins/README.md's wrapper: SynthView gives a 3D plugin the stored array (N, C, k, j, i);
    MONAI's LoadImage gave the network nibabel's (N, C, i, j, k)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 1, 4, 3, 2)).permute(0, 1, 4, 3, 2)


def monai_unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8, 16), strides=(2, 2), num_res_units=1).eval()


def plugin_yaml(name: str, weights: Path, architecture: str) -> dict:
    return {
        "schema_version": 1,
        "name": name,
        "version": "1.0.0",
        "task": "segmentation",
        "input": {"modality": "MR", "contrast": "T1"},
        "output": {"modality": "SEG"},
        "labels": THREE_TISSUE_LABELS,
        "dimensionality": "3D",
        "size_multiple": 4,
        "normalization": {
            "network_range": [0, 1],
            "input": {"method": "window", "low": WINDOW[0], "high": WINDOW[1]},
            "output": {"method": "none"},
        },
        "architecture": {"type": architecture, "input_nc": 1, "output_nc": 3},
        "weights": {"file": weights.name, "sha256": sha256(weights)},
        "model_card": {
            "training_data": "none: random weights (a stand-in for a trained MONAI network)",
            "paired": False,
            "intended_use": "tests only",
            "known_limits": "random labels",
        },
        "training_domain": {"modalities": ["MR"], "body_parts": ["head"]},
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The MONAI UNet and two plugin folders: TorchScript and ONNX exports of it."""
    root = tmp_path_factory.mktemp("byo")
    net = AsMonaiSawIt(monai_unet()).eval()
    folders = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript / the legacy ONNX exporter are deprecated upstream
        folders["torchscript"] = root / "monai-seg"
        folders["torchscript"].mkdir()
        torch.jit.script(net).save(str(folders["torchscript"] / "model.pt"))
        folders["onnx"] = root / "monai-seg-onnx"
        folders["onnx"].mkdir()
        torch.onnx.export(
            net,
            torch.zeros(1, 1, *SHAPE),
            str(folders["onnx"] / "model.onnx"),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch", 2: "k", 3: "j", 4: "i"}, "logits": {0: "batch", 2: "k", 3: "j", 4: "i"}},
        )
    for kind, folder in folders.items():
        weights = folder / ("model.pt" if kind == "torchscript" else "model.onnx")
        (folder / "plugin.yaml").write_text(yaml.safe_dump(plugin_yaml(folder.name, weights, kind), sort_keys=False))
    return {"net": net, **folders}


def head_like_volume(shape=SHAPE) -> Volume:
    """Three bands of intensity 20 / 100 / 180 with noise, on an oblique-free 1 x 1.2 x 2 mm grid."""
    rng = np.random.default_rng(1)
    k, j, i = np.indices(shape)
    voxels = 20.0 + 80.0 * (i >= 8) + 80.0 * (i >= 16) + rng.normal(0, 10, shape)
    geometry = Geometry(np.array([-12.0, 10.0, 30.0]), np.array([1.0, 1.2, 2.0]), np.eye(3))
    return Volume(voxels.astype(np.float32), geometry, modality="MR", name="t1.nii.gz")


def test_the_label_map_is_the_networks_own_argmax_on_nibabels_array_from_both_exports(exported, tmp_path):
    from app.io.loader import load_volume

    volume = head_like_volume()
    save_nifti(volume, tmp_path / "t1.nii.gz")
    as_monai_loads_it = np.asarray(nib.load(tmp_path / "t1.nii.gz").get_fdata(), dtype=np.float32)  # (i, j, k)
    scaled = np.clip((as_monai_loads_it - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0, 1)
    with torch.no_grad():
        expected_ijk = exported["net"].net(torch.from_numpy(scaled)[None, None]).argmax(1)[0].numpy()
    assert len(np.unique(expected_ijk)) == 3  # the random network does not give one label everywhere
    loaded = load_volume(tmp_path / "t1.nii.gz")
    for kind in ("torchscript", "onnx"):
        result = segment(load_manifest(exported[kind]), loaded, RunOptions(device="cpu"))
        labels = result.volume.voxels
        assert labels.shape == SHAPE and labels.dtype == np.int16
        assert np.mean(labels.T == expected_ijk) > 0.999, kind  # ONNX Runtime may round a tie differently
        assert result.volume.geometry.allclose(loaded.geometry)
        assert result.volume.label_map.plugin_name == exported[kind].name


def test_plugins_check_accepts_both_exports(exported, capsys):
    for kind in ("torchscript", "onnx"):
        assert main(["plugins", "check", str(exported[kind])]) == 0, capsys.readouterr().out
        out = capsys.readouterr().out
        assert all(row.startswith("ok ") for row in out.splitlines()), out


def test_compare_segment_runs_the_exported_network_end_to_end(exported, tmp_path, capsys):
    original = head_like_volume()
    changed = original.voxels.copy()
    changed[2:6, 4:12, 2:8] = 180.0  # a block of the first band given the third band's intensity
    save_nifti(original, tmp_path / "original.nii.gz")
    save_nifti(Volume(changed, original.geometry, modality="MR"), tmp_path / "synthesized.nii.gz")
    # The exported network is untrained: its label map is salt and pepper, so nearly every changed
    # voxel has the new label next door and the default filter would dismiss most of the block as
    # one-voxel boundary jitter. This test is about the exported network running end to end, not
    # about that filter (tests/analysis/test_seg_consistency*.py): every differing voxel is kept.
    segment_option = ["--segment", str(exported["torchscript"]), "--segment-keep-jitter"]
    argv = ["compare", str(tmp_path / "original.nii.gz"), str(tmp_path / "synthesized.nii.gz"), *segment_option]
    assert main([*argv, "--json", str(tmp_path / "c.json")]) == 0, capsys.readouterr().err
    block = json.loads((tmp_path / "c.json").read_text())["consistency"]
    assert block["segmentations"]["original"]["plugin_name"] == "monai-seg"
    assert block["regions"], "the changed block segments differently"
    inside = [r for r in block["regions"] if r["volume_ml"] == max(x["volume_ml"] for x in block["regions"])][0]
    # LPS of the block's centre: origin + index * spacing (identity direction), i 2..7, j 4..11, k 2..5
    centre = np.array([-12.0, 10.0, 30.0]) + np.array([4.5, 7.5, 3.5]) * np.array([1.0, 1.2, 2.0])
    assert np.linalg.norm(np.array(inside["centroid_lps_mm"]) - centre) < 6.0
    argv = ["compare", str(tmp_path / "original.nii.gz"), str(tmp_path / "original.nii.gz"), *segment_option]
    assert main([*argv, "--json", str(tmp_path / "same.json")]) == 0, capsys.readouterr().err
    same = json.loads((tmp_path / "same.json").read_text())["consistency"]
    assert not same["regions"] and all(label["dice"] in (1.0, None) for label in same["labels"])
