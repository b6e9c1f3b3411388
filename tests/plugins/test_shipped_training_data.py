"""The training utilities behind the shipped plugins: degradations, paired sampling, and that a
(tiny) training run yields weights the runtime loads strictly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.plugins.architectures import load_builtin_generator
from app.plugins.manifest import ArchitectureSpec
from app.plugins.training.data import Head
from app.plugins.training.degrade import dark_lesion_clearance, insert_lesions, rician_noise, thick_slices
from app.plugins.training.loops import train_pix2pix, train_residual
from app.plugins.training.networks import ResidualUNet
from app.plugins.training.tasks import (
    DENOISE,
    PSEUDO_HEALTHY,
    SUPER_RESOLUTION,
    PairSampler,
    augment_domain,
    points_changed_by,
    training_stacks,
)


def test_thick_slices_reproduce_a_linear_ramp_and_average_within_a_slab():
    ramp = np.arange(12, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    thick = thick_slices(ramp, 4)
    np.testing.assert_allclose(thick[2:10, 0, 0], np.arange(2, 10))  # between the first and last centre
    assert thick[0, 0, 0] == pytest.approx(1.5)  # before the first centre: the first slab's mean
    steps = np.zeros((8, 2, 2), np.float32)
    steps[::2] = 1.0
    np.testing.assert_allclose(thick_slices(steps, 2), 0.5)  # alternate slices average out
    np.testing.assert_allclose(thick_slices(np.moveaxis(ramp, 0, 1), 4, axis=1), np.moveaxis(thick, 0, 1))


def test_rician_noise_has_the_rayleigh_floor_in_background_and_no_bias_in_bright_tissue():
    rng = np.random.default_rng(0)
    background = rician_noise(np.zeros(200_000, np.float32), 2.0, rng)
    assert background.min() >= 0
    assert background.mean() == pytest.approx(2.0 * np.sqrt(np.pi / 2), rel=0.02)
    bright = rician_noise(np.full(200_000, 100.0, np.float32), 2.0, rng)
    assert bright.mean() == pytest.approx(100.0, abs=0.1)
    assert bright.std() == pytest.approx(2.0, rel=0.05)


def test_lesions_stay_inside_the_brain_and_repeat_with_the_seed():
    clean = np.full((40, 40, 40), 0.7, np.float32)
    brain = np.zeros(clean.shape, bool)
    brain[8:32, 8:32, 8:32] = True
    first = insert_lesions(clean, brain, np.random.default_rng(5), 3, 1.0)
    again = insert_lesions(clean, brain, np.random.default_rng(5), 3, 1.0)
    np.testing.assert_array_equal(first.voxels, again.voxels)
    changed = np.abs(first.voxels - clean) > 1e-6
    assert changed.any() and not (changed & ~brain).any()
    assert first.lesion_mask.any() and not (first.lesion_mask & ~brain).any()


def test_dark_lesion_clearance_is_the_white_matter_distance_to_csf_or_outside_the_brain():
    labels = np.zeros((1, 9, 12), np.uint8)
    labels[0, 1:8, 1:11] = 3  # white matter
    labels[0, 4, 3] = 1  # a CSF voxel
    labels[0, 1:8, 10] = 2  # grey matter does not count as an obstacle, but is no site
    clearance = dark_lesion_clearance(labels)
    assert clearance[0, 4, 4] == 1.0 and clearance[0, 4, 6] == pytest.approx(3.0)  # 3 from the CSF, 4 from air
    assert clearance[0, 1, 5] == 1.0  # next to the outside of the brain
    assert clearance[labels != 3].max() == 0.0


def test_dark_lesions_go_to_the_clear_white_matter_bright_ones_anywhere_and_defaults_are_unchanged():
    """Issue 15: with ``dark_clearance_mm`` every dark lesion is centred where the clearance
    reaches its largest radius (never by a CSF space); without it the draws are the old ones."""
    clean = np.full((40, 40, 40), 0.7, np.float32)
    brain = np.zeros(clean.shape, bool)
    brain[4:36, 4:36, 4:36] = True
    labels = np.where(brain, 3, 0).astype(np.uint8)
    labels[4:36, 4:20, 4:36] = 1  # half the brain is "CSF": no dark lesion may sit there
    clearance = dark_lesion_clearance(labels)
    placed = insert_lesions(clean, brain, np.random.default_rng(3), 40, 1.0, (2.0, 4.0), dark_clearance_mm=clearance)
    dark = [c for c in placed.centres_kji if placed.voxels[c] < 0.5]
    bright = [c for c in placed.centres_kji if placed.voxels[c] > 0.8]
    assert len(dark) >= 10 and len(bright) >= 10
    assert all(clearance[c] >= 5.0 for c in dark)  # the smallest radius + 3 mm from CSF or air
    assert any(labels[c] == 1 for c in bright)  # bright lesions still go anywhere in the brain
    anywhere = insert_lesions(clean, brain, np.random.default_rng(3), 40, 1.0, (2.0, 4.0))
    assert any(labels[c] == 1 and anywhere.voxels[c] < 0.5 for c in anywhere.centres_kji)  # the default
    # Without a clearance map the draws are exactly those of the previous version (pinned from it):
    # the held-out lesions of every card depend on them.
    plain = insert_lesions(clean, brain, np.random.default_rng(3), 5, 1.0)
    assert plain.centres_kji == [(29, 34, 35), (6, 27, 26), (9, 5, 13), (27, 4, 25), (18, 14, 5)]


@pytest.fixture(scope="module")
def toy_head() -> Head:
    rng = np.random.default_rng(1)
    t1 = np.zeros((40, 48, 44), np.float32)
    t1[4:36, 4:44, 4:40] = 80 + 10 * rng.standard_normal((32, 40, 36))
    brain = np.zeros(t1.shape, bool)
    brain[10:30, 10:38, 10:34] = True
    t1[brain] = 120
    return Head("toy", t1, brain, np.diag([-1.0, -1.0, 1.0]), (1.0, 1.0, 1.0))


@pytest.mark.parametrize("kind", [SUPER_RESOLUTION, PSEUDO_HEALTHY])
def test_pair_sampler_gives_network_range_crops_of_degraded_and_clean(kind, toy_head):
    stacks = training_stacks(kind, toy_head, np.random.default_rng(0), copies=2)
    assert len(stacks.inputs) == len(stacks.targets) == 2
    assert (kind == PSEUDO_HEALTHY) == (stacks.focus_points is not None)
    degraded, truth = PairSampler(stacks, crop=16, device=torch.device("cpu"), seed=0)(6)
    assert degraded.shape == truth.shape == (6, 1, 16, 16)
    assert degraded.min() >= -1 and degraded.max() <= 1 and truth.min() >= -1 and truth.max() <= 1
    assert not torch.equal(degraded, truth)


def test_a_training_run_yields_weights_the_runtime_loads_strictly(toy_head):
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance")
    stacks = training_stacks(SUPER_RESOLUTION, toy_head, np.random.default_rng(0), copies=1)
    sampler = PairSampler(stacks, crop=32, device=torch.device("cpu"), seed=0)  # the critic needs >= 32 px
    generator, run = train_pix2pix(spec, sampler, 2, 2, torch.device("cpu"), seed=0, log=lambda _: None)
    assert run.iterations_run == 2
    loaded = load_builtin_generator(spec, generator.state_dict())
    image = torch.zeros(1, 1, 16, 16)
    torch.testing.assert_close(loaded(image), generator(image))


def test_residual_unet_starts_as_the_identity_and_has_no_transposed_convolutions():
    network = ResidualUNet(ngf=4).eval()
    image = torch.rand(2, 1, 24, 32) * 2 - 1
    torch.testing.assert_close(network(image), image)  # zero-initialised correction
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in network.modules())
    scripted = torch.jit.script(network)
    torch.testing.assert_close(scripted(image), image)


def test_weighted_residual_training_moves_the_output_towards_the_lesion_truth(toy_head):
    stacks = training_stacks(PSEUDO_HEALTHY, toy_head, np.random.default_rng(0), copies=1)
    sampler = PairSampler(stacks, crop=16, device=torch.device("cpu"), seed=0)
    network, run = train_residual(
        ResidualUNet(ngf=4),
        sampler,
        3,
        2,
        torch.device("cpu"),
        seed=0,
        change_weight=20.0,
        log=lambda _: None,
    )
    assert run.iterations_run == 3 and np.isfinite(run.final_l1)
    degraded, _ = PairSampler(stacks, crop=16, device=torch.device("cpu"), seed=1)(2)
    with torch.no_grad():
        output = network(degraded)
    assert not torch.equal(output, degraded)  # it learned a correction
    assert float((output - degraded).abs().mean()) < 0.2  # ... a small one, on top of the input


def test_denoise_sampler_can_draw_empty_slices_and_noise_free_inputs(toy_head):
    """Issue 5: the denoiser must also see empty slices (target zero) and noise-free inputs
    (target = input), so that it learns to leave them alone."""
    stacks = training_stacks(DENOISE, toy_head, np.random.default_rng(0), copies=1)
    device = torch.device("cpu")
    noisy, truth = PairSampler(stacks, crop=16, device=device, seed=0)(8)
    assert not torch.equal(noisy, truth)  # default: every input noisy, only head slices
    sampler = PairSampler(stacks, crop=16, device=device, seed=0, empty_fraction=1.0, clean_fraction=1.0)
    degraded, truth = sampler(24)
    torch.testing.assert_close(degraded, truth)
    empty = (truth == -1).flatten(1).all(1)
    assert empty.any() and not empty.all()


def test_pseudo_healthy_batches_hold_lesion_free_identity_crops_of_healthy_lookalikes(toy_head):
    """Every batch starts with its share of lesion-free crops (input = truth exactly); the
    look-alike points sit on the dark spot (a ventricle-like hole) and the edge of the head."""
    head = Head(toy_head.name, toy_head.t1.copy(), toy_head.brain_mask, toy_head.direction, toy_head.spacing_mm)
    head.t1[18:22, 20:24, 20:24] = 30  # a dark 4 mm hole inside the bright brain
    stacks = training_stacks(PSEUDO_HEALTHY, head, np.random.default_rng(0), copies=2)
    assert stacks.identity_stacks is not None and len(stacks.identity_points) == len(stacks.identity_stacks)
    sampler = PairSampler(stacks, crop=16, device=torch.device("cpu"), seed=0, identity_fraction=1 / 3)
    for _ in range(3):
        degraded, truth = sampler(6)
        same = [torch.equal(degraded[i], truth[i]) for i in range(6)]
        assert same[:2] == [True, True]  # 2 of 6, in every batch
    plain = PairSampler(stacks, crop=16, device=torch.device("cpu"), seed=0)  # default: no identity crops
    assert plain.identity_fraction == 0.0
    stack = stacks.identity_stacks[0]
    values = np.array([stack[tuple(p)] for p in stacks.identity_points[0]])
    hole = 30 / np.percentile(head.t1, 99.5)
    assert np.isclose(values, hole, atol=0.02).sum() >= 8  # the hole's pixels are look-alikes
    assert (values < 0.02).sum() == 0  # never air alone


def test_the_skull_stripped_calibration_input_keeps_only_the_brain():
    from app.plugins.training.calibrate_null import prepare_input

    clean = np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 1
    mask = clean > 12
    stripped = prepare_input("stripped", clean, np.random.default_rng(0), mask)
    np.testing.assert_array_equal(stripped, np.where(mask, clean, 0))
    with pytest.raises(ValueError, match="brain mask"):
        prepare_input("stripped", clean, np.random.default_rng(0))


def test_the_recorded_command_is_what_main_was_given(tmp_path, monkeypatch):
    """A plugin's train.py calls main() with its own arguments (``--plugins ...``): the record
    must name those, not the script's sys.argv (which lacks them)."""
    from types import SimpleNamespace

    from app.plugins.training import shipped
    from app.plugins.training.loops import TrainingRun

    monkeypatch.setattr("sys.argv", ["train.py", "--device", "cpu"])
    weights = tmp_path / "generator.pt"
    weights.write_bytes(b"x")
    head = SimpleNamespace(name="head")
    given = ["--plugins", "mr_t1_pseudo_healthy", "--device", "cpu", "--max-seconds", "30"]
    args = SimpleNamespace(quick=False, seed=1, argv=given)
    run = TrainingRun(10, 1.0, 0.1, "cpu")
    record = shipped._record("p", "0" * 64, weights, args, run, 10, 2, {}, head, head)
    assert record["training"]["command"] == "python -m app.plugins.training.shipped " + " ".join(given)


def test_pseudo_healthy_stacks_can_keep_dark_lesions_off_csf_spaces():
    """``dark_lesions_in_white_matter``: the tissue classes of the training head decide where a dark
    lesion may go; no dark lesion darkens the tissue around the (CSF) ventricle."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    shape = (48, 48, 48)
    zz, yy, xx = np.indices(shape)
    radius = np.sqrt((zz - 24) ** 2 + (yy - 24) ** 2 + (xx - 24) ** 2)
    brain = radius < 21
    t1 = np.where(brain, 120.0, 0.0) + np.where((radius >= 17) & brain, -40.0, 0.0)  # grey rim
    ventricle = (np.abs(zz - 24) < 4) & (np.abs(yy - 24) < 4) & (np.abs(xx - 16) < 4)
    t1[ventricle] = 30.0
    t1 = (t1 + 2.0 * rng.standard_normal(shape) * brain).astype(np.float32)
    head = Head("toy3", t1, brain, np.diag([-1.0, -1.0, 1.0]), (1.0, 1.0, 1.0))
    near_csf = ndimage.binary_dilation(ventricle, iterations=2)
    for flag, expect_near in ((True, False), (False, True)):
        stacks = training_stacks(PSEUDO_HEALTHY, head, np.random.default_rng(4), copies=6, dark_lesions_in_white_matter=flag)
        darkened = [(target - degraded) > 0.3 for degraded, target in zip(stacks.inputs, stacks.targets, strict=True)]
        touched = any((d & to_plane(near_csf, head)).any() for d in darkened)
        assert any(d.any() for d in darkened) and touched == expect_near


def to_plane(mask: np.ndarray, head: Head) -> np.ndarray:
    from app.plugins.training.tasks import PLANES, to_plane_stack

    return to_plane_stack(mask, head, PLANES[PSEUDO_HEALTHY])


def test_domain_augmentation_changes_input_and_truth_alike_and_blurs():
    """augment_domain applies one blur/bias/gamma/noise draw to both images of a pair: a lesion-free
    pair stays an identity pair, a lesioned pair keeps its difference only where the lesion is, and
    over many draws a sharp edge is sometimes blurred."""
    rng = np.random.default_rng(0)
    truth = torch.zeros(8, 1, 32, 32)
    truth[:, :, :, 16:] = 0.8
    degraded = truth.clone()
    degraded[4:, :, 12:20, 4:10] = 0.2  # a bright 'lesion' in the dark half of the last four
    gen = torch.Generator().manual_seed(0)
    blurred = 0
    for _ in range(6):
        aug_degraded, aug_truth = augment_domain(degraded, truth, rng, gen)
        assert aug_degraded.shape == truth.shape
        for i in range(4):
            assert torch.equal(aug_degraded[i], aug_truth[i])  # identity pairs stay identity pairs
        far = (aug_degraded[4:] - aug_truth[4:])[:, :, 26:, :].abs().max()
        assert far < 1e-6  # lesion-free rows far from the lesion: no difference made up
        edge = aug_truth[:, 0, 5, 14:18]
        blurred += int(((edge > 0.05) & (edge < 0.75 * edge.max())).any(dim=1).sum())
    assert blurred > 0


def test_look_alike_mining_finds_where_a_model_changes_a_healthy_stack():
    """points_changed_by: the points where the model's output differs from a healthy input by
    more than MINED_CHANGE, on the valid slices only."""

    class FillsDarkSpots(torch.nn.Module):
        def forward(self, x):
            return torch.where(x < -0.5, x + 0.4, x)  # brightens anything darker than 25 %

    stack = np.full((5, 22, 18), 0.6, np.float32)
    stack[1, 5:8, 5:8] = 0.1
    stack[3, 10:12, 2:4] = 0.1
    points = points_changed_by(FillsDarkSpots(), stack, np.array([1, 2]), np.random.default_rng(0))
    assert {tuple(p) for p in points} == {(1, r, c) for r in range(5, 8) for c in range(5, 8)}


def test_pseudo_healthy_sampler_oversamples_mined_points(toy_head):
    stacks = training_stacks(PSEUDO_HEALTHY, toy_head, np.random.default_rng(0), copies=2)
    slice_index = int(stacks.valid_slices[0])
    stacks.mined_points = [np.array([[slice_index, 20, 20]]) for _ in stacks.identity_stacks]
    sampler = PairSampler(
        stacks, crop=16, device=torch.device("cpu"), seed=0, identity_fraction=1.0, mined_share=0.5,
        domain_augment=True,
    )
    degraded, truth = sampler(40)
    assert torch.equal(degraded, truth)  # all identity crops, augmented alike
    unaugmented = PairSampler(stacks, crop=16, device=torch.device("cpu"), seed=0, identity_fraction=1.0)
    assert unaugmented.mined is None and not unaugmented.domain_augment


def test_the_named_recipe_changes_only_its_plugin_spec():
    from app.plugins.training import shipped

    spec = shipped._spec("mr_t1_pseudo_healthy", "ph-v3-domain")
    assert spec["recipe"] == "ph-v3-domain" and spec["domain_augment"] and spec["identity_fraction"] == 0.5
    assert "recipe" not in shipped.PLUGINS["mr_t1_pseudo_healthy"]
    assert shipped._spec("mr_t1_pseudo_healthy", None) == shipped.PLUGINS["mr_t1_pseudo_healthy"]
    with pytest.raises(SystemExit):
        shipped._spec("mr_t1_denoise", "ph-v3-domain")
