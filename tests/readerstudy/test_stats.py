"""Statistics: the Van Dyke published results, and agreement with reference libraries on random data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from app.readerstudy import stats
from app.readerstudy.analysis import analyze
from app.readerstudy.mrmc import obuchowski_rockette
from app.readerstudy.ratings import RatingRow, read_csv, read_imrmc, write_csv, write_imrmc

VAN_DYKE = Path(__file__).resolve().parents[1] / "data" / "vandyke-roc.imrmc"
PUBLISHED_AUC = {
    "0": [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066],
    "1": [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169],
}


@pytest.fixture(scope="module")
def van_dyke():
    return analyze(VAN_DYKE)


def test_van_dyke_reader_aucs_match_published(van_dyke):
    for modality, expected in PUBLISHED_AUC.items():
        per_reader = van_dyke["modalities"][modality]["roc"]["per_reader"]
        found = [per_reader[str(reader)]["auc"] for reader in range(5)]
        np.testing.assert_allclose(found, expected, atol=5e-9)
        assert van_dyke["mrmc"]["reader_auc"][modality][str(0)] == pytest.approx(expected[0], abs=5e-9)


def test_van_dyke_or_hillis_matches_published(van_dyke):
    mrmc = van_dyke["mrmc"]
    assert mrmc["f_statistic"] == pytest.approx(4.46, abs=0.005)
    assert mrmc["ddf"] == pytest.approx(15.26, abs=0.005)
    assert mrmc["p_value"] == pytest.approx(0.0517, abs=0.00005)
    assert mrmc["ndf"] == 1
    assert "Hillis" in mrmc["test"] and "Obuchowski-Rockette" in mrmc["test"]
    assert mrmc["cases"] == 114


def test_mrmc_needs_two_modalities_and_readers():
    with pytest.raises(ValueError, match="two modalities"):
        obuchowski_rockette(np.zeros((1, 3, 4)), np.array([0, 0, 1, 1]))


def test_auc_matches_scikit_learn_on_random_data():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for _ in range(5):
        truth = rng.integers(0, 2, 60)
        truth[:2] = [0, 1]
        scores = rng.integers(1, 6, 60) + truth  # ties on purpose
        assert stats.empirical_auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)


def test_delong_variance_matches_its_definition_on_a_small_case():
    # Positives [4, 2], negatives [1, 2]: V10 = [1, 0.75], V01 = [1, 0.75], each sample
    # variance 0.03125, so var(AUC) = 0.03125 / 2 + 0.03125 / 2.
    estimate = stats.delong_auc([1, 1, 0, 0], [4, 2, 1, 2])
    assert estimate.auc == pytest.approx(0.875)
    assert estimate.standard_error == pytest.approx(np.sqrt(0.03125))
    assert estimate.ci_low < 0.875 < estimate.ci_high <= 1.0


def test_kappas_match_statsmodels_on_random_data():
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

    rng = np.random.default_rng(11)
    ratings = rng.integers(0, 3, size=(40, 4))
    ratings[:, 1] = np.where(rng.random(40) < 0.6, ratings[:, 0], ratings[:, 1])  # some agreement
    table, _ = aggregate_raters(ratings)
    assert stats.fleiss_kappa_from_counts(stats.counts_from_ratings(ratings)) == pytest.approx(
        fleiss_kappa(table, method="fleiss"), abs=1e-12
    )
    contingency = np.zeros((3, 3))
    for a, b in zip(ratings[:, 0], ratings[:, 1], strict=True):
        contingency[a, b] += 1
    assert stats.cohen_kappa(ratings[:, 0], ratings[:, 1]) == pytest.approx(
        cohens_kappa(contingency).kappa, abs=1e-12
    )
    bootstrap = stats.fleiss_kappa_bootstrap(ratings, replicates=300, seed=1)
    assert bootstrap.ci_low < bootstrap.kappa < bootstrap.ci_high


def test_clopper_pearson_and_exact_binomial_match_references():
    from statsmodels.stats.proportion import proportion_confint

    for successes, total in [(0, 10), (3, 10), (10, 10), (17, 40), (55, 100)]:
        interval = stats.clopper_pearson(successes, total)
        low, high = proportion_confint(successes, total, alpha=0.05, method="beta")
        assert interval.ci_low == pytest.approx(0.0 if successes == 0 else low, abs=1e-10)
        assert interval.ci_high == pytest.approx(1.0 if successes == total else high, abs=1e-10)
        expected = sps.binomtest(successes, total, 0.5).pvalue
        assert stats.exact_binomial_test(successes, total) == pytest.approx(expected, rel=1e-9)


def test_decision_summary_uses_synthetic_as_positive_class():
    truth = [1, 1, 1, 1, 0, 0, 0, 0]  # 1 = synthetic
    called = [1, 1, 1, 0, 0, 0, 1, 1]
    summary = stats.summarise_decisions(truth, called)
    assert summary.sensitivity.estimate == pytest.approx(0.75)
    assert summary.specificity.estimate == pytest.approx(0.5)
    assert summary.fooling_rate.estimate == pytest.approx(0.25)
    assert summary.accuracy.estimate == pytest.approx(5 / 8)
    assert "exact two-sided binomial" in summary.test_name


def test_likert_comparison_is_mann_whitney():
    result = stats.compare_likert([4, 5, 4, 5, 5, 4], [2, 3, 2, 1, 3, 2])
    assert result.p_value < 0.01
    assert result.synthetic_median < result.real_median
    assert "Mann-Whitney" in result.test_name


def test_imrmc_and_csv_round_trips(tmp_path):
    rows = read_imrmc(VAN_DYKE)
    assert len(rows) == 2 * 5 * 114
    imrmc = write_imrmc(rows, tmp_path / "copy.imrmc")
    assert read_imrmc(imrmc) == rows
    with_extras = [
        RatingRow("r1", "m", "c1", 1, 7.0, 12.5, 1, 4.0),
        RatingRow("r1", "m", "c2", 0, None, None, 0),
    ]
    csv_path = write_csv(with_extras, tmp_path / "long.csv")
    assert read_csv(csv_path) == with_extras
    assert csv_path.read_text().splitlines()[0].startswith("reader,modality,case,truth,rating,time_s")


def test_bad_inputs_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,case\nr1,c1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_csv(bad)
    not_imrmc = tmp_path / "x.imrmc"
    not_imrmc.write_text("hello\n")
    with pytest.raises(ValueError, match="BEGIN DATA"):
        read_imrmc(not_imrmc)


def test_mann_whitney_matches_scipy_and_names_the_variant():
    tied = stats.compare_likert([4, 5, 4, 5, 5, 4, 3, 4, 5, 4], [2, 3, 2, 1, 3, 2, 4, 2, 3, 3])
    reference = sps.mannwhitneyu(
        [2, 3, 2, 1, 3, 2, 4, 2, 3, 3], [4, 5, 4, 5, 5, 4, 3, 4, 5, 4], method="asymptotic"
    )
    assert tied.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert "normal approximation" in tied.test_name
    untied = stats.compare_likert([1.5, 2.5, 3.5], [0.1, 0.2, 0.3])
    assert untied.p_value == pytest.approx(0.1) and "exact" in untied.test_name


def test_delong_covariance_diagonal_is_the_single_reader_delong_variance():
    from app.readerstudy.mrmc import delong_auc_covariance

    rng = np.random.default_rng(5)
    truth = np.r_[np.zeros(20, bool), np.ones(15, bool)]
    scores = rng.integers(1, 6, size=(2, 3, truth.size)) + truth
    covariance = delong_auc_covariance(scores, truth)
    for index in range(6):
        i, j = divmod(index, 3)
        assert covariance[index, index] == pytest.approx(
            stats.delong_auc(truth, scores[i, j]).standard_error ** 2
        )
