"""Held-out metrics (MAE, PSNR, SSIM from scikit-image) for the shipped plugins.

Images are compared in units of the held-out head's 99.5th percentile, clipped to [0, 1]
(data range 1). SSIM is the mean of 2D SSIMs over the slices of the plugin's plane. Each plugin
is run through the runtime (``app.plugins.runtime.synthesize``) exactly as the app runs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from app.plugins.plane_stack import plane_layout
from app.plugins.training.tasks import PSEUDO_HEALTHY, HeldoutCase


def image_metrics(result: np.ndarray, truth: np.ndarray, reference: float, direction, plane: str) -> dict:
    result_unit = np.clip(np.asarray(result, np.float64) / reference, 0.0, 1.0)
    truth_unit = np.clip(np.asarray(truth, np.float64) / reference, 0.0, 1.0)
    layout = plane_layout(np.asarray(direction), plane)
    result_stack, truth_stack = layout.to_stack(result_unit), layout.to_stack(truth_unit)
    ssim = np.mean(
        [structural_similarity(t, r, data_range=1.0) for t, r in zip(truth_stack, result_stack, strict=True)]
    )
    return {
        "mae": round(float(np.mean(np.abs(result_unit - truth_unit))), 5),
        "psnr_db": round(float(peak_signal_noise_ratio(truth_unit, result_unit, data_range=1.0)), 3),
        "ssim": round(float(ssim), 4),
    }


def lesion_metrics(case: HeldoutCase, result: np.ndarray) -> dict:
    """How well the residual |input - output| shows the inserted lesions."""
    residual = np.abs(case.input_volume.voxels - result) / case.reference_intensity
    lesion = case.lesion_mask.astype(bool)
    healthy_brain = case.brain_mask.astype(bool) & ~lesion
    before = np.mean(np.abs(case.input_volume.voxels - case.truth)[lesion])
    after = np.mean(np.abs(result - case.truth)[lesion])
    return {
        "residual_lesion_to_brain_ratio": round(
            float(residual[lesion].mean() / residual[healthy_brain].mean()), 3
        ),
        "lesion_error_removed_fraction": round(float(1.0 - after / before), 4),
        "residual_lesion_auroc": round(auroc(residual[lesion], residual[healthy_brain]), 4),
        # Intensity bias on healthy tissue: mean output / mean input over the brain outside lesions.
        "healthy_brain_output_to_input": round(
            float(result[healthy_brain].mean() / case.input_volume.voxels[healthy_brain].mean()), 4
        ),
    }


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of a score separating ``positive`` from ``negative`` voxels
    (Mann-Whitney U with tied scores sharing their mean rank): 0.5 is chance, 1 is perfect."""
    from scipy.stats import rankdata

    positive, negative = np.ravel(positive), np.ravel(negative)
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = positive.size, negative.size
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate_plugin(plugin_folder: str | Path, case: HeldoutCase, device: str = "cpu") -> dict:
    """Run the plugin on the held-out case through the runtime; metrics of output and input."""
    from app.plugins.manifest import load_manifest
    from app.plugins.runtime import RunOptions, synthesize

    manifest = load_manifest(plugin_folder)
    result = synthesize(
        manifest, case.input_volume, RunOptions(device=device, mixed_precision=False, batch_size=4)
    )
    output = np.asarray(result.volume.voxels, np.float32)
    metrics = {
        "output_vs_truth": image_metrics(
            output, case.truth, case.reference_intensity, case.direction, case.plane
        ),
        "input_vs_truth": image_metrics(
            case.input_volume.voxels, case.truth, case.reference_intensity, case.direction, case.plane
        ),
    }
    if case.kind == PSEUDO_HEALTHY:
        metrics["lesions"] = lesion_metrics(case, output)
    return metrics


# ---------------------------------------------------------------------------------- generator


def nearest_neighbour_distances(samples: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each sample (N, H, W) in [0, 1]: the smallest MAE to any reference, and its index."""
    flat_s = samples.reshape(len(samples), -1).astype(np.float32)
    flat_r = references.reshape(len(references), -1).astype(np.float32)
    distances = np.stack([np.abs(flat_r - s).mean(axis=1) for s in flat_s])
    return distances.min(axis=1), distances.argmin(axis=1)


def generator_metrics(samples: np.ndarray, training: np.ndarray, heldout: np.ndarray) -> dict:
    """Memorisation and diversity figures for an unconditional generator (all in [0, 1]).

    A sample copying a training image would have a nearest-training MAE near 0 and SSIM near 1;
    real slices of the held-out head give the scale of "different but realistic".
    """
    sample_nn, sample_index = nearest_neighbour_distances(samples, training)
    heldout_nn, heldout_index = nearest_neighbour_distances(heldout, training)
    sample_ssim = [
        structural_similarity(training[i], s, data_range=1.0)
        for s, i in zip(samples, sample_index, strict=True)
    ]
    heldout_ssim = [
        structural_similarity(training[i], h, data_range=1.0)
        for h, i in zip(heldout, heldout_index, strict=True)
    ]
    heldout_to_sample, _ = nearest_neighbour_distances(heldout, samples)
    sample_psnr = [
        peak_signal_noise_ratio(training[i], s, data_range=1.0)
        for s, i in zip(samples, sample_index, strict=True)
    ]
    count = len(samples)
    pairwise = [np.abs(samples[a] - samples[b]).mean() for a in range(count) for b in range(a + 1, count)]
    return {
        "samples": count,
        "sample_to_nearest_training_mae": round(float(sample_nn.mean()), 5),
        "sample_to_nearest_training_min_mae": round(float(sample_nn.min()), 5),
        "sample_to_nearest_training_psnr_db": round(float(np.mean(sample_psnr)), 3),
        "sample_to_nearest_training_ssim": round(float(np.mean(sample_ssim)), 4),
        "heldout_to_nearest_training_mae": round(float(heldout_nn.mean()), 5),
        "heldout_to_nearest_training_ssim": round(float(np.mean(heldout_ssim)), 4),
        "heldout_to_nearest_sample_mae": round(float(heldout_to_sample.mean()), 5),
        "mean_pairwise_sample_mae": round(float(np.mean(pairwise)), 5),
        "min_pairwise_sample_mae": round(float(np.min(pairwise)), 5),
    }
