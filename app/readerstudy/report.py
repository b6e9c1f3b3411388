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


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


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
                _fmt(entry["binomial_p_value"], 4),
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
    )


def _roc_html(section: dict, modality: str) -> str:
    if not section:
        return ""
    rows = [
        [html.escape(reader), _ci(entry, "auc"), _fmt(entry["standard_error"], 4)]
        for reader, entry in section["per_reader"].items()
    ]
    pooled = section["pooled_readings"]
    rows.append(["all readings pooled", _ci(pooled, "auc"), _fmt(pooled["standard_error"], 4)])
    image = base64.b64encode(roc_png(section["curves"], f"ROC, modality {modality}")).decode()
    return (
        "<h3>ROC from confidence ratings</h3>"
        + f"<img alt='ROC curves, modality {html.escape(modality)}' src='data:image/png;base64,{image}'>"
        + _table(["reader", "AUC [95 % CI]", "SE"], rows)
        + f"<p class='note'>{html.escape(pooled['method'])}.</p>"
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
        + f"<p>U = {_fmt(section['u_statistic'], 1)}, p = {_fmt(section['p_value'], 4)}; "
        + f"{html.escape(section['test_name'])}.</p>"
    )


def _two_afc_html(section: dict) -> str:
    if not section:
        return ""
    rows = [
        [html.escape(reader), _ci(entry["proportion_correct"]), _fmt(entry["binomial_p_value"], 4)]
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
    low, high = section["difference_ci"]
    return (
        "<h2>Multi-reader multi-case ROC</h2>"
        + _table(["reader"] + [f"AUC, modality {m}" for m in modalities], rows)
        + f"<p>{html.escape(section['test'])}, AUC covariances by {html.escape(section['covariance_method'])}: "
        + f"F({section['ndf']}, {section['ddf']:.2f}) = {section['f_statistic']:.3f}, p = {section['p_value']:.4f}. "
        + f"Difference {html.escape(modalities[0])} - {html.escape(modalities[1])}: "
        + f"{section['difference_first_minus_second']:.4f} [{low:.4f}, {high:.4f}] over {section['cases']} cases.</p>"
    )


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
    path = Path(path)
    path.write_text(render_html(result, title), encoding="utf-8")
    return path
