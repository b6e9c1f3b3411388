"""The tissue segmentation plugin's training pieces: aligned labelled crops, a short training run
that lowers the loss and scripts to TorchScript, and the held-out reference maps read as 0-1
probabilities (nilearn stores them as 0-255: a 0.5 threshold on those would take the whole brain)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.plugins.training.data import Head, mni_tissue_probabilities
from app.plugins.training.loops import train_segmenter
from app.plugins.training.networks import TissueUNet
from app.plugins.training.segmentation import TissueSampler, gaussian_blur, tissue_training_data


@pytest.fixture(scope="module")
def toy_head() -> Head:
    """A skull (bright shell, not brain) around a brain box of CSF / grey / white matter."""
    rng = np.random.default_rng(3)
    t1 = np.zeros((24, 48, 44), np.float32)
    t1[2:22, 4:44, 4:40] = 140.0  # scalp and skull: bright, outside the brain mask
    brain = np.zeros(t1.shape, bool)
    brain[4:20, 8:40, 8:36] = True
    t1[brain] = 85.0
    t1[6:18, 16:32, 14:30] = 112.0
    t1[8:16, 10:14, 10:34] = 30.0
    t1 += rng.normal(0, 2.0, t1.shape).astype(np.float32)
    return Head("toy", t1, brain, np.diag([-1.0, -1.0, 1.0]), (1.0, 1.0, 1.0))


def test_crops_keep_image_and_labels_aligned_through_flips_and_intensity_changes(toy_head):
    stacks, record = tissue_training_data(toy_head)
    assert record["voxels"]["white_matter"] > 0 and record["voxels"]["csf"] > 0
    assert len(stacks.images) == 2  # whole head and skull-stripped
    images, labels = TissueSampler(stacks, crop=32, device=torch.device("cpu"), seed=0)(24)
    assert images.shape == (24, 1, 32, 32) and labels.shape == (24, 32, 32) and labels.dtype == torch.int64
    assert images.min() >= -1 and images.max() <= 1 and set(labels.unique().tolist()) <= {0, 1, 2, 3}
    # Per crop, tissue order survives gain, gamma, blur and noise only if labels moved with pixels.
    for image, label in zip(images[:, 0], labels, strict=True):
        means = [float(image[label == v].mean()) for v in (1, 2, 3) if (label == v).sum() > 20]
        assert means == sorted(means)


def test_a_short_training_run_lowers_the_loss_and_scripts(toy_head):
    stacks, _ = tissue_training_data(toy_head)
    sampler = TissueSampler(stacks, crop=32, device=torch.device("cpu"), seed=1)
    network = TissueUNet(classes=4, ngf=4)
    images, labels = sampler(8)
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(network(images), labels))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: threads only add contention on a shared machine
    try:
        trained, run = train_segmenter(network, sampler, 40, 4, torch.device("cpu"), seed=0, learning_rate=3e-3, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    assert run.iterations_run == 40
    with torch.no_grad():
        after = float(torch.nn.functional.cross_entropy(trained(images), labels))
    assert after < 0.8 * before
    scripted = torch.jit.script(trained)
    torch.testing.assert_close(scripted(images), trained(images))
    assert scripted(torch.zeros(1, 1, 24, 40)).shape == (1, 4, 24, 40)  # sides: multiples of 8


def test_blur_keeps_a_constant_image_and_spreads_an_impulse():
    flat = torch.full((1, 1, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.2), flat)
    impulse = torch.zeros(1, 1, 17, 17)
    impulse[0, 0, 8, 8] = 1.0
    blurred = gaussian_blur(impulse, 1.0)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-5)
    assert 0.1 < float(blurred[0, 0, 8, 8]) < 0.2  # 1 / (2 pi sigma^2) = 0.159


def test_the_held_out_reference_maps_are_probabilities():
    grey, white = mni_tissue_probabilities()
    assert grey.max() <= 1.0 and white.max() <= 1.0 and grey.max() > 0.9
    both = (grey > 0.5) & (white > 0.5)
    assert not both.any()
    assert 0.9e6 < (grey > 0.5).sum() < 1.3e6 and 0.5e6 < (white > 0.5).sum() < 0.8e6
