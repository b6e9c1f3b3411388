"""``plugins diversity``: a collapsed generator that copies a real slice is caught on both counts;
the shipped generator's own training images, fed back, are all flagged (and near-copies of them),
slices of the held-out head are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from app.analysis.diversity import (
    MEMORISATION_MS_SSIM,
    check_generator,
    nearest_real_images,
    weights_for_shape,
)
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from app.plugins.diversity_check import TRAINING_AUGMENTATION, located_real_slices, real_slices
from app.plugins.training.memorisation import NEAR_COPIES, near_copies
from main import main
from tests.plugins.plugin_factory import make_builtin_plugin, make_torchscript_plugin

WEIGHTS_64 = weights_for_shape((64, 64))


def blobs(seed: int) -> np.ndarray:
    """A binary 64 x 64 image of a few discs (values 0 and 1)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((64, 64))
    image = np.zeros((64, 64), np.float32)
    for _ in range(6):
        r, c, radius = rng.integers(8, 56), rng.integers(8, 56), rng.integers(4, 10)
        image[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = 1.0
    image[14:50, 14:50] = np.maximum(image[14:50, 14:50], 0.6)  # enough content in every slice
    image[[0, -1], :] = image[:, [0, -1]] = 0.5  # a frame: the head's box is the whole image (no recentring)
    return image


class CopyGenerator(torch.nn.Module):
    """Ignores its latent: always the same image (mode collapse and memorisation at once)."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.latent_dim = 8
        self.register_buffer("image", torch.from_numpy(image * 2 - 1)[None, None])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(z.shape[0], 1, 64, 64) + 0 * z.sum()


def generation_plugin(tmp_path, image=None, module=None):
    """A 64 x 64 generation plugin: a CopyGenerator of ``image``, or any ``module`` given."""
    folder = make_torchscript_plugin(tmp_path / "gen", module if module is not None else CopyGenerator(image))
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    data.pop("input")
    data.update(
        name="copy-gan",
        task="generation",
        output={"modality": "MR", "contrast": "T1"},
        normalization={
            "network_range": [-1.0, 1.0],
            "input": {"method": "none"},
            "output": {"method": "window", "low": 0.0, "high": 1.0},
        },
        spacing_mm=[4.0, 4.0],
        patch_size=[64, 64],
    )
    (folder / "plugin.yaml").write_text(yaml.safe_dump(data))
    return folder


def real_volume(flipped: bool = False) -> Volume:
    """Axial slices: the copied image at k = 2, other blob images elsewhere; 4 mm pixels."""
    slices = [blobs(10 + k) for k in range(6)]
    slices[2] = blobs(0)
    voxels = np.stack(slices)
    direction = np.eye(3)
    if flipped:  # the same anatomy stored RAS-style: i and j reversed
        voxels, direction = voxels[:, ::-1, ::-1].copy(), np.diag([-1.0, -1.0, 1.0])
    return Volume(voxels, Geometry(np.zeros(3), np.array([4.0, 4.0, 5.0]), direction), "MR", name="real")


def test_real_slices_are_oriented_as_the_generator_sees_them():
    plain = real_slices(real_volume(), "axial", (4.0, 4.0), (64, 64))
    flipped = real_slices(real_volume(flipped=True), "axial", (4.0, 4.0), (64, 64))
    assert len(plain) == 6 and np.array_equal(plain[2], blobs(0))
    np.testing.assert_array_equal(np.stack(plain), np.stack(flipped))
    half = real_slices(real_volume(), "axial", (8.0, 8.0), (32, 32))  # coarser generator pixels
    assert half[0].shape == (32, 32)


def test_collapsed_copying_generator_is_flagged(tmp_path, capsys):
    folder = generation_plugin(tmp_path, blobs(0))
    real_path = save_nifti(real_volume(flipped=True), tmp_path / "real.nii.gz")
    out = tmp_path / "diversity.json"
    args = [
        "plugins",
        "diversity",
        str(folder),
        "--real",
        str(real_path),
        "--samples",
        "3",
        "--json",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "mode collapse suspected: YES" in printed and "seed 0, seed 1, seed 2" in printed
    data = json.loads(out.read_text())
    assert data["samples_mean_pairwise_ms_ssim"] > 0.999 and data["real_mean_pairwise_ms_ssim"] < 0.9
    assert data["ms_ssim_scales"] == 3 and data["possibly_memorised"] == [0, 1, 2]
    assert {n["real_index"] for n in data["nearest_real"]} == {2}
    assert [pair["samples"] for pair in data["near_duplicate_pairs"]] == [[0, 1], [0, 2], [1, 2]]


def test_bad_inputs_are_one_clear_line(tmp_path, capsys):
    translation = make_builtin_plugin(tmp_path / "mr2ct")
    real_path = save_nifti(real_volume(), tmp_path / "real.nii.gz")
    assert main(["plugins", "diversity", str(translation), "--real", str(real_path)]) == 2
    assert "not a generator from noise" in capsys.readouterr().err
    folder = generation_plugin(tmp_path, blobs(0))
    assert main(["plugins", "diversity", str(folder), "--real", str(tmp_path / "missing.nii")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["plugins", "diversity", str(folder), "--real", str(real_path), "--samples", "1"]) == 2


def test_a_real_path_that_is_no_image_is_one_clear_line(tmp_path, capsys):
    folder = generation_plugin(tmp_path, blobs(0))
    not_an_image = tmp_path / "cases.json"
    not_an_image.write_text("{}")
    assert main(["plugins", "diversity", str(folder), "--real", str(not_an_image)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plugins diversity: error: ") and "Traceback" not in err
    assert str(not_an_image) in err


def test_a_synthesized_volume_is_refused_as_the_real_comparison(tmp_path, capsys):
    from dataclasses import replace

    from app.core.provenance import Provenance

    folder = generation_plugin(tmp_path, blobs(0))
    synthetic = replace(real_volume(), provenance=Provenance("mr-t1-denoise", "1.0.0", "denoising"))
    path = save_nifti(synthetic, tmp_path / "denoised.nii.gz")
    assert main(["plugins", "diversity", str(folder), "--real", str(path), "--samples", "2"]) == 2
    captured = capsys.readouterr()
    assert "SYNTHETIC (made by mr-t1-denoise 1.0.0)" in captured.err and "acquired" in captured.err
    assert captured.out == ""


def test_nearest_real_slice_is_named_by_its_slice_number_in_the_volume(tmp_path, capsys):
    """The copied image lies at k = 2 (slice 3 in the viewer); stored inferior-first or
    superior-first (k reversed), the printed number is the one the viewer shows."""
    folder = generation_plugin(tmp_path, blobs(0))
    plain = real_volume()
    reversed_k = Volume(
        plain.voxels[::-1].copy(),
        Geometry(np.array([0.0, 0.0, 25.0]), plain.geometry.spacing_mm, np.diag([1.0, 1.0, -1.0])),
        "MR",
        name="real",
    )
    for volume, number in ((plain, 3), (reversed_k, 4)):
        path = save_nifti(volume, tmp_path / "real.nii.gz")
        out = tmp_path / f"d{number}.json"  # a new output each time (existing ones are refused)
        args = [
            "plugins",
            "diversity",
            str(folder),
            "--real",
            str(path),
            "--samples",
            "2",
            "--json",
            str(out),
        ]
        assert main(args) == 0
        assert f"seed 0: nearest real: slice {number} of the volume" in capsys.readouterr().out
        data = json.loads(out.read_text())
        assert data["real_slice_numbers"][data["nearest_real"][0]["real_index"]] == number


def test_real_slices_are_smoothed_before_they_are_shrunk():
    """1 mm slices shown at the generator's 4 mm pixels: a 1-voxel texture averages out (as the
    block-averaged training images did) instead of aliasing into a coarse false pattern."""
    k, j, i = np.indices((8, 128, 128))
    voxels = np.where((i + j) % 2 == 0, 1000.0, 200.0).astype(np.float32)
    volume = Volume(voxels, Geometry(np.zeros(3), np.ones(3), np.eye(3)), "MR")
    (first, *_rest) = real_slices(volume, "axial", (4.0, 4.0), (32, 32))
    inner = first[4:-4, 4:-4]
    assert inner.std() < 0.05 and abs(inner.mean() - 0.6) < 0.05  # (1000 + 200) / 2 of p99.5 1000


# ------------------------------------------------ the shipped generator's own training images


class IndexedCopyGenerator(torch.nn.Module):
    """Returns one of ``images`` per latent (chosen from the latent's values): a generator that
    memorised its whole training set."""

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self.latent_dim = 8
        self.register_buffer("images", torch.from_numpy(images * 2 - 1)[:, None])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = torch.remainder((z.abs() * 1000).sum(dim=1).long(), self.images.shape[0])
        return self.images[index]


@pytest.fixture(scope="module")
def training_images():
    from app.plugins.training.data import heads_from_files
    from app.plugins.training.thumbnails import axial_thumbnails

    images, spacing_mm = axial_thumbnails(heads_from_files()[0])
    assert spacing_mm == 4.0  # the shipped generator's declared pixel spacing
    return images


@pytest.fixture(scope="module")
def colin_real():
    """The training head's file as a user gives it to the check (--real ch2.nii.gz), prepared."""
    from app.io.nifti import load_nifti
    from app.plugins.training.data import template_paths

    volume = load_nifti(template_paths()["colin_t1"])
    return located_real_slices(volume, "axial", (4.0, 4.0), (64, 64))


def memorised(samples, real_images) -> list[int]:
    """Indices of ``samples`` the check flags, searching all real images with the training moves."""
    found = nearest_real_images(list(samples), list(real_images), 1.0, 1, WEIGHTS_64, TRAINING_AUGMENTATION)
    return [n for n, (near,) in enumerate(found) if near.ms_ssim >= MEMORISATION_MS_SSIM]


def test_every_training_image_is_one_of_the_real_slices_bit_for_bit(training_images, colin_real):
    """One recipe: the check's real slices of ch2.nii.gz include each training image exactly."""
    real, numbers = colin_real
    assert len(real) >= len(training_images) == 134
    flat_real = {image.tobytes(): n for image, n in zip(real, numbers, strict=True)}
    assert all(image.tobytes() in flat_real for image in training_images)
    assert real.dtype == training_images.dtype == np.float32


def test_all_training_images_fed_back_are_flagged(training_images, colin_real):
    real, _ = colin_real
    assert memorised(training_images, real) == list(range(len(training_images)))
    check = check_generator(list(training_images[::8]), list(real), 1.0, alignment=TRAINING_AUGMENTATION)
    assert check.possibly_memorised == list(range(len(training_images[::8])))
    assert min(near.ms_ssim for near in check.nearest) == pytest.approx(1.0)


@pytest.mark.parametrize("name", NEAR_COPIES)
def test_near_copies_of_training_images_are_flagged(name, training_images, colin_real):
    """Rescaled intensity, one- and two-pixel shifts, flips, noise, grey levels, JPEG-like
    quantisation of 16 fixed training images (the card's table): every one is flagged."""
    assert memorised(near_copies(training_images, name), colin_real[0]) == list(range(16)), name


def test_held_out_head_slices_are_not_flagged(colin_real, mni_t1_nifti_path):
    """Every MNI152 slice with head content (another brain), prepared the same way: none is
    taken for a copy of the training head."""
    from app.io.nifti import load_nifti

    held_out, _ = located_real_slices(load_nifti(mni_t1_nifti_path), "axial", (4.0, 4.0), (64, 64))
    assert len(held_out) > 100
    assert memorised(held_out, colin_real[0]) == []


def test_a_generator_that_memorised_its_training_set_is_flagged_end_to_end(tmp_path, capsys, training_images):
    from app.plugins.training.data import template_paths

    folder = generation_plugin(tmp_path, module=IndexedCopyGenerator(training_images))
    out = tmp_path / "memorised.json"
    args = ["plugins", "diversity", str(folder), "--real", str(template_paths()["colin_t1"])]
    assert main([*args, "--samples", "16", "--json", str(out)]) == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["possibly_memorised"] == list(range(16))
    assert data["alignment"] == {"max_shift_px": 2, "left_right_flip": True}
    assert "flipped left-right and shifted up to 2 px" in capsys.readouterr().out


def test_a_real_volume_without_head_content_is_one_clear_line(tmp_path, capsys):
    folder = generation_plugin(tmp_path, blobs(0))
    empty = Volume(np.zeros((6, 64, 64), np.float32), real_volume().geometry, "MR", name="empty")
    one_slice = Volume(blobs(0)[None], real_volume().geometry, "MR", name="one")
    for volume, message in ((empty, "no positive intensities"), (one_slice, "fewer than two axial slices")):
        path = save_nifti(volume, tmp_path / f"{volume.name}.nii.gz")
        assert main(["plugins", "diversity", str(folder), "--real", str(path), "--samples", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("plugins diversity: error: ") and message in err and "Traceback" not in err
        assert err.count("\n") == 1
