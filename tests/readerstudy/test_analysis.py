"""``analyze`` on a small made-up answer set, against values worked out by hand.

Two readers, six cases (c1-c3 synthetic, c4-c6 real), ratings on the 1-10 'how synthetic' scale:

    case truth | A: rating call likert | B: rating call likert
    c1   1     |    9      1    3      |    8      1    3
    c2   1     |    7      1    2      |    5      0    3
    c3   1     |    4      0    4      |    3      0    2
    c4   0     |    2      0    4      |    1      0    4
    c5   0     |    3      0    5      |    6      1    4
    c6   0     |    6      1    3      |    7      1    5

A: 4/6 correct; sensitivity 2/3, specificity 2/3, fooling 1/3; AUC = 8/9 (9 and 7 beat every
real rating, 4 beats 2 and 3). B: 2/6; AUC = (3 + 1 + 1)/9 = 5/9. Exact binomial p of 4/6 and
2/6: outcomes no likelier than C(6,4) = 15 sum to 44 of 64 = 0.6875. Pooled AUC over the 36
pairs: 6 + 5.5 + 3 + 6 + 3 + 2.5 = 26 -> 0.7222. Calls agree on c1, c3, c4, c6 (po = 4/6), each
reader calls half synthetic (pe = 1/2): Cohen's kappa = (2/3 - 1/2)/(1/2) = 1/3, and Fleiss'
kappa with two raters and equal margins is the same 1/3. Likert medians real 4, synthetic 3;
U(synthetic > real) = 0.5 + 0 + 2.5 + 0.5 + 0.5 + 0 = 4. Clopper-Pearson 95 % of 4/6:
[0.2228, 0.9567] (beta quantiles). DeLong SE of B: V10 = (1, 1/3, 1/3), V01 = (1, 1/3, 1/3),
var = 2 x (0.2963 / 2) / 3 -> SE 0.3143.
"""

from __future__ import annotations

import pytest

from app.readerstudy.analysis import analyze
from app.readerstudy.report import write_report

TABLE = """reader,modality,case,truth,rating,decision,likert,time_s
A,default,c1,1,9,1,3,10
A,default,c2,1,7,1,2,12
A,default,c3,1,4,0,4,8
A,default,c4,0,2,0,4,9
A,default,c5,0,3,0,5,11
A,default,c6,0,6,1,3,10
B,default,c1,1,8,1,3,5
B,default,c2,1,5,0,3,6
B,default,c3,1,3,0,2,7
B,default,c4,0,1,0,4,8
B,default,c5,0,6,1,4,9
B,default,c6,0,7,1,5,10
"""


def test_statistics_match_hand_computed_values(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text(TABLE)
    section = analyze(path)["modalities"]["default"]
    a, b = section["binary"]["per_reader"]["A"], section["binary"]["per_reader"]["B"]
    assert (a["accuracy"]["successes"], a["accuracy"]["total"]) == (4, 6)
    assert a["sensitivity"]["estimate"] == pytest.approx(2 / 3)
    assert a["specificity"]["estimate"] == pytest.approx(2 / 3)
    assert a["fooling_rate"]["estimate"] == pytest.approx(1 / 3)
    assert a["accuracy"]["ci_low"] == pytest.approx(0.2228, abs=1e-4)
    assert a["accuracy"]["ci_high"] == pytest.approx(0.9567, abs=1e-4)
    assert b["accuracy"]["estimate"] == pytest.approx(2 / 6)
    assert b["fooling_rate"]["estimate"] == pytest.approx(2 / 3)
    assert a["binomial_p_value"] == pytest.approx(44 / 64) and b["binomial_p_value"] == pytest.approx(44 / 64)
    pooled = section["binary"]["pooled"]
    assert pooled["accuracy"]["estimate"] == 0.5 and pooled["binomial_p_value"] == pytest.approx(1.0)

    roc = section["roc"]
    assert roc["per_reader"]["A"]["auc"] == pytest.approx(8 / 9)
    assert roc["per_reader"]["B"]["auc"] == pytest.approx(5 / 9)
    assert roc["per_reader"]["B"]["standard_error"] == pytest.approx(0.3143, abs=1e-4)
    assert roc["pooled_readings"]["auc"] == pytest.approx(26 / 36)

    agreement = section["agreement"]
    assert agreement["cases"] == 6
    assert agreement["cohen_pairwise"]["A vs B"] == pytest.approx(1 / 3)
    assert agreement["fleiss"]["kappa"] == pytest.approx(1 / 3)

    likert = section["likert"]
    assert (likert["real_median"], likert["synthetic_median"]) == (4.0, 3.0)
    assert likert["u_statistic"] == pytest.approx(4.0)
    assert section["mean_time_per_case_s"] == pytest.approx(105 / 12)

    report = write_report(analyze(path), tmp_path / "report.html").read_text()
    assert "0.889 [0.581, 1.000]" in report and "4/6" in report and "0.6875" in report
