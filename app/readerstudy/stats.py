"""Reader-study statistics, implemented here with numpy/scipy (no statsmodels or scikit-learn).

Positive class = synthetic throughout: sensitivity is the fraction of synthetic images called
synthetic, specificity the fraction of real images called real, and the fooling rate the fraction
of synthetic images called real (1 - sensitivity).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

EXACT_BINOMIAL_TEST_NAME = (
    "exact two-sided binomial test (H0: p = 0.5; p-values of outcomes no more likely than observed summed)"
)
CLOPPER_PEARSON_NAME = "Clopper-Pearson exact interval"
MANN_WHITNEY_EXACT = "Mann-Whitney U test, two-sided, exact distribution"
MANN_WHITNEY_ASYMPTOTIC = (
    "Mann-Whitney U test, two-sided, normal approximation with tie and continuity correction"
)


@dataclass(frozen=True)
class Proportion:
    """A count out of a total with its exact (Clopper-Pearson) interval."""

    successes: int
    total: int
    estimate: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return asdict(self)


def clopper_pearson(successes: int, total: int, confidence: float = 0.95) -> Proportion:
    """Exact binomial interval from the beta distribution; NaN estimate when total is 0."""
    if total <= 0:
        return Proportion(successes, total, float("nan"), float("nan"), float("nan"))
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(sps.beta.ppf(alpha / 2, successes, total - successes + 1))
    high = 1.0 if successes == total else float(sps.beta.ppf(1 - alpha / 2, successes + 1, total - successes))
    return Proportion(successes, total, successes / total, low, high)


def exact_binomial_test(successes: int, total: int, p0: float = 0.5) -> float:
    """Two-sided exact binomial p-value: sum of probabilities of outcomes no likelier than observed."""
    if total <= 0:
        return float("nan")
    probabilities = sps.binom.pmf(np.arange(total + 1), total, p0)
    observed = probabilities[successes]
    # The relative tolerance is the one R's binom.test uses, so ties in probability count.
    p_value = probabilities[probabilities <= observed * (1 + 1e-7)].sum()
    return float(min(1.0, p_value))


CHI_SQUARE_NAME = "Pearson chi-square test of independence, 2 x 2, with Yates' continuity correction"
FISHER_NAME = "Fisher's exact test, two-sided"


@dataclass(frozen=True)
class ClassTest:
    """How often the images of one class were called that class, tested against chance (50 %).

    The visual Turing test's question per class: were synthetic images called synthetic more (or
    less) often than a coin would, and real images called real?"""

    truth: str  # "synthetic" or "real"
    called_as_truth: Proportion
    binomial_p_value: float | None  # None when the class has no readings
    test: str = EXACT_BINOMIAL_TEST_NAME

    def to_dict(self) -> dict:
        return {
            "truth": self.truth,
            "called_as_truth": self.called_as_truth.to_dict(),
            "binomial_p_value": self.binomial_p_value,
            "test": self.test,
        }


def class_test(correct: int, total: int, truth: str) -> ClassTest:
    p_value = exact_binomial_test(correct, total) if total > 0 else None
    return ClassTest(truth, clopper_pearson(correct, total), p_value)


@dataclass(frozen=True)
class ContingencyTest:
    """Truth x call table (rows real, synthetic; columns called real, called synthetic) and the
    tests of independence. A test is None, with the reason, when a row or column is empty."""

    table: list[list[int]]
    chi_square: float | None
    chi_square_p_value: float | None
    fisher_odds_ratio: float | None
    fisher_p_value: float | None
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "rows": ["truth real", "truth synthetic"],
            "columns": ["called real", "called synthetic"],
            "chi_square": self.chi_square,
            "chi_square_p_value": self.chi_square_p_value,
            "chi_square_test": CHI_SQUARE_NAME,
            "fisher_odds_ratio": self.fisher_odds_ratio,
            "fisher_p_value": self.fisher_p_value,
            "fisher_test": FISHER_NAME,
            "note": self.note,
        }


def contingency_test(truth_synthetic, called_synthetic) -> ContingencyTest:
    truth = np.asarray(truth_synthetic, dtype=bool)
    called = np.asarray(called_synthetic, dtype=bool)
    table = [
        [int(np.sum(~truth & ~called)), int(np.sum(~truth & called))],
        [int(np.sum(truth & ~called)), int(np.sum(truth & called))],
    ]
    array = np.asarray(table)
    if (array.sum(axis=0) == 0).any() or (array.sum(axis=1) == 0).any():
        empty = "a class has no readings" if (array.sum(axis=1) == 0).any() else "every call was the same"
        return ContingencyTest(table, None, None, None, None, f"undefined: {empty}")
    chi2, chi2_p, _, _ = sps.chi2_contingency(array, correction=True)
    odds, fisher_p = sps.fisher_exact(array, alternative="two-sided")
    odds_ratio = float(odds) if np.isfinite(odds) else None
    note = "" if odds_ratio is not None else "odds ratio infinite (a cell is 0)"
    return ContingencyTest(table, float(chi2), float(chi2_p), odds_ratio, float(fisher_p), note)


@dataclass(frozen=True)
class BinaryDecisionSummary:
    """Real/synthetic decisions of one reader (or pooled) against the truth."""

    accuracy: Proportion
    sensitivity: Proportion
    specificity: Proportion
    fooling_rate: Proportion
    binomial_p_value: float
    per_class: tuple[ClassTest, ClassTest] | None = None  # (synthetic, real)
    contingency: ContingencyTest | None = None
    test_name: str = EXACT_BINOMIAL_TEST_NAME

    def to_dict(self) -> dict:
        data = {
            "accuracy": self.accuracy.to_dict(),
            "sensitivity": self.sensitivity.to_dict(),
            "specificity": self.specificity.to_dict(),
            "fooling_rate": self.fooling_rate.to_dict(),
            "binomial_p_value": self.binomial_p_value,
            "test": self.test_name,
        }
        if self.per_class is not None:
            data["per_class"] = {test.truth: test.to_dict() for test in self.per_class}
        if self.contingency is not None:
            data["contingency"] = self.contingency.to_dict()
        return data


def summarise_decisions(truth_synthetic, called_synthetic) -> BinaryDecisionSummary:
    """Accuracy, sensitivity, specificity, fooling rate (with CIs), the test of accuracy vs 50 %,
    the per-class tests (synthetic called synthetic, real called real, each vs 50 %) and the
    truth x call contingency tests."""
    truth = np.asarray(truth_synthetic, dtype=bool)
    called = np.asarray(called_synthetic, dtype=bool)
    correct = int(np.sum(truth == called))
    true_positive = int(np.sum(truth & called))
    true_negative = int(np.sum(~truth & ~called))
    false_negative = int(np.sum(truth & ~called))
    positives, negatives = int(truth.sum()), int((~truth).sum())
    return BinaryDecisionSummary(
        accuracy=clopper_pearson(correct, truth.size),
        sensitivity=clopper_pearson(true_positive, positives),
        specificity=clopper_pearson(true_negative, negatives),
        fooling_rate=clopper_pearson(false_negative, positives),
        binomial_p_value=exact_binomial_test(correct, truth.size),
        per_class=(
            class_test(true_positive, positives, "synthetic"),
            class_test(true_negative, negatives, "real"),
        ),
        contingency=contingency_test(truth, called),
    )


# ----- ROC -------------------------------------------------------------------------------------
def _placement_kernel(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """psi(x, y) = 1 if x > y, 0.5 if tied, 0 otherwise, for every positive x and negative y."""
    difference = positive[:, None] - negative[None, :]
    return (difference > 0).astype(float) + 0.5 * (difference == 0)


def empirical_auc(truth_positive, scores) -> float:
    """Trapezoidal (Wilcoxon-Mann-Whitney) AUC; ties count one half."""
    truth = np.asarray(truth_positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    positive, negative = scores[truth], scores[~truth]
    if positive.size == 0 or negative.size == 0:
        raise ValueError("AUC needs at least one positive and one negative case")
    return float(_placement_kernel(positive, negative).mean())


def delong_components(truth_positive, scores) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC with DeLong's structural components V10 (per positive) and V01 (per negative)."""
    truth = np.asarray(truth_positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    kernel = _placement_kernel(scores[truth], scores[~truth])
    return float(kernel.mean()), kernel.mean(axis=1), kernel.mean(axis=0)


@dataclass(frozen=True)
class AucEstimate:
    auc: float
    standard_error: float
    ci_low: float
    ci_high: float
    method: str = "DeLong et al. (1988) variance, normal interval clipped to [0, 1]"

    def to_dict(self) -> dict:
        return asdict(self)


def delong_auc(truth_positive, scores, confidence: float = 0.95) -> AucEstimate:
    """AUC and its DeLong standard error and interval."""
    auc, v10, v01 = delong_components(truth_positive, scores)
    m, n = v10.size, v01.size
    variance = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    se = float(np.sqrt(variance))
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    return AucEstimate(auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se))


def roc_curve_points(truth_positive, scores) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC operating points (FPR, TPR) from (0, 0) to (1, 1), one per distinct threshold."""
    truth = np.asarray(truth_positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    thresholds = np.unique(scores)[::-1]
    fpr = [0.0] + [float(np.mean(scores[~truth] >= t)) for t in thresholds]
    tpr = [0.0] + [float(np.mean(scores[truth] >= t)) for t in thresholds]
    return np.asarray(fpr), np.asarray(tpr)


# ----- agreement --------------------------------------------------------------------------------
def cohen_kappa(ratings_a, ratings_b) -> float:
    """Cohen's kappa of two raters over the same items (unweighted)."""
    a = np.asarray(ratings_a)
    b = np.asarray(ratings_b)
    categories = np.unique(np.concatenate([a, b]))
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((categories.size, categories.size))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    total = table.sum()
    observed = np.trace(table) / total
    expected = float(table.sum(axis=0) @ table.sum(axis=1)) / total**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def fleiss_kappa_from_counts(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories table of how many raters chose each category."""
    counts = np.asarray(counts, dtype=float)
    raters = counts.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    n = raters[0]
    p_category = counts.sum(axis=0) / counts.sum()
    p_item = (np.sum(counts**2, axis=1) - n) / (n * (n - 1))
    p_bar, p_expected = p_item.mean(), float(np.sum(p_category**2))
    return float((p_bar - p_expected) / (1 - p_expected)) if p_expected < 1 else float("nan")


def counts_from_ratings(ratings: np.ndarray) -> np.ndarray:
    """items x raters matrix of category labels -> items x categories count table."""
    ratings = np.asarray(ratings)
    categories = np.unique(ratings)
    return np.stack([(ratings == c).sum(axis=1) for c in categories], axis=1)


@dataclass(frozen=True)
class KappaEstimate:
    kappa: float
    ci_low: float
    ci_high: float
    bootstrap_replicates: int
    method: str = "Fleiss' kappa; percentile bootstrap interval resampling cases"

    def to_dict(self) -> dict:
        return asdict(self)


def fleiss_kappa_bootstrap(
    ratings: np.ndarray, replicates: int = 2000, seed: int = 0, confidence: float = 0.95
) -> KappaEstimate:
    """Fleiss' kappa of an items x raters label matrix with a case-resampling bootstrap interval."""
    ratings = np.asarray(ratings)
    counts = counts_from_ratings(ratings)
    kappa = fleiss_kappa_from_counts(counts)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(replicates):
        rows = rng.integers(0, counts.shape[0], counts.shape[0])
        value = fleiss_kappa_from_counts(counts[rows])
        if np.isfinite(value):
            samples.append(value)
    if not samples:
        return KappaEstimate(kappa, float("nan"), float("nan"), replicates)
    alpha = 1 - confidence
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return KappaEstimate(kappa, float(low), float(high), replicates)


# ----- Likert ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LikertComparison:
    real_median: float
    synthetic_median: float
    real_n: int
    synthetic_n: int
    u_statistic: float
    p_value: float
    test_name: str

    def to_dict(self) -> dict:
        return asdict(self)


def compare_likert(real_scores, synthetic_scores) -> LikertComparison:
    """Image-quality scores of real vs synthetic images, two-sided Mann-Whitney U."""
    real = np.asarray(real_scores, dtype=float)
    synthetic = np.asarray(synthetic_scores, dtype=float)
    if real.size == 0 or synthetic.size == 0:
        raise ValueError("Likert comparison needs scores for both real and synthetic images")
    # Exact only where it is exact: a small sample and no ties (Likert scores nearly always tie).
    tied = np.unique(np.concatenate([real, synthetic])).size < real.size + synthetic.size
    exact = min(real.size, synthetic.size) <= 8 and not tied
    result = sps.mannwhitneyu(
        synthetic,
        real,
        alternative="two-sided",
        method="exact" if exact else "asymptotic",
        use_continuity=True,
    )
    return LikertComparison(
        float(np.median(real)),
        float(np.median(synthetic)),
        int(real.size),
        int(synthetic.size),
        float(result.statistic),
        float(result.pvalue),
        MANN_WHITNEY_EXACT if exact else MANN_WHITNEY_ASYMPTOTIC,
    )


# ----- multiplicity ------------------------------------------------------------------------------
HOLM_NAME = "Holm (1979) step-down adjustment (family-wise error rate)"


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given (monotone, capped at 1)."""
    order = np.argsort(p_values)
    count = len(p_values)
    adjusted = np.empty(count)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted.tolist()
