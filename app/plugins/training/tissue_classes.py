"""A classical three-class brain tissue classification of a T1 head (numpy / scipy only).

The labels the shipped tissue segmentation plugin learns from, and the baseline it is judged
against on the held-out head. The method is the textbook one (as in FSL FAST or SPM's unified
segmentation, without their bias-field and partial-volume models):

1. a Gaussian mixture of three classes (CSF, grey matter, white matter) fitted by
   expectation-maximisation to the T1 intensities inside the brain mask (every 7th voxel; EM
   starts from 1D k-means, whose centres start evenly spaced from the 1st to the 99th percentile);
2. each brain voxel given the class of highest posterior, then refined by iterated conditional
   modes on a Potts Markov random field over the 6 face neighbours (``beta`` per disagreeing
   neighbour, in units of the negative log-likelihood; 5 sweeps);
3. everything outside the brain mask is background (0); CSF 1, grey matter 2, white matter 3.

No bias-field correction: ``wm_median_by_position`` measures how much the white-matter
intensity drifts across the head, and the training script records it on the model card.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

BACKGROUND, CSF, GREY_MATTER, WHITE_MATTER = 0, 1, 2, 3
TISSUES = (CSF, GREY_MATTER, WHITE_MATTER)
MRF_BETA = 1.0
ICM_SWEEPS = 5
EM_ITERATIONS = 60
EM_SUBSAMPLE = 7


@dataclass(frozen=True)
class TissueClassification:
    labels: np.ndarray  # uint8, same shape as the T1: 0 background, 1 CSF, 2 GM, 3 WM
    means: tuple[float, float, float]  # the mixture's class means (T1 units), CSF < GM < WM
    sds: tuple[float, float, float]
    weights: tuple[float, float, float]

    def summary(self) -> dict:
        counts = np.bincount(self.labels.ravel(), minlength=4)
        return {
            "means": [round(v, 2) for v in self.means],
            "sds": [round(v, 2) for v in self.sds],
            "weights": [round(v, 4) for v in self.weights],
            "voxels": {"csf": int(counts[CSF]), "grey_matter": int(counts[GREY_MATTER]), "white_matter": int(counts[WHITE_MATTER])},
        }


def fit_mixture(values: np.ndarray, iterations: int = EM_ITERATIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means, standard deviations and weights of a 3-class 1D Gaussian mixture (EM), by mean."""
    x = np.asarray(values, np.float64)
    means = _kmeans_1d(x, np.linspace(*np.percentile(x, [1, 99]), 3))
    sds = np.full(3, max(x.std() / 3.0, 1e-6))
    weights = np.full(3, 1.0 / 3.0)
    for _ in range(iterations):
        log_p = _log_likelihood(x, means, sds, weights)
        log_p -= log_p.max(axis=1, keepdims=True)
        resp = np.exp(log_p)
        resp /= resp.sum(axis=1, keepdims=True)
        counts = resp.sum(axis=0) + 1e-12
        weights = counts / counts.sum()
        means = (resp * x[:, None]).sum(axis=0) / counts
        sds = np.sqrt((resp * (x[:, None] - means) ** 2).sum(axis=0) / counts) + 1e-6
    order = np.argsort(means)
    return means[order], sds[order], weights[order]


def _kmeans_1d(x: np.ndarray, centres: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Lloyd's k-means in 1D from ``centres``: a start for EM that no class's size can pull
    off (percentile starts fail when one class holds most of the voxels)."""
    for _ in range(iterations):
        nearest = np.argmin(np.abs(x[:, None] - centres), axis=1)
        centres = np.array([x[nearest == c].mean() if (nearest == c).any() else centres[c] for c in range(len(centres))])
    return centres


def _log_likelihood(x: np.ndarray, means, sds, weights) -> np.ndarray:
    return -0.5 * ((x[:, None] - means) / sds) ** 2 - np.log(sds) + np.log(weights)


def classify_tissues(
    t1: np.ndarray, brain_mask: np.ndarray, beta: float = MRF_BETA, sweeps: int = ICM_SWEEPS
) -> TissueClassification:
    """Background / CSF / grey / white matter labels of ``t1`` inside ``brain_mask`` (see module)."""
    mask = np.asarray(brain_mask, bool)
    if mask.sum() < 100:
        raise ValueError("the brain mask holds fewer than 100 voxels: nothing to classify")
    means, sds, weights = fit_mixture(np.asarray(t1)[mask][::EM_SUBSAMPLE])
    inside = np.asarray(t1, np.float64)[mask]
    unary = -_log_likelihood(inside, means, sds, weights)  # (n, 3) negative log posteriors
    classes = np.argmin(unary, axis=1)
    neighbours = ndimage.generate_binary_structure(3, 1).astype(np.float32)
    neighbours[1, 1, 1] = 0.0
    volume = np.zeros(mask.shape, np.uint8)
    for _ in range(sweeps if beta > 0 else 0):
        volume[mask] = classes + 1
        agreeing = np.stack(
            [ndimage.convolve((volume == tissue).astype(np.float32), neighbours, mode="constant")[mask] for tissue in TISSUES],
            axis=1,
        )
        # Potts energy: beta per neighbour of another class = -beta per agreeing one (+ constant).
        classes = np.argmin(unary - beta * agreeing, axis=1)
    labels = np.zeros(mask.shape, np.uint8)
    labels[mask] = classes + 1
    return TissueClassification(labels, tuple(map(float, means)), tuple(map(float, sds)), tuple(map(float, weights)))


def wm_median_by_position(t1: np.ndarray, labels: np.ndarray, parts: int = 5) -> list[list[float]]:
    """Median white-matter intensity in ``parts`` equal slabs along each array axis: how far a
    bias field (smooth intensity drift) moves the white matter across the head."""
    white = labels == WHITE_MATTER
    medians = []
    for axis in range(3):
        present = np.flatnonzero(white.any(axis=tuple(a for a in range(3) if a != axis)))
        row = []
        for chunk in np.array_split(present, parts):
            index = [slice(None)] * 3
            index[axis] = slice(int(chunk[0]), int(chunk[-1]) + 1)
            row.append(round(float(np.median(t1[tuple(index)][white[tuple(index)]])), 1))
        medians.append(row)
    return medians
