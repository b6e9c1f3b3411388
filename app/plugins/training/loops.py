"""Training loops: paired pix2pix (conditional GAN + L1) and DCGAN (noise -> image).

Both are seeded, run on CUDA when present, stop at ``iterations`` or at ``max_seconds`` (a guard
for shared machines; the number of iterations actually run is returned and recorded).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from app.plugins.architectures import build_generator
from app.plugins.manifest import ArchitectureSpec
from app.plugins.training.networks import DcganDiscriminator, DcganGenerator, PatchDiscriminator

BatchSampler = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class TrainingRun:
    iterations_run: int
    seconds: float
    final_l1: float
    device: str


def _past_time_guard(started: float, max_seconds: float, step: int, log) -> bool:
    """True (and says so) once a training loop has run longer than ``max_seconds``."""
    if time.perf_counter() - started > max_seconds:
        log(f"  stopped at step {step}: time guard of {max_seconds:.0f} s reached")
        return True
    return False


def _training_run(step: int, started: float, recent_losses: list[float], device: torch.device) -> TrainingRun:
    """What a loop reports: steps run, seconds, mean of the recent losses (NaN when none)."""
    final = sum(recent_losses) / len(recent_losses) if recent_losses else float("nan")
    return TrainingRun(step, round(time.perf_counter() - started, 1), round(final, 5), device.type)


def _cosine_rate(optimizer, learning_rate: float, step_fraction: float, started: float, max_seconds: float) -> float:
    """Set the cosine-decayed learning rate at the further of the step and time-guard fractions
    (a run cut short by the guard still ends at a small rate); returns that fraction."""
    fraction = max(step_fraction, (time.perf_counter() - started) / max_seconds)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(fraction, 1.0)))
    return fraction


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _linear_decay(optimizer: torch.optim.Optimizer, iterations: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant learning rate for the first half, then linearly to zero (as pix2pix does)."""
    half = max(iterations // 2, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(iterations - half, 1)),
    )


def train_pix2pix(
    spec: ArchitectureSpec,
    sample_batch: BatchSampler,
    iterations: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    lambda_l1: float = 100.0,
    adversarial_weight: float = 1.0,
    max_seconds: float = float("inf"),
    log: Callable[[str], None] = print,
) -> tuple[nn.Module, TrainingRun]:
    """Train the runtime's built-in generator ``spec`` on pairs from ``sample_batch``.

    Loss: ``adversarial_weight`` * least-squares GAN against a conditional PatchGAN, plus
    ``lambda_l1`` * L1 to the truth (pix2pix uses 1 and 100; a smaller adversarial weight keeps
    near-identity tasks stable when the critic wins early).
    """
    torch.manual_seed(seed)
    generator = build_generator(spec).to(device).train()
    critic = PatchDiscriminator(spec.input_nc + spec.output_nc).to(device).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    sched_g, sched_d = _linear_decay(opt_g, iterations), _linear_decay(opt_d, iterations)
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    started = time.perf_counter()
    recent_l1 = []
    step = 0
    for step in range(1, iterations + 1):
        degraded, truth = sample_batch(batch_size)
        fake = generator(degraded)
        opt_d.zero_grad(set_to_none=True)
        pred_real = critic(torch.cat([degraded, truth], 1))
        pred_fake = critic(torch.cat([degraded, fake.detach()], 1))
        loss_d = 0.5 * (
            mse(pred_real, torch.ones_like(pred_real)) + mse(pred_fake, torch.zeros_like(pred_fake))
        )
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        pred_fake = critic(torch.cat([degraded, fake], 1))
        loss_l1 = l1(fake, truth)
        loss_g = adversarial_weight * mse(pred_fake, torch.ones_like(pred_fake)) + lambda_l1 * loss_l1
        loss_g.backward()
        opt_g.step()
        sched_g.step()
        sched_d.step()
        recent_l1 = (
            (recent_l1 + [loss_l1.item()])[-50:] if step % 10 == 0 or step == iterations else recent_l1
        )
        if step % 500 == 0:
            log(f"  step {step}/{iterations}: L1 {loss_l1.item():.4f}, D {loss_d.item():.3f}")
        if _past_time_guard(started, max_seconds, step, log):
            break
    return generator.eval().cpu(), _training_run(step, started, recent_l1, device)


def train_dcgan(
    images: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor],
    iterations: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    latent_dim: int = 64,
    max_seconds: float = float("inf"),
    log: Callable[[str], None] = print,
) -> tuple[DcganGenerator, TrainingRun]:
    """Train a DCGAN on ``images`` (N, 1, 64, 64) in [-1, 1] with one-sided label smoothing."""
    torch.manual_seed(seed)
    images = images.to(device)
    generator = DcganGenerator(latent_dim).to(device).train()
    critic = DcganDiscriminator().to(device).train()
    for module in (*generator.modules(), *critic.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    index_gen = torch.Generator(device="cpu").manual_seed(seed)
    started = time.perf_counter()
    step = 0
    for step in range(1, iterations + 1):
        chosen = torch.randint(len(images), (batch_size,), generator=index_gen)
        real = augment(images[chosen.to(device)])
        z = torch.randn(batch_size, latent_dim, device=device)
        fake = generator(z)
        opt_d.zero_grad(set_to_none=True)
        logits_real, logits_fake = critic(real), critic(fake.detach())
        loss_d = bce(logits_real, torch.full_like(logits_real, 0.9)) + bce(
            logits_fake, torch.zeros_like(logits_fake)
        )
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        logits = critic(fake)
        loss_g = bce(logits, torch.ones_like(logits))
        loss_g.backward()
        opt_g.step()
        if step % 1000 == 0:
            log(f"  step {step}/{iterations}: G {loss_g.item():.3f}, D {loss_d.item():.3f}")
        if _past_time_guard(started, max_seconds, step, log):
            break
    return generator.eval().cpu(), _training_run(step, started, [], device)  # no L1 for a DCGAN


def train_residual(
    network: nn.Module,
    sample_batch: BatchSampler,
    iterations: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    change_weight: float = 0.0,
    change_scale: float = 0.1,
    learning_rate: float = 1e-3,
    max_seconds: float = float("inf"),
    log: Callable[[str], None] = print,
) -> tuple[nn.Module, TrainingRun]:
    """Train a residual generator (output = input + correction) with a weighted L1 loss.

    Each voxel's L1 weight is ``1 + change_weight * min(|input - truth| / change_scale, 1)``: with
    ``change_weight`` > 0 the loss concentrates on what the degradation changed (inserted
    lesions) while every other voxel still pulls the output to equal the input (identity term).
    No adversarial loss: on a shared CPU the critic would halve the iterations, and L1 is what
    keeps the output faithful. Adam with cosine decay of the learning rate; seeded.
    """
    torch.manual_seed(seed)
    network = network.to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    started = time.perf_counter()
    planned = max(iterations, 1)
    recent: list[float] = []
    step = 0
    for step in range(1, iterations + 1):
        _cosine_rate(optimizer, learning_rate, step / planned, started, max_seconds)
        degraded, truth = sample_batch(batch_size)
        output = network(degraded)
        weight = 1.0 + change_weight * ((degraded - truth).abs() / change_scale).clamp(max=1.0)
        loss = (weight * (output - truth).abs()).sum() / weight.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent = (recent + [loss.item()])[-50:]
        if step % 100 == 0:
            log(f"  step {step}/{iterations}: weighted L1 {sum(recent) / len(recent):.5f}")
        if _past_time_guard(started, max_seconds, step, log):
            break
    return network.eval().cpu(), _training_run(step, started, recent, device)


DEAD_ZONES = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12)


@torch.no_grad()
def calibrate_dead_zone(
    network: nn.Module, sample_batch: BatchSampler, batches: int = 40, batch_size: int = 8
) -> tuple[float, dict[float, float]]:
    """Pick the network's soft threshold on its correction (``dead_zone``) that minimises the MAE
    to the truth over fresh pairs from ``sample_batch`` (the TRAINING head: the held-out head is
    never used to choose anything). Returns the chosen value and the MAE of each candidate."""
    pairs = [sample_batch(batch_size) for _ in range(batches)]
    errors = {}
    for dead_zone in DEAD_ZONES:
        network.dead_zone = dead_zone
        total = sum(float((network(degraded) - truth).abs().mean()) for degraded, truth in pairs)
        errors[dead_zone] = round(total / len(pairs), 6)
    best = min(errors, key=errors.get)
    network.dead_zone = best
    return best, errors


def train_segmenter(
    network: nn.Module,
    sample_batch: BatchSampler,
    iterations: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    learning_rate: float = 1e-3,
    max_seconds: float = float("inf"),
    log: Callable[[str], None] = print,
) -> tuple[nn.Module, TrainingRun]:
    """Train a segmentation network (logits per class) with cross-entropy on labelled crops.

    ``sample_batch`` returns (images (B, 1, H, W), labels (B, H, W) int64). Adam with cosine decay
    of the learning rate over the planned iterations or the time guard, whichever ends first
    (so a run cut short by the guard still ends at a small learning rate); seeded.
    """
    torch.manual_seed(seed)
    network = network.to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    started = time.perf_counter()
    planned = max(iterations, 1)
    recent: list[float] = []
    step = 0
    for step in range(1, iterations + 1):
        fraction = _cosine_rate(optimizer, learning_rate, step / planned, started, max_seconds)
        images, labels = sample_batch(batch_size)
        loss = nn.functional.cross_entropy(network(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent = (recent + [loss.item()])[-50:]
        if step % 100 == 0:
            log(f"  step {step}/{iterations}: cross-entropy {sum(recent) / len(recent):.4f}")
        if fraction >= 1.0 or _past_time_guard(started, max_seconds, step, log):
            break
    return network.eval().cpu(), _training_run(step, started, recent, device)
