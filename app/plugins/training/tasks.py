"""Paired training data and held-out cases for the three image-to-image plugins.

Every image is in a plugin's own plane, laid out exactly as the runtime presents slices to a 2D
generator (``app.plugins.plane_stack``), and scaled the way its manifest says: divided by the
input's 99.5th percentile (0 -> -1, that percentile -> +1, clipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.core.volume import Geometry, Volume
from app.plugins.plane_stack import plane_layout
from app.plugins.training.data import Head, robust_max
from app.plugins.training.degrade import dark_lesion_clearance, insert_lesions, rician_noise, thick_slices

DENOISE, SUPER_RESOLUTION, PSEUDO_HEALTHY = "denoise", "super_resolution", "pseudo_healthy"
PLANES = {DENOISE: "axial", SUPER_RESOLUTION: "coronal", PSEUDO_HEALTHY: "axial"}
HELDOUT_NOISE_SIGMA = 0.05  # of the 99.5th percentile
HELDOUT_THICKNESS_MM = 4
HELDOUT_LESIONS = 10
HELDOUT_SLICES = 8
HELDOUT_SEED = 2024


def array_axis_along(direction: np.ndarray, lps_axis: int) -> int:
    """The numpy axis of ``voxels[k, j, i]`` that runs closest to LPS axis 0 (L), 1 (P) or 2 (S)."""
    column = int(np.argmax(np.abs(np.asarray(direction)[lps_axis, :])))
    return 2 - column


def to_plane_stack(voxels: np.ndarray, head: Head, plane: str) -> np.ndarray:
    return np.ascontiguousarray(plane_layout(head.direction, plane).to_stack(voxels))


# ----------------------------------------------------------------------------------- training


@dataclass
class TrainingStacks:
    """Degraded inputs and clean targets as (slices, rows, cols) stacks scaled to [0, 1]."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]  # same length as inputs (may repeat the same array)
    valid_slices: np.ndarray  # slice indices with enough head in them
    focus_points: list[np.ndarray] | None = None  # per stack: (n, 3) slice,row,col of lesions
    noise_sigma: tuple[float, float] | None = None  # Rician noise added on the fly
    # Lesion-free stacks (input = target) and, per stack, the healthy structures a lesion
    # remover is tempted to change (``healthy_lookalikes``): identity crops for ``PairSampler``.
    identity_stacks: list[np.ndarray] | None = None
    identity_points: list[np.ndarray] | None = None
    # Per identity stack: (n, 3) points where an earlier model CHANGED this healthy stack
    # (``points_changed_by``): hard negatives, oversampled by ``PairSampler(mined_share=...)``.
    mined_points: list[np.ndarray] | None = None


LOOKALIKE_SIZE = 11  # pixels (1 mm): a spot up to about this wide can pass for a lesion
LOOKALIKE_DEPTH = 0.08  # of the 99.5th percentile: how much darker/brighter than its surroundings
LOOKALIKE_POINTS = 200_000


def healthy_lookalikes(stack: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) slice,row,col points of a clean (0..1) stack where healthy anatomy looks like a focal
    lesion: dark spots (ventricles, temporal horns, sulci, orbits, sinuses: the in-plane black
    top-hat) and bright spots (vessels, fat, marrow: the white top-hat) deeper than
    ``LOOKALIKE_DEPTH``, plus the edge of the head (the skull-strip border of a stripped head),
    on the ``valid`` slices; at most ``LOOKALIKE_POINTS``, drawn by ``rng``."""
    from scipy import ndimage

    chosen = np.asarray(stack, np.float32)[valid]
    size = (1, LOOKALIKE_SIZE, LOOKALIKE_SIZE)
    dark = ndimage.grey_closing(chosen, size=size) - chosen > LOOKALIKE_DEPTH
    bright = chosen - ndimage.grey_opening(chosen, size=size) > LOOKALIKE_DEPTH
    tissue = chosen > 0.02
    edge = tissue & ~ndimage.binary_erosion(tissue, structure=np.ones((1, 3, 3), bool))
    points = np.argwhere(((dark | bright) & tissue) | edge)  # on tissue: never air alone
    if len(points) > LOOKALIKE_POINTS:
        points = points[np.sort(rng.choice(len(points), LOOKALIKE_POINTS, replace=False))]
    points[:, 0] = valid[points[:, 0]]
    return points


MINED_CHANGE = 0.05  # of the 99.5th percentile: a change this large on healthy tissue is mined
MINED_BLUR_SIGMAS = (0.0, 1.0)  # pixels (1 mm): the stacks as they are and blurred in-plane


@torch.no_grad()
def points_changed_by(
    model: torch.nn.Module, stack: np.ndarray, valid: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(n, 3) slice,row,col points of a lesion-free (0..1) stack where ``model`` (an earlier
    pseudo-healthy generator, network range) changes the image by more than ``MINED_CHANGE``,
    on the ``valid`` slices, with the stack as it is and blurred in-plane (``MINED_BLUR_SIGMAS``:
    a smoother head, like an average template, has blurrier dark spots); at most
    ``LOOKALIKE_POINTS``, drawn by ``rng``. Look-alike mining: the healthy spots the model takes
    for lesions become identity crops."""
    from scipy import ndimage

    found = np.zeros((len(valid),) + stack.shape[1:], bool)
    for sigma in MINED_BLUR_SIGMAS:
        for row, index in enumerate(valid):
            image = np.asarray(stack[index], np.float32)
            if sigma:
                image = ndimage.gaussian_filter(image, sigma)
            rows, cols = image.shape
            padded = np.pad(image, ((0, -rows % 4), (0, -cols % 4)), mode="reflect")
            net = torch.from_numpy(np.clip(padded, 0.0, 1.0) * 2.0 - 1.0)[None, None]
            change = (model(net) - net)[0, 0, :rows, :cols].numpy() / 2.0
            found[row] |= np.abs(change) > MINED_CHANGE
    points = np.argwhere(found)
    if len(points) > LOOKALIKE_POINTS:
        points = points[np.sort(rng.choice(len(points), LOOKALIKE_POINTS, replace=False))]
    points[:, 0] = valid[points[:, 0]]
    return points


def head_versions(head: Head) -> list[np.ndarray]:
    """The training head as a whole head and skull-stripped, each divided by its own 99.5th
    percentile (as the runtime scales an input). Stripped copies teach the generator the
    intensity balance of brain-only volumes (the demo study and many research data sets)."""
    stripped = head.t1 * head.brain_mask
    return [head.t1 / robust_max(head.t1), stripped / robust_max(stripped)]


def training_stacks(
    kind: str, head: Head, rng: np.random.Generator, copies: int, dark_lesions_in_white_matter: bool = False
) -> TrainingStacks:
    """Degraded/clean stacks from the training head; ``copies`` degraded volumes (SR, lesions),
    alternating whole-head and skull-stripped versions. Pseudo-healthy with
    ``dark_lesions_in_white_matter``: dark lesions only in white matter, clear of CSF and of the
    brain's edge by their largest radius + 3 mm (``degrade.dark_lesion_clearance`` of the head's
    ``tissue_classes.classify_tissues`` labels); bright lesions anywhere in the brain, as before."""
    plane = PLANES[kind]
    clearance = None
    if kind == PSEUDO_HEALTHY and dark_lesions_in_white_matter:
        from app.plugins.training.tissue_classes import classify_tissues

        clearance = dark_lesion_clearance(classify_tissues(head.t1, head.brain_mask).labels)
    versions = head_versions(head)
    clean_stacks = [to_plane_stack(v, head, plane) for v in versions]
    head_fraction = (clean_stacks[0] > 0.1).mean(axis=(1, 2))
    valid = np.flatnonzero(head_fraction > 0.15)
    if kind == DENOISE:
        return TrainingStacks(clean_stacks, clean_stacks, valid, noise_sigma=(0.01, 0.10))
    inputs, targets, focus = [], [], []
    for index in range(copies):
        version = index % len(versions)
        clean = versions[version]
        if kind == SUPER_RESOLUTION:
            thickness = (3, 4, 5)[(index // len(versions)) % 3]
            phase = int(rng.integers(thickness))
            degraded = thick_slices(clean, thickness, array_axis_along(head.direction, 2), phase)
        elif kind == PSEUDO_HEALTHY:
            lesions = insert_lesions(
                clean, head.brain_mask, rng, int(rng.integers(8, 17)), 1.0, dark_clearance_mm=clearance
            )
            degraded = lesions.voxels
            focus.append(np.argwhere(to_plane_stack(lesions.lesion_mask, head, plane)))
        else:
            raise ValueError(f"unknown task {kind!r}")
        inputs.append(to_plane_stack(degraded, head, plane))
        targets.append(clean_stacks[version])
    if kind == PSEUDO_HEALTHY:
        lookalikes = [healthy_lookalikes(stack, valid, rng) for stack in clean_stacks]
        return TrainingStacks(inputs, targets, valid, focus or None, None, clean_stacks, lookalikes)
    return TrainingStacks(inputs, targets, valid, focus_points=focus or None)


class PairSampler:
    """Random (degraded, truth) crops in the network range [-1, 1], augmented on the device.

    Augmentation: flips of both image axes and transposition (so the generator does not
    depend on the runtime's slice orientation, and the super-resolution model deblurs along
    whichever image axis is blurred) and a common intensity gain (``gain_range``) (so it keeps the
    input's intensity level instead of learning the training head's).
    """

    def __init__(
        self,
        stacks: TrainingStacks,
        crop: int,
        device: torch.device,
        seed: int,
        gain_range: tuple[float, float] = (0.75, 1.3),
        empty_fraction: float = 0.0,
        clean_fraction: float = 0.0,
        identity_fraction: float = 0.0,
        mined_share: float = 0.0,
        domain_augment: bool = False,
    ) -> None:
        self.gain_range = gain_range
        # Pseudo-healthy look-alike mining: this share of the identity crops is centred on the
        # points an earlier model changed (``TrainingStacks.mined_points``), a third of the
        # rest on the look-alikes. ``domain_augment``: ``augment_domain`` on every pair.
        self.mined = stacks.mined_points if mined_share > 0.0 else None
        self.mined_share = mined_share
        self.domain_augment = domain_augment
        # Pseudo-healthy: a share of every batch from the lesion-free stacks (target = input), two
        # thirds of them centred on healthy look-alikes (ventricles, sulci, vessels, the head's edge), so
        # the generator learns to leave healthy anatomy alone, not only to remove lesions.
        self.identity_fraction = identity_fraction if stacks.identity_stacks else 0.0
        self.identity = [torch.from_numpy(s.astype(np.float32)).to(device) for s in stacks.identity_stacks or []]
        self.identity_points = stacks.identity_points
        # Denoising: a share of crops from ANY slice (empty or near-empty ones at the ends of the
        # stack, where the target is zero) and a share of noise-free inputs (target = input), so
        # the residual network learns to leave both alone instead of inventing signal there.
        self.empty_fraction = empty_fraction
        self.clean_fraction = clean_fraction
        self.inputs = [torch.from_numpy(s.astype(np.float32)).to(device) for s in stacks.inputs]
        unique_targets = {id(t): torch.from_numpy(t.astype(np.float32)).to(device) for t in stacks.targets}
        self.targets = [unique_targets[id(t)] for t in stacks.targets]
        self.valid = stacks.valid_slices
        self.focus = stacks.focus_points
        self.noise_sigma = stacks.noise_sigma
        self.crop = crop
        self.device = device
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator(device=device).manual_seed(seed)

    def _origin(self, size: int, centre: int | None) -> int:
        if centre is None:
            return int(self.rng.integers(0, size - self.crop + 1))
        return int(
            np.clip(
                centre - self.rng.integers(self.crop // 8, self.crop - self.crop // 8), 0, size - self.crop
            )
        )

    def _crop(self, source: torch.Tensor, target: torch.Tensor, slice_index: int, centre) -> torch.Tensor:
        """One augmented (degraded, truth) crop pair, stacked (2, crop, crop)."""
        rows, cols = source.shape[1:]
        r0, c0 = self._origin(rows, centre[0]), self._origin(cols, centre[1])
        window = (slice_index, slice(r0, r0 + self.crop), slice(c0, c0 + self.crop))
        pair = torch.stack([source[window], target[window]])
        if self.rng.random() < 0.5:
            pair = pair.flip(1)
        if self.rng.random() < 0.5:
            pair = pair.flip(2)
        if self.rng.random() < 0.5:
            pair = pair.transpose(1, 2)
        return pair * float(self.rng.uniform(*self.gain_range))

    def __call__(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = []
        identity_crops = int(round(self.identity_fraction * batch_size))  # in every batch
        for index in range(batch_size):
            centre = (None, None)
            if index < identity_crops:
                stack_index = int(self.rng.integers(len(self.identity)))
                source = target = self.identity[stack_index]
                points = self.identity_points[stack_index] if self.identity_points else None
                if self.mined is not None:
                    draw, mined = self.rng.random(), self.mined[stack_index]
                    if len(mined) and draw < self.mined_share:
                        points = mined
                    elif draw > self.mined_share + (1 - self.mined_share) * 2 / 3:
                        points = None
                    if points is not None and len(points):
                        slice_index, *centre = points[self.rng.integers(len(points))]
                    else:
                        slice_index = int(self.rng.choice(self.valid))
                elif points is not None and len(points) and self.rng.random() < 2 / 3:
                    slice_index, *centre = points[self.rng.integers(len(points))]
                else:
                    slice_index = int(self.rng.choice(self.valid))
                pairs.append(self._crop(source, target, slice_index, centre))
                continue
            stack_index = int(self.rng.integers(len(self.inputs)))
            source, target = self.inputs[stack_index], self.targets[stack_index]
            if self.focus is not None and len(self.focus[stack_index]) and self.rng.random() < 0.75:
                slice_index, *centre = self.focus[stack_index][
                    self.rng.integers(len(self.focus[stack_index]))
                ]
            elif self.empty_fraction and self.rng.random() < self.empty_fraction:
                slice_index = int(self.rng.integers(source.shape[0]))
            else:
                slice_index = int(self.rng.choice(self.valid))
            pairs.append(self._crop(source, target, slice_index, centre))
        degraded_batch = torch.stack([p[0] for p in pairs])[:, None]
        truth_batch = torch.stack([p[1] for p in pairs])[:, None]
        if self.domain_augment:
            degraded_batch, truth_batch = augment_domain(degraded_batch, truth_batch, self.rng, self.torch_gen)
        if self.noise_sigma is not None:
            low, high = self.noise_sigma
            sigma = low + (high - low) * torch.rand(
                batch_size, 1, 1, 1, device=self.device, generator=self.torch_gen
            )
            if self.clean_fraction:
                keep = torch.rand(batch_size, 1, 1, 1, device=self.device, generator=self.torch_gen)
                sigma = torch.where(keep < self.clean_fraction, torch.zeros_like(sigma), sigma)
            real = degraded_batch + sigma * torch.randn(
                degraded_batch.shape, device=self.device, generator=self.torch_gen
            )
            imag = sigma * torch.randn(degraded_batch.shape, device=self.device, generator=self.torch_gen)
            degraded_batch = torch.sqrt(real * real + imag * imag)
        return _to_network(degraded_batch), _to_network(truth_batch)


DOMAIN_BLUR_SIGMA = (0.0, 1.5)  # pixels (1 mm), Gaussian, in-plane
DOMAIN_BIAS = 0.1  # largest linear/bilinear coefficient of the log bias field over a crop
DOMAIN_GAMMA = 0.2  # |log gamma| at most
DOMAIN_NOISE = 0.015  # largest Gaussian SD added (of the 99.5th percentile)


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(int(np.ceil(3 * sigma)), 1)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=images.dtype) / sigma) ** 2)
    taps = (taps / taps.sum()).to(images.device)
    padded = torch.nn.functional.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = torch.nn.functional.conv2d(padded, taps.view(1, 1, 1, -1))
    return torch.nn.functional.conv2d(out, taps.view(1, 1, -1, 1))


def augment_domain(
    degraded: torch.Tensor, truth: torch.Tensor, rng: np.random.Generator, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random change of acquisition/averaging applied to each (input, truth) pair,
    (B, 1, H, W) in 0..1 units, toward a smoother, lower-noise average head like MNI152: in-plane
    Gaussian blur (``DOMAIN_BLUR_SIGMA``, 3 pairs in 4), a smooth multiplicative bias field (1 in 2),
    a gamma (1 in 2) and additive Gaussian noise (1 in 4; the same noise in both, so the target is
    still the input wherever there was no lesion). Lesion and healthy crops alike: blurry dark spots in
    healthy tissue are identity pairs, and a blurred lesion is still to be removed."""
    out_degraded, out_truth = [], []
    rows, cols = degraded.shape[-2:]
    y = torch.linspace(-1.0, 1.0, rows, device=degraded.device)[:, None]
    x = torch.linspace(-1.0, 1.0, cols, device=degraded.device)[None, :]
    for index in range(degraded.shape[0]):
        pair = torch.stack([degraded[index], truth[index]])  # (2, 1, H, W)
        if rng.random() < 0.75:
            sigma = float(rng.uniform(*DOMAIN_BLUR_SIGMA))
            if sigma > 0.05:
                pair = _gaussian_blur(pair, sigma)
        if rng.random() < 0.5:
            a, b, c = rng.uniform(-DOMAIN_BIAS, DOMAIN_BIAS, 3)
            pair = pair * torch.exp(float(a) * x + float(b) * y + float(c) * x * y)
        if rng.random() < 0.5:
            pair = pair.clamp(min=0.0) ** float(np.exp(rng.uniform(-DOMAIN_GAMMA, DOMAIN_GAMMA)))
        if rng.random() < 0.25:
            sd = float(rng.uniform(0.0, DOMAIN_NOISE))
            pair = pair + sd * torch.randn(pair.shape[1:], device=pair.device, generator=generator)
        out_degraded.append(pair[0])
        out_truth.append(pair[1])
    return torch.stack(out_degraded), torch.stack(out_truth)


def _to_network(unit: torch.Tensor) -> torch.Tensor:
    return unit.clamp(0.0, 1.0) * 2.0 - 1.0


# ----------------------------------------------------------------------------------- held out


@dataclass
class HeldoutCase:
    """A small slab of the held-out head: degraded input (a Volume, scanner units) and truth."""

    kind: str
    input_volume: Volume
    truth: np.ndarray  # same shape as input_volume.voxels
    reference_intensity: float  # the held-out head's 99.5th percentile: metrics divide by it
    plane: str
    direction: np.ndarray
    lesion_mask: np.ndarray | None = None
    brain_mask: np.ndarray | None = None


def _slab(voxels: np.ndarray, head: Head, plane: str, indices: np.ndarray) -> np.ndarray:
    layout = plane_layout(head.direction, plane)
    return np.ascontiguousarray(layout.from_stack(layout.to_stack(voxels)[indices]))


def heldout_case(kind: str, head: Head, slices: int = HELDOUT_SLICES) -> HeldoutCase:
    """The fixed held-out evaluation of a plugin kind (same numbers on every machine)."""
    rng = np.random.default_rng(HELDOUT_SEED)
    plane = PLANES[kind]
    reference = robust_max(head.t1)
    truth_full = head.t1.astype(np.float32)
    stack_count = to_plane_stack(truth_full, head, plane).shape[0]
    indices = np.linspace(0.3 * stack_count, 0.7 * stack_count, slices).astype(int)
    lesion_slab = brain_slab = None
    if kind == DENOISE:
        truth = _slab(truth_full, head, plane, indices)
        degraded = rician_noise(truth, HELDOUT_NOISE_SIGMA * reference, rng)
    elif kind == SUPER_RESOLUTION:
        through_plane = array_axis_along(head.direction, 2)
        degraded = _slab(thick_slices(truth_full, HELDOUT_THICKNESS_MM, through_plane), head, plane, indices)
        truth = _slab(truth_full, head, plane, indices)
    elif kind == PSEUDO_HEALTHY:
        lesions = insert_lesions(truth_full, head.brain_mask, rng, HELDOUT_LESIONS, reference)
        lesion_area = to_plane_stack(lesions.lesion_mask, head, plane).sum(axis=(1, 2))
        indices = np.sort(np.argsort(lesion_area, kind="stable")[::-1][:slices])
        degraded = _slab(lesions.voxels, head, plane, indices)
        truth = _slab(truth_full, head, plane, indices)
        lesion_slab = _slab(lesions.lesion_mask, head, plane, indices)
        brain_slab = _slab(head.brain_mask, head, plane, indices)
    else:
        raise ValueError(f"unknown task {kind!r}")
    geometry = Geometry(np.zeros(3), np.asarray(head.spacing_mm, float), np.asarray(head.direction, float))
    volume = Volume(
        voxels=degraded.astype(np.float32),
        geometry=geometry,
        modality="MR",
        name=f"{head.name} held-out {kind}",
    )
    return HeldoutCase(
        kind, volume, truth, reference, plane, np.asarray(head.direction), lesion_slab, brain_slab
    )
