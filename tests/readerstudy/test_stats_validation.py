"""Statistics that answer the visual Turing test's question per class, and inputs refused (with the
rows named) rather than silently counted wrong."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from app.readerstudy import json_output, stats
from app.readerstudy.analysis import analyze, analyze_rows
from app.readerstudy.ratings import RatingRow, read_csv, read_imrmc
from app.readerstudy.report import format_p_value, render_html
from main import main

VAN_DYKE = Path(__file__).resolve().parents[1] / "data" / "vandyke-roc.imrmc"
HEADER = "reader,modality,case,truth,rating,decision\n"


def _decisions(reader: str, truth: int, called_right: int, total: int, start: int = 0) -> list[RatingRow]:
    return [
        RatingRow(
            reader,
            "m",
            f"{truth}-{start + i}",
            truth,
            None,
            decision=truth if i < called_right else 1 - truth,
        )
        for i in range(total)
    ]


def test_park_2021_779_of_1500_synthetic_called_synthetic_gives_p_0_141():
    """Park et al. 2021: 779 of 1,500 synthetic images called synthetic, exact two-sided p = 0.141."""
    rows = _decisions("R1", 1, 779, 1500) + _decisions("R1", 0, 900, 1500)
    pooled = analyze_rows(rows)["modalities"]["m"]["binary"]["pooled"]
    synthetic = pooled["per_class"]["synthetic"]
    assert synthetic["called_as_truth"]["successes"] == 779 and synthetic["called_as_truth"]["total"] == 1500
    assert round(synthetic["binomial_p_value"], 3) == 0.141
    assert synthetic["binomial_p_value"] == pytest.approx(sps.binomtest(779, 1500).pvalue, rel=1e-9)
    real = pooled["per_class"]["real"]
    assert real["binomial_p_value"] == pytest.approx(sps.binomtest(900, 1500).pvalue, rel=1e-9)


def test_per_reader_per_class_tests_and_the_contingency_tests_match_scipy():
    rows = (
        _decisions("A", 1, 14, 20)
        + _decisions("A", 0, 9, 20)
        + _decisions("B", 1, 3, 20)
        + _decisions("B", 0, 17, 20)
    )
    binary = analyze_rows(rows)["modalities"]["m"]["binary"]
    assert binary["per_reader"]["A"]["per_class"]["synthetic"]["binomial_p_value"] == pytest.approx(
        sps.binomtest(14, 20).pvalue
    )
    assert binary["per_reader"]["B"]["per_class"]["real"]["binomial_p_value"] == pytest.approx(
        sps.binomtest(17, 20).pvalue
    )
    contingency = binary["pooled"]["contingency"]
    table = [[9 + 17, 11 + 3], [6 + 17, 14 + 3]]
    assert contingency["table"] == table
    chi2, p_chi2, _, _ = sps.chi2_contingency(table, correction=True)
    assert contingency["chi_square"] == pytest.approx(chi2) and contingency[
        "chi_square_p_value"
    ] == pytest.approx(p_chi2)
    assert contingency["fisher_p_value"] == pytest.approx(sps.fisher_exact(table).pvalue)
    # Every call the same: no test, the reason said.
    same = analyze_rows(_decisions("C", 1, 5, 5) + _decisions("C", 0, 0, 5))
    assert same["modalities"]["m"]["binary"]["pooled"]["contingency"]["chi_square"] is None
    assert "every call was the same" in same["modalities"]["m"]["binary"]["pooled"]["contingency"]["note"]


def test_imrmc_with_a_nan_score_is_refused_naming_the_line(tmp_path):
    lines = VAN_DYKE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("0,"))
    reader, case, modality, _ = lines[index].split(",")
    lines[index] = f"{reader},{case},{modality},NaN"
    broken = tmp_path / "nan.imrmc"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"line {index + 1}: score is NaN"):
        read_imrmc(broken)
    assert main(["study", "analyze", str(broken)]) == 2


def test_a_tiny_imrmc_file_is_refused_not_an_auc_of_zero(tmp_path, capsys):
    tiny = tmp_path / "tiny.imrmc"
    tiny.write_text("tiny\nBEGIN DATA:\n-1,1,truth,1\n-1,2,truth,0\nA,1,m,0\nA,2,m,1\n")
    assert main(["study", "analyze", str(tiny)]) == 2
    message = capsys.readouterr().err
    assert "1 positive and 1 negative" in message and "at least 2" in message
    assert "AUC 0.0" not in message


@pytest.mark.parametrize(
    "body, expected",
    [
        ("A,m,c1,1,7,1\nA,m,c1,1,7,1\nA,m,c2,0,3,0\n", "line 3 repeats line 2"),
        ("A,m,c1,2,7,1\n", r"line 2: truth must be 0 \(real\) or 1 \(synthetic\), not 2"),
        ("A,m,c1,1,7,2\n", "line 2: decision must be 0 .* not 2"),
        ("A,m,c1,1,7,0.5\n", "line 2: decision must be 0 .* not 0.5"),
        ("A,m,c1,1,7,1\nB,m,c1,0,3,0\n", "case c1 has truth 1 at line 2 but 0 at line 3"),
        ("A,m,c1,1,7,1\nB,m,c1,1,,\nB,m,c2,0,,\n", "line 3: reader B gave no answer for case c1"),
        ("A,m,c1,1,nan,1\n", "line 2: rating is nan"),
    ],
)
def test_csv_validation_refuses_naming_the_rows(tmp_path, body, expected):
    path = tmp_path / "long.csv"
    path.write_text(HEADER + body)
    with pytest.raises(ValueError, match=expected):
        read_csv(path)


def test_three_modalities_get_an_omnibus_test_and_holm_adjusted_pairwise_comparisons(tmp_path):
    rows = read_imrmc(VAN_DYKE)
    rng = np.random.default_rng(3)
    third = [
        RatingRow(r.reader, "2", r.case, r.truth, float(r.rating + rng.integers(-1, 2)))
        for r in rows
        if r.modality == "1"
    ]
    result = analyze_rows(rows + third)["mrmc"]
    assert result["modalities"] == ["0", "1", "2"] and result["ndf"] == 2
    assert "omnibus" in result["comparisons"] and "Holm" in result["comparisons"]
    pairs = {tuple(entry["modalities"]): entry for entry in result["pairwise"]}
    assert set(pairs) == {("0", "1"), ("0", "2"), ("1", "2")}
    # The 0 vs 1 comparison is the two-modality analysis (Van Dyke: p = 0.0517), adjusted upwards.
    assert pairs[("0", "1")]["p_value"] == pytest.approx(0.0517, abs=5e-5)
    raw = [pairs[p]["p_value"] for p in sorted(pairs)]
    assert [pairs[p]["p_value_holm"] for p in sorted(pairs)] == pytest.approx(stats.holm_adjust(raw))
    assert all(entry["p_value_holm"] >= entry["p_value"] for entry in pairs.values())
    assert "difference_first_minus_second" not in result  # no silent "first two"
    html = render_html(analyze_rows(rows + third))
    assert "p (Holm)" in html and "omnibus" in html


def test_holm_matches_its_definition():
    assert stats.holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_json_has_null_with_a_reason_instead_of_nan(tmp_path):
    # Only synthetic cases were called: specificity has no readings (NaN before).
    path = tmp_path / "long.csv"
    path.write_text(HEADER + "".join(f"A,m,c{i},1,{i % 5 + 6},1\n" for i in range(6)))
    out = tmp_path / "result.json"
    assert main(["study", "analyze", str(path), "--json", str(out)]) == 0
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    document = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    specificity = document["modalities"]["m"]["binary"]["pooled"]["specificity"]
    assert specificity["estimate"] is None
    reasons = {entry["field"]: entry["reason"] for entry in document["null_values"]}
    assert reasons["modalities.m.binary.pooled.specificity.estimate"] == "no readings of this kind (total 0)"
    assert json_output.finite_json({"x": math.inf})["null_values"][0]["field"] == "x"


def test_html_shows_small_p_values_and_the_per_modality_intervals():
    assert format_p_value(9e-25) == "< 0.0001"
    assert format_p_value(0.04567) == "0.0457"
    rows = _decisions("A", 1, 100, 100) + _decisions("A", 0, 100, 100)
    html = render_html(analyze_rows(rows))
    assert "< 0.0001" in html and "0.0000" not in html
    van_dyke = render_html(analyze(VAN_DYKE))
    assert "95 % CI (random readers and cases)" in van_dyke
    interval = analyze(VAN_DYKE)["mrmc"]["modality_auc_ci"]["0"]
    assert f"[{interval['ci_low']:.4f}, {interval['ci_high']:.4f}]" in van_dyke
