"""The shipped DCGAN: loads through the runtime (TorchScript, hash checked), a seed reproduces
its sample, samples differ from each other and from the nearest training slice, and its card's
memorisation/diversity figures still hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.plugins.errors import PluginError
from app.plugins.generation import SampleGenerator
from app.plugins.manifest import load_manifest
from app.plugins.runtime import synthesize
from app.plugins.training.data import heads_from_files
from app.plugins.training.evaluate import generator_metrics, nearest_neighbour_distances
from app.plugins.training.thumbnails import axial_thumbnails

FOLDER = Path(__file__).resolve().parents[2] / "plugins" / "mr_t1_axial_dcgan"


@pytest.fixture(scope="module")
def generator() -> SampleGenerator:
    return SampleGenerator(FOLDER)


@pytest.fixture(scope="module")
def thumbnails():
    training_head, heldout_head = heads_from_files()
    return axial_thumbnails(training_head)[0], axial_thumbnails(heldout_head)[0]


def test_generator_loads_with_verified_hash_and_declares_its_latent(generator):
    record = json.loads((FOLDER / "metrics.json").read_text())
    assert generator.weights_sha256 == record["weights_sha256"]
    assert generator.manifest.task == "generation"
    assert generator.latent_dim == 64
    assert (FOLDER / "generator.pt").stat().st_size < 8_000_000


def test_same_seed_same_image_other_seed_other_image(generator):
    first, again, other = generator.sample([7]), generator.sample([7]), generator.sample([8])
    assert first[0].image.shape == (64, 64)
    np.testing.assert_array_equal(first[0].image, again[0].image)
    assert np.abs(first[0].image - other[0].image).mean() > 0.01
    assert first[0].seed == 7 and other[0].seed == 8


def test_samples_differ_from_each_other_and_from_nearest_training_slice(generator, thumbnails):
    training, _ = thumbnails
    samples = np.clip(np.stack([s.image for s in generator.sample(range(16))]), 0, 1)
    pairwise = [np.abs(samples[a] - samples[b]).mean() for a in range(16) for b in range(a + 1, 16)]
    assert min(pairwise) > 0.005, "two seeds gave (nearly) the same image"
    nearest_mae, _ = nearest_neighbour_distances(samples, training)
    assert nearest_mae.min() > 0.02, "a sample copies a training slice"


def test_model_card_generator_figures_hold(generator, thumbnails):
    training, heldout = thumbnails
    record = json.loads((FOLDER / "metrics.json").read_text())
    samples = np.clip(np.stack([s.image for s in generator.sample(range(64))]), 0, 1)
    measured = generator_metrics(samples, training, heldout)
    stated = record["heldout"]
    for key in (
        "sample_to_nearest_training_mae",
        "mean_pairwise_sample_mae",
        "heldout_to_nearest_training_mae",
    ):
        assert measured[key] == pytest.approx(stated[key], abs=0.002), key


def test_runtime_refuses_to_run_the_generator_on_an_input_volume(demo_volume):
    with pytest.raises(PluginError, match="generates from noise"):
        synthesize(load_manifest(FOLDER), demo_volume)


@pytest.mark.slow
def test_model_card_memorisation_figures_hold():
    """The card's memorisation section is what the check measures today (all training images
    and near-copies flagged, held-out slices and samples as stated)."""
    from app.plugins.training.memorisation import FIGURES_FILE, measure, section

    stated = json.loads((FOLDER / FIGURES_FILE).read_text())
    measured = measure(FOLDER)
    assert measured["training_images_fed_back"]["flagged"] == measured["training_images_fed_back"]["of"] == 134
    assert all(v["flagged"] == v["of"] for v in measured["near_copies"].values())
    assert measured["heldout_slices"]["flagged"] == 0 and measured["generator_samples"]["flagged"] == 0

    def close(a, b, path=""):
        if isinstance(a, dict):
            assert a.keys() == b.keys(), path
            for key in a:
                close(a[key], b[key], f"{path}/{key}")
        elif isinstance(a, float):
            assert a == pytest.approx(b, abs=0.002), path
        else:
            assert a == b, path

    close(measured, stated)
    assert section(stated) in (FOLDER / "MODEL_CARD.md").read_text()
