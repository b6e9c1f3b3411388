"""Multi-reader multi-case ROC analysis: Obuchowski-Rockette with Hillis (2007) degrees of freedom.

Input: ``scores[modality, reader, case]`` and ``truth[case]`` (True = positive, here synthetic).
Figures of merit are empirical (trapezoidal) AUCs; the AUC covariance between (modality, reader)
pairs is estimated by the case jackknife (RJafroc's default, ``covEstMethod = "jackknife"``) or by
DeLong's structural components. With the jackknife this reproduces RJafroc's published Van Dyke
results (F = 4.456, ddf = 15.26, p = 0.0517).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from app.readerstudy.stats import _placement_kernel

TEST_NAME = "Obuchowski-Rockette ANOVA with Hillis (2007) denominator degrees of freedom"


def auc_matrix(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Empirical AUC of every (modality, reader): shape (I, J)."""
    truth = np.asarray(truth, dtype=bool)
    modalities, readers, _ = scores.shape
    result = np.empty((modalities, readers))
    for i in range(modalities):
        for j in range(readers):
            result[i, j] = _placement_kernel(scores[i, j, truth], scores[i, j, ~truth]).mean()
    return result


def jackknife_auc_covariance(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(I*J) x (I*J) covariance of AUC estimates by leaving out one case at a time."""
    truth = np.asarray(truth, dtype=bool)
    modalities, readers, cases = scores.shape
    positives, negatives = np.flatnonzero(truth), np.flatnonzero(~truth)
    pseudo = np.empty((cases, modalities * readers))
    for i in range(modalities):
        for j in range(readers):
            kernel = _placement_kernel(scores[i, j, positives], scores[i, j, negatives])
            total, m, n = kernel.sum(), positives.size, negatives.size
            row_sums, col_sums = kernel.sum(axis=1), kernel.sum(axis=0)
            column = i * readers + j
            # Leaving out a positive removes its row; a negative removes its column.
            pseudo[positives, column] = (total - row_sums) / ((m - 1) * n)
            pseudo[negatives, column] = (total - col_sums) / (m * (n - 1))
    centred = pseudo - pseudo.mean(axis=0)
    return (cases - 1) / cases * centred.T @ centred


def delong_auc_covariance(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(I*J) x (I*J) DeLong covariance of AUC estimates from structural components."""
    truth = np.asarray(truth, dtype=bool)
    modalities, readers, _ = scores.shape
    v10, v01 = [], []
    for i in range(modalities):
        for j in range(readers):
            kernel = _placement_kernel(scores[i, j, truth], scores[i, j, ~truth])
            v10.append(kernel.mean(axis=1))
            v01.append(kernel.mean(axis=0))
    v10, v01 = np.asarray(v10), np.asarray(v01)
    return np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]


def _mean_covariances(covariance: np.ndarray, modalities: int, readers: int) -> tuple[float, ...]:
    """OR's Var, Cov1 (same reader, other modality), Cov2 (same modality, other reader), Cov3."""
    var, cov1, cov2, cov3 = [], [], [], []
    for a in range(modalities * readers):
        ia, ja = divmod(a, readers)
        for b in range(modalities * readers):
            ib, jb = divmod(b, readers)
            value = covariance[a, b]
            if a == b:
                var.append(value)
            elif ja == jb:
                cov1.append(value)
            elif ia == ib:
                cov2.append(value)
            else:
                cov3.append(value)

    def mean(values: list) -> float:
        return float(np.mean(values)) if values else 0.0

    return mean(var), mean(cov1), mean(cov2), mean(cov3)


@dataclass
class MrmcResult:
    modalities: list[str]
    readers: list[str]
    auc: np.ndarray  # (I, J)
    modality_auc: np.ndarray  # (I,)
    f_statistic: float
    ndf: int
    ddf: float
    p_value: float
    variance: float
    cov1: float
    cov2: float
    cov3: float
    ms_treatment: float
    ms_treatment_reader: float
    difference: float
    difference_ci: tuple[float, float]
    per_modality_ci: list[tuple[float, float, float]] = field(default_factory=list)  # (low, high, df)
    covariance_method: str = "jackknife"
    test_name: str = TEST_NAME

    def to_dict(self) -> dict:
        return {
            "test": self.test_name,
            "covariance_method": self.covariance_method,
            "modalities": self.modalities,
            "readers": self.readers,
            "reader_auc": {
                m: {r: float(self.auc[i, j]) for j, r in enumerate(self.readers)}
                for i, m in enumerate(self.modalities)
            },
            "modality_auc": {m: float(self.modality_auc[i]) for i, m in enumerate(self.modalities)},
            "modality_auc_ci": {
                m: {"ci_low": c[0], "ci_high": c[1], "df": c[2]}
                for m, c in zip(self.modalities, self.per_modality_ci, strict=True)
            },
            "f_statistic": self.f_statistic,
            "ndf": self.ndf,
            "ddf": self.ddf,
            "p_value": self.p_value,
            "variance_components": {
                "var": self.variance,
                "cov1": self.cov1,
                "cov2": self.cov2,
                "cov3": self.cov3,
                "ms_t": self.ms_treatment,
                "ms_tr": self.ms_treatment_reader,
            },
            "difference_first_minus_second": self.difference,
            "difference_ci": list(self.difference_ci),
        }


def obuchowski_rockette(
    scores: np.ndarray,
    truth: np.ndarray,
    modalities: list[str] | None = None,
    readers: list[str] | None = None,
    covariance_method: str = "jackknife",
    confidence: float = 0.95,
) -> MrmcResult:
    """Random-reader random-case OR analysis of ``scores[modality, reader, case]``."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    n_mod, n_read, n_case = scores.shape
    if n_mod < 2 or n_read < 2:
        raise ValueError("MRMC analysis needs at least two modalities and two readers")
    if truth.size != n_case or truth.all() or not truth.any():
        raise ValueError("MRMC analysis needs a truth for every case, with both classes present")
    modalities = modalities or [str(i) for i in range(n_mod)]
    readers = readers or [str(j) for j in range(n_read)]
    auc = auc_matrix(scores, truth)
    if covariance_method == "jackknife":
        covariance = jackknife_auc_covariance(scores, truth)
    elif covariance_method == "delong":
        covariance = delong_auc_covariance(scores, truth)
    else:
        raise ValueError(f"unknown covariance method {covariance_method!r} (jackknife or delong)")
    var, cov1, cov2, cov3 = _mean_covariances(covariance, n_mod, n_read)

    modality_auc = auc.mean(axis=1)
    reader_mean = auc.mean(axis=0)
    grand = auc.mean()
    ms_t = n_read * np.sum((modality_auc - grand) ** 2) / (n_mod - 1)
    interaction = auc - modality_auc[:, None] - reader_mean[None, :] + grand
    ms_tr = np.sum(interaction**2) / ((n_mod - 1) * (n_read - 1))
    denominator = ms_tr + n_read * max(cov2 - cov3, 0.0)
    if not denominator > 0:
        # e.g. every reader perfect under both modalities: nothing varies, F is 0/0.
        raise ValueError(
            "no reader or case variance in the AUCs: the Obuchowski-Rockette F test is undefined"
        )
    f_statistic = ms_t / denominator
    # Hillis ddf; with no treatment-by-reader variance it tends to infinity (the chi-square limit).
    ddf = denominator**2 / (ms_tr**2 / ((n_mod - 1) * (n_read - 1))) if ms_tr > 0 else float("inf")
    p_value = float(sps.f.sf(f_statistic, n_mod - 1, ddf))

    difference = float(modality_auc[0] - modality_auc[1])
    se_difference = np.sqrt(2.0 / n_read * denominator)
    t = float(sps.t.ppf(0.5 + confidence / 2, ddf))
    difference_ci = (difference - t * se_difference, difference + t * se_difference)

    per_modality = []
    for i in range(n_mod):
        block = covariance[i * n_read : (i + 1) * n_read, i * n_read : (i + 1) * n_read]
        off_diagonal = block[~np.eye(n_read, dtype=bool)]
        cov2_i = float(off_diagonal.mean())
        ms_r = float(np.sum((auc[i] - modality_auc[i]) ** 2) / (n_read - 1))
        single_denominator = ms_r + n_read * max(cov2_i, 0.0)
        df_i = single_denominator**2 / (ms_r**2 / (n_read - 1)) if ms_r > 0 else float("inf")
        half = float(sps.t.ppf(0.5 + confidence / 2, df_i)) * np.sqrt(single_denominator / n_read)
        per_modality.append((float(modality_auc[i] - half), float(modality_auc[i] + half), float(df_i)))

    return MrmcResult(
        modalities=list(modalities),
        readers=list(readers),
        auc=auc,
        modality_auc=modality_auc,
        f_statistic=float(f_statistic),
        ndf=n_mod - 1,
        ddf=float(ddf),
        p_value=p_value,
        variance=var,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        ms_treatment=float(ms_t),
        ms_treatment_reader=float(ms_tr),
        difference=difference,
        difference_ci=(float(difference_ci[0]), float(difference_ci[1])),
        per_modality_ci=per_modality,
        covariance_method=covariance_method,
    )
