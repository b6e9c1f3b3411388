"""FID from a user-supplied weights file: the network's state dict has pytorch-fid's key names and
shapes exactly, its features equal pytorch-fid's ``InceptionV3`` on the same images, the Fréchet
distance equals pytorch-fid's ``calculate_frechet_distance``; the file is loaded as data only and a
wrong file is refused in one line; ``compare --fid-weights`` reports the value with the number of
images, the small-sample warning and 'not validated for medical images'.

The weights file is made as a user would make it (``torch.save(fid_inception_v3().state_dict())``)
but with random weights: pytorch-fid's download is patched out (tests/plugins/fid_reference.py)."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from app.plugins.errors import ArchitectureMismatchError, UnsafeWeightsError, WeightsFormatError
from app.plugins.fid_metric import FidInceptionV3, fid_entry, fid_features, frechet_distance, load_fid
from tests.plugins.fid_reference import pytorch_fid_modules, reference_inception


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """pytorch-fid's network (random weights), its feature extractor, its Fréchet distance and
    the weights file."""
    with pytorch_fid_modules() as (inception_module, fid_score):
        network, extractor = reference_inception(inception_module, seed=3)
        calculate_frechet_distance = fid_score.calculate_frechet_distance
    path = tmp_path_factory.mktemp("fid") / "pt_inception-random.pth"
    torch.save(network.state_dict(), path)
    return network, extractor, calculate_frechet_distance, path


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    j, i = np.mgrid[0:61, 0:75]
    return [
        np.clip(0.5 + 0.4 * np.sin(i / (3.0 + s)) * np.cos(j / 5.0) + rng.normal(0, 0.05, i.shape), 0, 1)
        for s in range(3)
    ]


def test_state_dict_keys_and_shapes_are_pytorch_fids_exactly(reference):
    expected = reference[0].state_dict()
    ours = FidInceptionV3().state_dict()
    assert list(ours) == list(expected)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    assert ours["fc.weight"].shape == (1008, 2048) and not any(k.startswith("AuxLogits") for k in ours)


def test_features_equal_pytorch_fids_inception(reference, images):
    _, extractor, _, path = reference
    loaded = load_fid(path)
    ours = fid_features(loaded, images, batch_size=2)  # two batches
    x = torch.from_numpy(np.stack(images).astype(np.float32))[:, None].expand(-1, 3, -1, -1)
    with torch.no_grad():
        expected = extractor(x)[0].squeeze(-1).squeeze(-1).double().numpy()
    assert ours.shape == (3, 2048)
    assert np.abs(expected).max() > 0.1  # the random network still carries signal to the pool
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("samples_a", "samples_b", "dims", "rtol"),
    [(300, 280, 64, 1e-10), (20, 23, 256, 1e-6), (5, 4, 1024, 1e-6)],
    ids=["more-samples-than-features", "rank-deficient", "one-volume-like"],
)
def test_frechet_distance_equals_pytorch_fids(reference, samples_a, samples_b, dims, rtol):
    calculate_frechet_distance = reference[2]
    rng = np.random.default_rng(dims)
    a = rng.normal(size=(samples_a, dims)) @ rng.normal(size=(dims, dims)) / np.sqrt(dims)
    b = 1.2 * rng.normal(size=(samples_b, dims)) @ rng.normal(size=(dims, dims)) / np.sqrt(dims) + 0.3
    expected = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=rtol)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9 * float(np.sum(a**2)))


def test_entry_says_how_many_images_and_that_fid_is_not_validated(reference, images):
    loaded = load_fid(reference[3])
    pairs = [(image, np.clip(image + 0.2, 0, 1)) for image in images]
    entry = fid_entry(loaded, pairs).to_dict()
    assert entry["value"] > 0 and entry["images_per_set"] == 3
    assert (
        entry["warning"] == "not validated for medical images"
        and entry["validated_for_medical_images"] is False
    )
    assert "3 image(s) per set: a small-sample statistic" in entry["sample_note"]
    same = fid_entry(loaded, [(image, image) for image in images]).to_dict()
    assert same["value"] == pytest.approx(0.0, abs=1e-6)
    one = fid_entry(loaded, pairs[:1]).to_dict()
    assert one["value"] is None and "at least 2" in one["reason"]
    absent = fid_entry(None, pairs).to_dict()
    assert (
        absent["value"] is None
        and "--fid-weights PATH" in absent["reason"]
        and "never downloads" in absent["reason"]
    )


def test_files_that_are_not_fid_weights_are_refused_in_one_line(tmp_path, reference):
    other = tmp_path / "other.pth"
    torch.save(nn.Conv2d(1, 1, 3).state_dict(), other)
    with pytest.raises(
        ArchitectureMismatchError, match=r"^other.pth: not the FID Inception-v3 .*missing Conv2d_1a"
    ):
        load_fid(other)
    state = torch.load(reference[3], weights_only=True)
    state["Mixed_6b.branch7x7_2.conv.weight"] = state["Mixed_6b.branch7x7_2.conv.weight"].transpose(2, 3)
    torch.save(state, tmp_path / "transposed.pth")
    with pytest.raises(
        ArchitectureMismatchError, match=r"shape of Mixed_6b.branch7x7_2.conv.weight is \(128, 128, 7, 1\)"
    ):
        load_fid(tmp_path / "transposed.pth")
    state = torch.load(reference[3], weights_only=True)
    state["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    torch.save(state, tmp_path / "aux.pth")
    with pytest.raises(ArchitectureMismatchError, match="unexpected AuxLogits.fc.weight"):
        load_fid(tmp_path / "aux.pth")

    class RunsCode:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"Conv2d_1a_3x3.conv.weight": RunsCode()}))
    with pytest.raises(UnsafeWeightsError, match="would run code"):
        load_fid(tmp_path / "evil.pth")
    (tmp_path / "half.pth").write_bytes(reference[3].read_bytes()[:5000])
    with pytest.raises(WeightsFormatError):
        load_fid(tmp_path / "half.pth")


def test_a_file_without_batch_norm_step_counters_loads(tmp_path, reference, images):
    """Files written before torch 0.4.1 have no ``num_batches_tracked``; evaluation never uses it."""
    state = torch.load(reference[3], weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    np.testing.assert_array_equal(
        fid_features(load_fid(tmp_path / "old.pth"), images[:1]),
        fid_features(load_fid(reference[3]), images[:1]),
    )


def test_compare_reports_fid_with_its_sample_size_hash_and_warning(reference, tmp_path, capsys):
    from app.core.volume import Geometry, Volume
    from app.io.nifti import save_nifti
    from main import main

    rng = np.random.default_rng(2)
    j, i = np.mgrid[0:48, 0:56]
    original = np.stack([200 + 100 * np.sin(i / 5.0 + k) * np.cos(j / 7.0) for k in range(4)]).astype(
        np.float32
    )
    save_nifti(Volume(original, Geometry.identity(), modality="MR"), tmp_path / "a.nii.gz")
    noisy = original + rng.normal(0, 20, original.shape).astype(np.float32)
    save_nifti(Volume(noisy, Geometry.identity(), modality="MR"), tmp_path / "b.nii.gz")
    pair = [str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz")]
    weights = reference[3]

    out = ["--json", str(tmp_path / "c.json"), "--report", str(tmp_path / "c.html")]
    assert main(["compare", *pair, "--fid-weights", str(weights), *out]) == 0, capsys.readouterr().err
    entry = json.loads((tmp_path / "c.json").read_text())["field_metrics"]["fid"]
    assert entry["value"] > 0 and entry["reason"] is None and entry["images_per_set"] == 4
    assert entry["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry["validated_for_medical_images"] is False
    html = (tmp_path / "c.html").read_text()
    assert "FID: not validated for medical images." in html and "4 image(s) per set" in html
    printed = capsys.readouterr().out
    assert "FID " in printed and "not validated for medical images; 4 image(s) per set" in printed

    assert main(["compare", *pair, "--field-metrics", "--json", str(tmp_path / "d.json")]) == 0
    entry = json.loads((tmp_path / "d.json").read_text())["field_metrics"]["fid"]
    assert entry["value"] is None and "--fid-weights PATH" in entry["reason"]

    other = tmp_path / "other.pth"
    torch.save(nn.Linear(2, 2).state_dict(), other)
    for bad in (other, tmp_path / "missing.pth"):
        capsys.readouterr()
        assert main(["compare", *pair, "--fid-weights", str(bad), "--json", str(tmp_path / "e.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"compare: --fid-weights {bad}: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "e.json").exists()
