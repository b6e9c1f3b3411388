"""LPIPS from a user-supplied weights file: equal to the reference implementation (the lpips
package's own LPIPS module) on fixtures, loaded as data only, refused in one line when it is not
an LPIPS file, and LPIPS(x, x) = 0.

The weights file is made here as a user would make it, ``torch.save(lpips.LPIPS(net='alex')
.state_dict())``, with the package's own calibrated linear layers (they ship inside it) and a
randomly initialised AlexNet trunk: nothing is downloaded. lpips imports torchvision only for
``torchvision.models.alexnet(...).features``; the stand-in below provides torchvision's AlexNet
feature stack (its documented layer list) with random weights."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
import torch
from torch import nn

from app.plugins.errors import ArchitectureMismatchError, UnsafeWeightsError, WeightsFormatError
from app.plugins.lpips_metric import load_lpips, lpips_per_slice
from tests.plugins.stand_in_modules import imported_over


def _stand_in_torchvision() -> types.ModuleType:
    def alexnet(pretrained=False, **_):
        assert not pretrained, "the test never asks for downloaded weights"
        model = nn.Module()
        model.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )  # fmt: skip
        return model

    torchvision = types.ModuleType("torchvision")
    torchvision.__version__ = "0.0-stand-in"
    torchvision.models = types.ModuleType("torchvision.models")
    torchvision.models.alexnet = alexnet
    return torchvision


@pytest.fixture(scope="module")
def reference_and_file(tmp_path_factory):
    """The lpips package's LPIPS (calibrated linear layers, random trunk) and its state dict file."""
    stand_in = _stand_in_torchvision()
    with imported_over({"torchvision": stand_in, "torchvision.models": stand_in.models}, "lpips"):
        import lpips

        torch.manual_seed(0)
        reference = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    path = tmp_path_factory.mktemp("lpips") / "lpips_alex.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(5)
    j, i = np.mgrid[0:64, 0:72]
    images = [np.clip(0.5 + 0.3 * np.sin(i / (4.0 + s)) * np.cos(j / 6.0), 0, 1) for s in range(3)]
    return [(a, np.clip(a + rng.normal(0, 0.03 * (s + 1), a.shape), 0, 1)) for s, a in enumerate(images)]


def test_each_value_equals_the_lpips_package(reference_and_file, pairs):
    reference, path = reference_and_file
    loaded = load_lpips(path)
    values = lpips_per_slice(loaded, pairs)
    for (a, b), value in zip(pairs, values, strict=True):
        x = torch.tensor(a, dtype=torch.float32)[None, None].expand(-1, 3, -1, -1)
        y = torch.tensor(b, dtype=torch.float32)[None, None].expand(-1, 3, -1, -1)
        with torch.no_grad():
            expected = float(reference(x, y, normalize=True))
        assert value == pytest.approx(expected, rel=1e-5)
    assert values[0] < values[1] < values[2]  # more noise, larger distance
    import hashlib

    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_identical_images_are_at_distance_zero(reference_and_file, pairs):
    loaded = load_lpips(reference_and_file[1])
    assert lpips_per_slice(loaded, [(pairs[0][0], pairs[0][0])]) == [pytest.approx(0.0, abs=1e-7)]


def test_files_that_are_not_lpips_weights_are_refused_in_one_line(tmp_path, reference_and_file):
    other = tmp_path / "other.pth"
    torch.save(nn.Conv2d(1, 1, 3).state_dict(), other)
    with pytest.raises(ArchitectureMismatchError, match=r"^other.pth: not an LPIPS \(AlexNet, v0.1\) state dict"):
        load_lpips(other)
    state = torch.load(reference_and_file[1], weights_only=True)
    state["net.slice1.0.weight"] = state["net.slice1.0.weight"][:32]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(ArchitectureMismatchError, match="shape of net.slice1.0.weight"):
        load_lpips(tmp_path / "cut.pth")

    class RunsCode:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"net.slice1.0.weight": RunsCode()}))
    with pytest.raises(UnsafeWeightsError, match="would run code"):
        load_lpips(tmp_path / "evil.pth")
    (tmp_path / "half.pth").write_bytes(reference_and_file[1].read_bytes()[:5000])
    with pytest.raises(WeightsFormatError):
        load_lpips(tmp_path / "half.pth")


def test_slices_too_small_for_alexnet_are_a_reason(reference_and_file):
    loaded = load_lpips(reference_and_file[1])
    with pytest.raises(ValueError, match="at least 32 x 32"):
        lpips_per_slice(loaded, [(np.zeros((16, 40)), np.zeros((16, 40)))])


def test_compare_reports_lpips_with_its_hash_and_warning_and_says_why_without_it(reference_and_file, tmp_path, capsys):
    """``compare --lpips-weights``: the value, the file's SHA-256 and 'not validated for medical
    images' in the JSON and the HTML report; without the file, null and why; a wrong file: exit 2."""
    import hashlib
    import json

    from app.core.volume import Geometry, Volume
    from app.io.nifti import save_nifti
    from main import main

    rng = np.random.default_rng(2)
    j, i = np.mgrid[0:48, 0:56]
    original = np.stack([200 + 100 * np.sin(i / 5.0 + k) * np.cos(j / 7.0) for k in range(3)]).astype(np.float32)
    save_nifti(Volume(original, Geometry.identity(), modality="MR"), tmp_path / "a.nii.gz")
    noisy = original + rng.normal(0, 10, original.shape).astype(np.float32)
    save_nifti(Volume(noisy, Geometry.identity(), modality="MR"), tmp_path / "b.nii.gz")
    pair = [str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz")]
    weights = reference_and_file[1]

    out = ["--json", str(tmp_path / "c.json"), "--report", str(tmp_path / "c.html")]
    assert main(["compare", *pair, "--lpips-weights", str(weights), *out]) == 0, capsys.readouterr().err
    entry = json.loads((tmp_path / "c.json").read_text())["field_metrics"]["lpips"]
    assert 0 < entry["value"] < 1 and entry["reason"] is None
    assert entry["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry["validated_for_medical_images"] is False and entry["warning"] == "not validated for medical images"
    html = (tmp_path / "c.html").read_text()
    assert "LPIPS: not validated for medical images." in html and entry["weights_sha256"] in html
    assert "not validated for medical images" in capsys.readouterr().out

    assert main(["compare", *pair, "--field-metrics", "--json", str(tmp_path / "d.json")]) == 0
    entry = json.loads((tmp_path / "d.json").read_text())["field_metrics"]["lpips"]
    assert entry["value"] is None and "--lpips-weights PATH" in entry["reason"] and "never downloads" in entry["reason"]

    other = tmp_path / "other.pth"
    torch.save(nn.Linear(2, 2).state_dict(), other)
    for bad in (other, tmp_path / "missing.pth"):
        capsys.readouterr()
        assert main(["compare", *pair, "--lpips-weights", str(bad), "--json", str(tmp_path / "e.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"compare: --lpips-weights {bad}: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "e.json").exists()
