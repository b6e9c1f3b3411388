"""HTML report of a reader-study analysis: ROC plots (matplotlib, Agg, embedded PNG), per-reader
tables, and the name of every test and interval used. One self-contained file, no network."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from app.io.atomic import write_text_atomic  # noqa: E402


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def format_p_value(value) -> str:
    """A p-value as a reader of a report needs it: "< 0.0001" below that (never "0.0000"), four
    decimals otherwise, "–" when there is none."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _ci(entry: dict, key: str = "estimate") -> str:
    return f"{_fmt(entry[key])} [{_fmt(entry['ci_low'])}, {_fmt(entry['ci_high'])}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def roc_png(curves: dict, title: str) -> bytes:
    """Per-reader empirical ROC curves as PNG bytes."""
    figure, axes = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for reader, curve in curves.items():
        axes.plot(curve["fpr"], curve["tpr"], marker="o", markersize=3, label=f"reader {reader}")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("false positive fraction (1 - specificity)")
    axes.set_ylabel("true positive fraction (sensitivity)")
    axes.set_title(title)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.legend(loc="lower right", fontsize=7)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _binary_html(section: dict) -> str:
    if not section:
        return ""
    rows = []
    for reader, entry in [*section["per_reader"].items(), ("pooled", section["pooled"])]:
        rows.append(
            [
                html.escape(reader),
                f"{entry['accuracy']['successes']}/{entry['accuracy']['total']}",
                _ci(entry["accuracy"]),
                _ci(entry["sensitivity"]),
                _ci(entry["specificity"]),
                _ci(entry["fooling_rate"]),
                format_p_value(entry["binomial_p_value"]),
            ]
        )
    test = section["pooled"]["test"]
    return (
        "<h3>Real or synthetic calls (positive = synthetic)</h3>"
        + _table(
            ["reader", "correct", "accuracy", "sensitivity", "specificity", "fooling rate", "p (vs 50 %)"],
            rows,
        )
        + f"<p class='note'>Intervals: {html.escape(section['interval'])}, 95 %. p: {html.escape(test)}.</p>"
        + _per_class_html(section)
        + _contingency_html(section["pooled"].get("contingency"))
    )


def _per_class_html(section: dict) -> str:
    """Per reader and class: images of the class called that class, tested against 50 %."""
    rows = []
    for reader, entry in [*section["per_reader"].items(), ("pooled", section["pooled"])]:
        for truth, test in (entry.get("per_class") or {}).items():
            called = test["called_as_truth"]
            rows.append(
                [
                    html.escape(reader),
                    html.escape(f"{truth} called {truth}"),
                    f"{called['successes']}/{called['total']}",
                    _ci(called),
                    format_p_value(test["binomial_p_value"]),
                ]
            )
    if not rows:
        return ""
    return (
        "<h3>Per class: images called their true class</h3>"
        + _table(["reader", "class", "count", "proportion [95 % CI]", "p (vs 50 %)"], rows)
        + "<p class='note'>The visual Turing test's question per class: synthetic images called "
        + "synthetic, real images called real, each against chance (exact two-sided binomial).</p>"
    )


def _contingency_html(test: dict | None) -> str:
    if not test:
        return ""
    (rr, rs), (sr, ss) = test["table"]
    table = _table(
        ["", "called real", "called synthetic"],
        [["truth real", str(rr), str(rs)], ["truth synthetic", str(sr), str(ss)]],
    )
    if test["chi_square"] is None:
        return "<h3>Truth x call (all readings)</h3>" + table + f"<p>{html.escape(test['note'])}.</p>"
    return (
        "<h3>Truth x call (all readings)</h3>"
        + table
        + f"<p>chi-square = {_fmt(test['chi_square'])}, p = {format_p_value(test['chi_square_p_value'])} "
        + f"({html.escape(test['chi_square_test'])}); Fisher p = {format_p_value(test['fisher_p_value'])} "
        + f"({html.escape(test['fisher_test'])}).</p>"
    )


def _roc_html(section: dict, modality: str) -> str:
    if not section:
        return ""
    rows = [
        [html.escape(reader), _ci(entry, "auc"), _fmt(entry["standard_error"], 4)]
        for reader, entry in section["per_reader"].items()
    ]
    rows += [
        [html.escape(reader), html.escape(note), ""]
        for reader, note in section.get("readers_without_auc", {}).items()
    ]
    pooled = section.get("pooled_readings")
    if pooled:
        rows.append(["all readings pooled", _ci(pooled, "auc"), _fmt(pooled["standard_error"], 4)])
    image = base64.b64encode(roc_png(section["curves"], f"ROC, modality {modality}")).decode()
    left_out = section.get("readings_without_rating")
    return (
        "<h3>ROC from confidence ratings</h3>"
        + f"<img alt='ROC curves, modality {html.escape(modality)}' src='data:image/png;base64,{image}'>"
        + _table(["reader", "AUC [95 % CI]", "SE"], rows)
        + ("<p class='note'>DeLong et al. (1988) variance, normal interval clipped to [0, 1].</p>")
        + (
            f"<p class='note'>{left_out} reading(s) without a rating left out of the ROC.</p>"
            if left_out
            else ""
        )
    )


def _agreement_html(section: dict) -> str:
    if not section:
        return ""
    if "fleiss" not in section:
        return f"<h3>Agreement</h3><p>{html.escape(section.get('note', ''))}</p>"
    fleiss = section["fleiss"]
    rows = [[html.escape(pair), _fmt(kappa)] for pair, kappa in section["cohen_pairwise"].items()]
    return (
        "<h3>Agreement between readers</h3>"
        + f"<p>Fleiss' kappa over {section['cases']} cases: {_ci(fleiss, 'kappa')} "
        + f"({html.escape(fleiss['method'])}, {fleiss['bootstrap_replicates']} replicates).</p>"
        + _table(["readers", "Cohen's kappa"], rows)
    )


def _likert_html(section: dict) -> str:
    if not section:
        return ""
    return (
        "<h3>Image quality (Likert 1-5), real vs synthetic</h3>"
        + _table(
            ["", "real", "synthetic"],
            [
                ["median", _fmt(section["real_median"], 1), _fmt(section["synthetic_median"], 1)],
                ["n", str(section["real_n"]), str(section["synthetic_n"])],
            ],
        )
        + f"<p>U = {_fmt(section['u_statistic'], 1)}, p = {format_p_value(section['p_value'])}; "
        + f"{html.escape(section['test_name'])}.</p>"
    )


def _two_afc_html(section: dict) -> str:
    if not section:
        return ""
    rows = [
        [html.escape(reader), _ci(entry["proportion_correct"]), format_p_value(entry["binomial_p_value"])]
        for reader, entry in [*section["per_reader"].items(), ("pooled", section["pooled"])]
    ]
    return (
        "<h3>Two-alternative forced choice (synthetic picked)</h3>"
        + _table(["reader", "proportion correct [95 % CI]", "p (vs 50 %)"], rows)
        + f"<p class='note'>Clopper-Pearson intervals; p: {html.escape(section['pooled']['test'])}.</p>"
    )


def _localisation_html(section: dict | None) -> str:
    if not section:
        return ""
    rows = [
        [
            html.escape(reader),
            str(entry["cases"]),
            str(entry["clicked"]),
            str(entry["hits"]),
            _ci(entry["hit_rate"]),
            _fmt(entry["median_distance_mm"], 1),
        ]
        for reader, entry in [*section["per_reader"].items(), ("pooled", section["pooled"])]
    ]
    tolerance = ", ".join(f"{t:g}" for t in section["tolerance_mm"])
    return (
        "<h3>Localisation (cases with a marked finding)</h3>"
        + _table(
            ["reader", "cases", "clicked", "hits", "hit rate [95 % CI]", "median distance (mm)"],
            rows,
        )
        + f"<p class='note'>A hit is a click within {html.escape(tolerance)} mm of the marked finding "
        + "(LPS millimetres); a case without a click is a miss. "
        + f"Intervals: {html.escape(section['interval'])}, 95 %.</p>"
    )


def _mrmc_html(section: dict) -> str:
    if not section:
        return ""
    if "f_statistic" not in section:
        return f"<h2>MRMC ROC</h2><p>{html.escape(section.get('note', ''))}</p>"
    modalities = section["modalities"]
    rows = [
        [html.escape(reader)] + [_fmt(section["reader_auc"][m][reader], 4) for m in modalities]
        for reader in section["readers"]
    ]
    rows.append(["average"] + [_fmt(section["modality_auc"][m], 4) for m in modalities])
    intervals = section.get("modality_auc_ci", {})
    rows.append(
        ["95 % CI (random readers and cases)"]
        + [
            f"[{_fmt(intervals[m]['ci_low'], 4)}, {_fmt(intervals[m]['ci_high'], 4)}]"
            if m in intervals
            else "–"
            for m in modalities
        ]
    )
    ddf = section["ddf"]
    ddf_text = f"{ddf:.2f}" if isinstance(ddf, float) and ddf != float("inf") else "∞"
    parts = [
        "<h2>Multi-reader multi-case ROC</h2>",
        _table(["reader"] + [f"AUC, modality {html.escape(m)}" for m in modalities], rows),
        f"<p>{html.escape(section['test'])}, AUC covariances by {html.escape(section['covariance_method'])}: "
        f"F({section['ndf']}, {ddf_text}) = {section['f_statistic']:.3f}, p = {format_p_value(section['p_value'])}"
        f" over {section['cases']} cases.</p>",
    ]
    if "difference_ci" in section:
        low, high = section["difference_ci"]
        parts.append(
            f"<p>Difference {html.escape(modalities[0])} - {html.escape(modalities[1])}: "
            f"{section['difference_first_minus_second']:.4f} [{low:.4f}, {high:.4f}].</p>"
        )
    if section.get("pairwise"):
        pair_rows = [
            [
                html.escape(" - ".join(entry["modalities"])),
                f"{entry['difference']:.4f} [{entry['difference_ci'][0]:.4f}, {entry['difference_ci'][1]:.4f}]",
                format_p_value(entry["p_value"]),
                format_p_value(entry["p_value_holm"]),
            ]
            for entry in section["pairwise"]
        ]
        parts.append(_table(["modalities", "AUC difference [95 % CI]", "p", "p (Holm)"], pair_rows))
    if section.get("comparisons"):
        parts.append(f"<p class='note'>{html.escape(section['comparisons'])}.</p>")
    return "".join(parts)


def render_html(result: dict, title: str = "Reader study report") -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;"
        "margin:8px 0}td,th{border:1px solid #aaa;padding:3px 8px;text-align:right}"
        "td:first-child{text-align:left}.note{color:#555;font-size:90%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Positive class: {html.escape(result['positive_class'])}. Readers: "
        f"{html.escape(', '.join(result['readers']))}. Readings analysed: {result['readings']} "
        "(practice cases excluded).</p>",
    ]
    for modality, section in result["modalities"].items():
        parts.append(f"<h2>Modality {html.escape(modality)} ({section['cases']} cases)</h2>")
        parts.append(_binary_html(section["binary"]))
        parts.append(_roc_html(section["roc"], modality))
        parts.append(_agreement_html(section["agreement"]))
        parts.append(_likert_html(section["likert"]))
        parts.append(_two_afc_html(section["two_afc"]))
        parts.append(_localisation_html(section.get("localisation")))
        if section["mean_time_per_case_s"] is not None:
            parts.append(f"<p>Mean reading time per case: {section['mean_time_per_case_s']:.1f} s.</p>")
    parts.append(_mrmc_html(result.get("mrmc", {})))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(result: dict, path: str | Path, title: str = "Reader study report") -> Path:
    return write_text_atomic(path, render_html(result, title))
