"""Analysis of a reader study: from a database, a long-format CSV or an iMRMC file to one dict.

Positive class = synthetic. Practice items never reach the analysis (they are left out when rows
are built from the database). The result is plain JSON-ready data; ``app.readerstudy.report``
renders it as HTML.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np

from app.readerstudy import mrmc, stats
from app.readerstudy.ratings import MIN_CASES_PER_CLASS, RatingRow, read_csv, read_imrmc
from app.readerstudy.storage import StudyStore
from app.readerstudy.truth import ItemTruth, StudyTruth, default_truth_path, load_truth


def confidence_rating(choice: str, confidence: float, scale: str) -> float:
    """One 'how synthetic' score from a real/synthetic call and its confidence.

    1-5 scale: real with confidence 5 -> 1 ... real 1 -> 5, synthetic 1 -> 6 ... synthetic 5 -> 10.
    0-100 scale: 50 -/+ confidence / 2 (0 = surely real, 100 = surely synthetic)."""
    if scale == "1-5":
        return 5.0 + confidence if choice == "synthetic" else 6.0 - confidence
    return 50.0 + confidence / 2 if choice == "synthetic" else 50.0 - confidence / 2


TruthSource = str | Path | StudyTruth | None


def _resolve_truth(truth: TruthSource, database_target: str | Path) -> StudyTruth:
    """The coordinator's truth: as given, or ``truth.json`` beside a SQLite database file."""
    if isinstance(truth, StudyTruth):
        return truth
    if truth is None:
        truth = default_truth_path(database_target)
        if truth is None:
            raise ValueError(
                "the answers database holds no truth: give the coordinator's truth file (--truth truth.json)"
            )
    return load_truth(truth)


def _localisation(values: dict, localise: list[dict], item: ItemTruth) -> tuple:
    """(click LPS, distance to the finding, tolerance) of an item's first recorded click."""
    click = None
    for question in localise:
        answer = values.get(question["id"])
        if isinstance(answer, dict) and len(answer.get("lps_mm") or []) == 3:
            click = tuple(float(x) for x in answer["lps_mm"])
            break
    if item.finding_lps_mm is None:
        return click, None, None
    distance = None if click is None else float(np.linalg.norm(np.subtract(click, item.finding_lps_mm)))
    return click, distance, item.tolerance_mm


def rows_from_store(
    store: StudyStore, study_id: str | None = None, truth: TruthSource = None
) -> list[RatingRow]:
    """Long-format rows of every reader of a study, the readers' answers (database) joined with the
    coordinator's truth file; no practice. The study is the one named, else the truth file's,
    else the database's only one."""
    ids = store.study_ids()
    truth_document = None
    if study_id is None and truth is not None:
        truth_document = _resolve_truth(truth, store.url)
        study_id = truth_document.study_id or None
    if study_id is None:
        if len(ids) != 1:
            raise ValueError(f"the database holds {len(ids)} studies; name one ({', '.join(ids)})")
        study_id = ids[0]
    package = store.package(study_id)
    truth_document = truth_document or _resolve_truth(truth, store.url)
    if truth_document.study_id and truth_document.study_id != study_id:
        where = truth_document.path or "the truth file"
        raise ValueError(f"{where} is the truth of study {truth_document.study_id}, not {study_id}")
    truth_items = truth_document.items
    questions = package["questions"]
    call = next((q for q in questions if q["type"] == "real_synthetic"), None)
    two_afc = next((q for q in questions if q["type"] == "two_afc"), None)
    likert = next((q for q in questions if q["type"] == "likert"), None)
    localise = [q for q in questions if q["type"] == "localise"]
    free_text = [q for q in questions if q["type"] == "free_text"]
    rows = []
    for reader in store.readers(study_id):
        answers = store.latest_answers(study_id, reader)
        times = store.time_spent(study_id, reader)
        for item_id, values in answers.items():
            item_truth = truth_items.get(item_id)
            if item_truth is None or item_truth.practice:
                continue
            time_s = times.get(item_id)
            text = " | ".join(
                str(values[q["id"]]).strip() for q in free_text if str(values.get(q["id"]) or "").strip()
            )
            if item_truth.synthetic_image_id:
                if two_afc is None or two_afc["id"] not in values:
                    continue
                picked = values[two_afc["id"]]
                rows.append(
                    RatingRow(
                        reader,
                        item_truth.modality,
                        item_truth.mrmc_case,
                        1,
                        None,
                        time_s,
                        int(picked["choice"] == item_truth.synthetic_image_id),
                        None,
                        pair=item_id,
                        free_text=text,
                    )
                )
                continue
            rating = decision = quality = None
            if call is not None and call["id"] in values:
                answer = values[call["id"]]
                decision = int(answer["choice"] == "synthetic")
                rating = confidence_rating(
                    answer["choice"], float(answer["confidence"]), call.get("scale", "1-5")
                )
            if likert is not None and likert["id"] in values:
                quality = float(values[likert["id"]])
            click, distance, tolerance = _localisation(values, localise, item_truth)
            rows.append(
                RatingRow(
                    reader,
                    item_truth.modality,
                    item_truth.mrmc_case,
                    int(item_truth.truth),
                    rating,
                    time_s,
                    decision,
                    quality,
                    click_lps_mm=click,
                    finding_distance_mm=distance,
                    tolerance_mm=tolerance,
                    free_text=text,
                )
            )
    return rows


def load_rows(
    source: str | Path, study_id: str | None = None, truth: TruthSource = None
) -> tuple[list[RatingRow], str]:
    """Rows from a database URL or file, a long-format CSV or an iMRMC file; and what it was.

    ``study_id`` picks one study of a database that holds several; ``truth`` is the coordinator's
    truth file for a database (default: ``truth.json`` beside a SQLite database file)."""
    text = str(source)
    if "://" in text:
        store = StudyStore(text, create=False)
        try:
            return rows_from_store(store, study_id, truth), "database"
        finally:
            store.close()
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(b"SQLite format 3"):
        store = StudyStore(path, create=False)
        try:
            return rows_from_store(store, study_id, truth), "database"
        finally:
            store.close()
    if path.suffix.lower() == ".csv":
        return read_csv(path), "csv"
    if "BEGIN DATA" in path.read_text(encoding="utf-8", errors="replace").upper():
        return read_imrmc(path), "imrmc"
    raise ValueError(f"{path.name}: not a study database, long-format CSV or iMRMC file")


def _by(rows: list[RatingRow], *keys: str) -> dict:
    groups: dict = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, k) for k in keys) if len(keys) > 1 else getattr(row, keys[0])].append(row)
    return dict(sorted(groups.items()))


def _binary_section(rows: list[RatingRow]) -> dict:
    decided = [r for r in rows if r.decision is not None]
    if not decided:
        return {}
    per_reader = {
        reader: stats.summarise_decisions([r.truth for r in group], [r.decision for r in group]).to_dict()
        for reader, group in _by(decided, "reader").items()
    }
    pooled = stats.summarise_decisions([r.truth for r in decided], [r.decision for r in decided]).to_dict()
    return {"per_reader": per_reader, "pooled": pooled, "interval": stats.CLOPPER_PEARSON_NAME}


def _roc_section(rows: list[RatingRow]) -> dict:
    """Per-reader DeLong AUCs; a reader with fewer than two cases of a class gets a note instead
    of an AUC (one of each gives 0, 0.5 or 1 with no variance: not an estimate)."""
    rated = [r for r in rows if r.rating is not None]
    unrated = len(rows) - len(rated)
    if not rated or len({r.truth for r in rated}) < 2:
        return {}
    per_reader, curves, too_few = {}, {}, {}
    for reader, group in _by(rated, "reader").items():
        truth = [r.truth for r in group]
        scores = [r.rating for r in group]
        if min(truth.count(0), truth.count(1)) < MIN_CASES_PER_CLASS:
            too_few[reader] = (
                f"{truth.count(1)} synthetic and {truth.count(0)} real case(s) rated; an AUC needs "
                f"at least {MIN_CASES_PER_CLASS} of each"
            )
            continue
        per_reader[reader] = stats.delong_auc(truth, scores).to_dict()
        fpr, tpr = stats.roc_curve_points(truth, scores)
        curves[reader] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    truth = [r.truth for r in rated]
    section: dict = {"per_reader": per_reader, "curves": curves}
    if min(truth.count(0), truth.count(1)) >= MIN_CASES_PER_CLASS:
        section["pooled_readings"] = stats.delong_auc(truth, [r.rating for r in rated]).to_dict()
    if too_few:
        section["readers_without_auc"] = too_few
    if unrated:
        section["readings_without_rating"] = unrated  # left out of the ROC, said here
    return section


def _agreement_section(rows: list[RatingRow]) -> dict:
    """Fleiss' kappa (bootstrap CI) and pairwise Cohen's kappa over cases every reader called."""
    decided = [r for r in rows if r.decision is not None]
    readers = sorted({r.reader for r in decided})
    if len(readers) < 2:
        return {}
    calls = {(r.reader, r.case): r.decision for r in decided}
    cases = sorted({r.case for r in decided if all((reader, r.case) in calls for reader in readers)})
    if len(cases) < 2:
        return {"note": "fewer than two cases were called by every reader"}
    matrix = np.array([[calls[(reader, case)] for reader in readers] for case in cases])
    result: dict = {"cases": len(cases), "readers": readers}
    if len(np.unique(matrix)) < 2:
        result["note"] = "every call was the same: kappa is undefined"
        return result
    result["fleiss"] = stats.fleiss_kappa_bootstrap(matrix, replicates=1000).to_dict()
    result["cohen_pairwise"] = {
        f"{a} vs {b}": stats.cohen_kappa(matrix[:, i], matrix[:, j])
        for (i, a), (j, b) in itertools.combinations(enumerate(readers), 2)
    }
    return result


def _likert_section(rows: list[RatingRow]) -> dict:
    scored = [r for r in rows if r.likert is not None]
    real = [r.likert for r in scored if r.truth == 0]
    synthetic = [r.likert for r in scored if r.truth == 1]
    if not real or not synthetic:
        return {}
    return stats.compare_likert(real, synthetic).to_dict()


def _two_afc_section(rows: list[RatingRow]) -> dict:
    pairs = [r for r in rows if r.pair and r.decision is not None]
    if not pairs:
        return {}

    def summary(group: list[RatingRow]) -> dict:
        correct = sum(r.decision for r in group)
        return {
            "proportion_correct": stats.clopper_pearson(correct, len(group)).to_dict(),
            "binomial_p_value": stats.exact_binomial_test(correct, len(group)),
            "test": stats.EXACT_BINOMIAL_TEST_NAME,
        }

    return {
        "per_reader": {reader: summary(group) for reader, group in _by(pairs, "reader").items()},
        "pooled": summary(pairs),
    }


def _localisation_section(rows: list[RatingRow]) -> dict:
    """Hit rate of localisation clicks on cases with a marked finding: a hit is a click within
    the tolerance radius of the finding; a case left without a click counts as a miss."""
    marked = [r for r in rows if r.tolerance_mm is not None]
    if not marked:
        return {}

    def summary(group: list[RatingRow]) -> dict:
        distances = [r.finding_distance_mm for r in group if r.finding_distance_mm is not None]
        hits = sum(
            1 for r in group if r.finding_distance_mm is not None and r.finding_distance_mm <= r.tolerance_mm
        )
        return {
            "cases": len(group),
            "clicked": len(distances),
            "hits": hits,
            "hit_rate": stats.clopper_pearson(hits, len(group)).to_dict(),
            "median_distance_mm": float(np.median(distances)) if distances else None,
        }

    return {
        "tolerance_mm": sorted({r.tolerance_mm for r in marked}),
        "per_reader": {reader: summary(group) for reader, group in _by(marked, "reader").items()},
        "pooled": summary(marked),
        "interval": stats.CLOPPER_PEARSON_NAME,
    }


def _mrmc_section(rows: list[RatingRow]) -> dict:
    """Obuchowski-Rockette over the modalities. Two: the test of their difference. Three or more:
    the omnibus F test (all modalities equal) and every pairwise comparison with Holm-adjusted
    p-values, said in ``comparisons``."""
    rated = [r for r in rows if r.rating is not None and not r.pair]
    modalities = sorted({r.modality for r in rated})
    if len(modalities) < 2:
        return {}
    readers = sorted({r.reader for r in rated})
    scores = {(r.modality, r.reader, r.case): r.rating for r in rated}
    truth = {r.case: r.truth for r in rated}
    cases = sorted(c for c in truth if all((m, rd, c) in scores for m in modalities for rd in readers))
    if len(readers) < 2 or len({truth[c] for c in cases}) < 2:
        return {"note": "MRMC needs two or more readers and both classes read under every modality"}
    truth_array = np.array([truth[c] for c in cases])

    def run(chosen: list[str]) -> mrmc.MrmcResult:
        array = np.array([[[scores[(m, rd, c)] for c in cases] for rd in readers] for m in chosen])
        return mrmc.obuchowski_rockette(array, truth_array, chosen, readers)

    try:
        out = run(modalities).to_dict()
        pairs = list(itertools.combinations(modalities, 2)) if len(modalities) > 2 else []
        pairwise = [run(list(pair)) for pair in pairs]
    except ValueError as error:
        return {"note": str(error)}
    out["cases"] = len(cases)
    out["cases_left_out_incomplete"] = len(truth) - len(cases)
    if pairwise:
        out.pop("difference_first_minus_second")
        out.pop("difference_ci")
        adjusted = stats.holm_adjust([result.p_value for result in pairwise])
        out["comparisons"] = (
            f"omnibus F test of all {len(modalities)} modalities (H0: equal AUCs), then all "
            f"{len(pairs)} pairwise comparisons; pairwise p-values adjusted by {stats.HOLM_NAME}"
        )
        out["pairwise"] = [
            {
                "modalities": list(pair),
                "difference": result.difference,
                "difference_ci": list(result.difference_ci),
                "difference_ci_note": "unadjusted 95 % interval",
                "f_statistic": result.f_statistic,
                "ddf": result.ddf,
                "p_value": result.p_value,
                "p_value_holm": p_holm,
            }
            for pair, result, p_holm in zip(pairs, pairwise, adjusted, strict=True)
        ]
    else:
        out["comparisons"] = "two modalities: the F test of their difference"
    return out


def analyze_rows(rows: list[RatingRow]) -> dict:
    """Every statistic the study supports, per modality, plus MRMC across the modalities."""
    if not rows:
        raise ValueError("no readings to analyse")
    result: dict = {
        "positive_class": "synthetic",
        "readers": sorted({r.reader for r in rows}),
        "readings": len(rows),
        "modalities": {},
    }
    for modality, group in _by(rows, "modality").items():
        singles = [r for r in group if not r.pair]
        timed = [r.time_s for r in group if r.time_s is not None]
        result["modalities"][modality] = {
            "cases": len({r.case for r in singles}),
            "binary": _binary_section(singles),
            "roc": _roc_section(singles),
            "agreement": _agreement_section(singles),
            "likert": _likert_section(singles),
            "two_afc": _two_afc_section(group),
            "localisation": _localisation_section(singles),
            "mean_time_per_case_s": float(np.mean(timed)) if timed else None,
        }
    result["mrmc"] = _mrmc_section(rows)
    return result


def analyze(source: str | Path, study_id: str | None = None, truth: TruthSource = None) -> dict:
    rows, kind = load_rows(source, study_id, truth)
    result = analyze_rows(rows)
    result["input"] = {"source": str(source), "kind": kind}
    return result
