"""Long-format reading results: one row per (reader, modality, case), read from and written to
CSV and the iMRMC text format.

``truth`` is 1 for a synthetic (positive) case and 0 for a real one; ``rating`` is the
confidence that the case is synthetic (higher = more synthetic); ``decision`` is the reader's
binary call (1 = synthetic) when the study asked for one; ``likert`` an image-quality score.
Localisation: ``click_lps_mm`` is the reader's click (LPS mm, columns click_l_mm, click_p_mm,
click_s_mm); when the case has a marked finding, ``finding_distance_mm`` is the click's distance
from it (empty when the reader did not click) and ``tolerance_mm`` the hit radius. ``free_text``
holds the reader's comments (quoted by the CSV writer: commas and new lines are safe).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from app.io.atomic import atomic_file, write_text_atomic

CSV_COLUMNS = (
    "reader",
    "modality",
    "case",
    "truth",
    "rating",
    "time_s",
    "decision",
    "likert",
    "pair",
    "click_l_mm",
    "click_p_mm",
    "click_s_mm",
    "finding_distance_mm",
    "tolerance_mm",
    "free_text",
)
CLICK_COLUMNS = ("click_l_mm", "click_p_mm", "click_s_mm")
MIN_CASES_PER_CLASS = 2  # fewer: an AUC is 0, 0.5 or 1 with no variance to estimate
# A spreadsheet runs a cell that starts with one of these as a formula (``=HYPERLINK(...)``,
# ``=cmd|...``, ``+``, ``-``, ``@``; tab and CR are read as separators before one). Text cells
# that start so get a leading apostrophe (OWASP's advice), which the reader here takes off again;
# a leading apostrophe is itself doubled so the round trip is exact.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise_formula(text: str) -> str:
    """A text cell a spreadsheet shows as text, never runs."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def restore_formula_text(text: str) -> str:
    """The inverse of ``neutralise_formula`` for what this module wrote."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES) else text


@dataclass(frozen=True)
class RatingRow:
    reader: str
    modality: str
    case: str
    truth: int
    rating: float | None
    time_s: float | None = None
    decision: int | None = None
    likert: float | None = None
    # 2AFC: ``pair`` names the pair; truth = 1 and decision = 1 when the synthetic one was picked.
    pair: str = ""
    click_lps_mm: tuple[float, float, float] | None = None
    finding_distance_mm: float | None = None
    tolerance_mm: float | None = None  # set only for cases with a marked finding
    free_text: str = ""

    def cell(self, column: str) -> object:
        """The CSV cell of one column ('' for a missing value)."""
        if column in CLICK_COLUMNS:
            value = None if self.click_lps_mm is None else self.click_lps_mm[CLICK_COLUMNS.index(column)]
        else:
            value = getattr(self, column)
        if isinstance(value, str):
            return neutralise_formula(value)
        return "" if value is None else value


def _optional_float(text: str | None, column: str = "value") -> float | None:
    """An empty (or NA) cell is a missing value; NaN is refused: it would silently change the
    results (a NaN score ranks nowhere) where a missing value is left out and said so."""
    if text is None or str(text).strip() in ("", "NA", "None"):
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{column} is {str(text).strip()} (leave the cell empty for a missing value)")
    return value


def _binary(text: str | None, column: str) -> int | None:
    value = _optional_float(text, column)
    if value is None:
        return None
    if value not in (0.0, 1.0):
        raise ValueError(f"{column} must be 0 (real) or 1 (synthetic), not {str(text).strip()}")
    return int(value)


def _has_answer(row: RatingRow) -> bool:
    return any(
        value is not None for value in (row.rating, row.decision, row.likert, row.click_lps_mm)
    ) or bool(row.free_text.strip())


def validate_rows(labelled: list[tuple[str, RatingRow]], source: str) -> None:
    """Refuse, naming the rows, what would be counted wrongly: the same reading twice, one case
    with two truths, a row with no answer (a reader with no answers has only such rows)."""
    problems: list[str] = []
    seen: dict[tuple, str] = {}
    truth_of: dict[tuple, tuple[int, str]] = {}
    for label, row in labelled:
        key = (row.reader, row.modality, row.case, row.pair)
        if key in seen:
            problems.append(
                f"{label} repeats {seen[key]} (reader {row.reader}, modality {row.modality}, case {row.case})"
            )
        else:
            seen[key] = label
        case_key = (row.case, bool(row.pair))
        if case_key in truth_of and truth_of[case_key][0] != row.truth:
            first_truth, first_label = truth_of[case_key]
            problems.append(
                f"case {row.case} has truth {first_truth} at {first_label} but {row.truth} at {label}"
            )
        truth_of.setdefault(case_key, (row.truth, label))
        if not _has_answer(row):
            problems.append(f"{label}: reader {row.reader} gave no answer for case {row.case}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"{source}: " + "; ".join(problems[:3]) + more)


def write_csv(rows: list[RatingRow], path: str | Path) -> Path:
    """Long-format CSV, one header line then one row per reading, empty cells for missing values."""
    path = Path(path)
    with atomic_file(path) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([row.cell(c) for c in CSV_COLUMNS])
    return path


def read_csv(path: str | Path) -> list[RatingRow]:
    """Read the long-format CSV (extra columns ignored; decision/likert/time/pair optional)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        aliases = {"readerid": "reader", "modalityid": "modality", "caseid": "case", "time": "time_s"}
        mapping = {name: aliases.get(name.lower(), name.lower()) for name in header}
        missing = {"reader", "case", "truth", "rating"} - set(mapping.values())
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
        rows = []
        for line_number, raw in enumerate(reader, start=2):
            record = {
                mapping[k.strip()]: restore_formula_text(v) if isinstance(v, str) else v
                for k, v in raw.items()
                if k is not None
            }
            try:
                click = [_optional_float(record.get(c), c) for c in CLICK_COLUMNS]
                truth = _binary(record["truth"], "truth")
                if truth is None:
                    raise ValueError("truth is empty")
                reader_id = str(record["reader"] or "").strip()
                if not reader_id:
                    raise ValueError("reader is empty")
                row = RatingRow(
                    reader=reader_id,
                    modality=str(record.get("modality") or "default").strip(),
                    case=str(record["case"]).strip(),
                    truth=truth,
                    rating=_optional_float(record.get("rating"), "rating"),
                    time_s=_optional_float(record.get("time_s"), "time_s"),
                    decision=_binary(record.get("decision"), "decision"),
                    likert=_optional_float(record.get("likert"), "likert"),
                    pair=str(record.get("pair") or "").strip(),
                    click_lps_mm=None if None in click else tuple(click),
                    finding_distance_mm=_optional_float(
                        record.get("finding_distance_mm"), "finding_distance_mm"
                    ),
                    tolerance_mm=_optional_float(record.get("tolerance_mm"), "tolerance_mm"),
                    free_text=str(record.get("free_text") or ""),
                )
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path.name} line {line_number}: {error}") from None
            rows.append((f"line {line_number}", row))
    validate_rows(rows, path.name)
    return [row for _, row in rows]


def read_imrmc(path: str | Path) -> list[RatingRow]:
    """Read an iMRMC input file: header lines, ``BEGIN DATA:``, then ``reader,case,modality,score``
    rows where reader -1 gives the case's truth (1 positive, 0 negative)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().upper().startswith("BEGIN DATA"))
    except StopIteration:
        raise ValueError(f"{path.name}: not an iMRMC file (no 'BEGIN DATA:' line)") from None
    truth: dict[str, tuple[int, int]] = {}  # case -> (truth, line)
    readings: list[tuple[int, str, str, str, float]] = []
    for line_number, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise ValueError(f"{path.name} line {line_number}: expected 4 fields, found {len(parts)}")
        reader, case, modality, score_text = parts
        try:
            if reader == "-1":
                value = _binary(score_text, "truth")
                if value is None:
                    raise ValueError("truth is empty")
                if case in truth and truth[case][0] != value:
                    raise ValueError(f"case {case} has truth {truth[case][0]} at line {truth[case][1]}")
                truth[case] = (value, line_number)
                continue
            score = _optional_float(score_text, "score")
            if score is None:
                raise ValueError("score is empty")
        except ValueError as error:
            raise ValueError(f"{path.name} line {line_number}: {error}") from None
        readings.append((line_number, reader, case, modality, score))
    labelled = []
    for line_number, reader, case, modality, score in readings:
        if case not in truth:
            raise ValueError(f"{path.name} line {line_number}: case {case} has readings but no truth line")
        row = RatingRow(reader=reader, modality=modality, case=case, truth=truth[case][0], rating=score)
        labelled.append((f"line {line_number}", row))
    validate_rows(labelled, path.name)
    classes = [value for value, _ in truth.values()]
    if min(classes.count(0), classes.count(1)) < MIN_CASES_PER_CLASS:
        raise ValueError(
            f"{path.name}: {classes.count(1)} positive and {classes.count(0)} negative case(s); an ROC "
            f"analysis needs at least {MIN_CASES_PER_CLASS} of each"
        )
    return [row for _, row in labelled]


def write_imrmc(rows: list[RatingRow], path: str | Path, description: str = "SynthView reader study") -> Path:
    """Write rated rows (2AFC rows excluded) in the iMRMC input format."""
    path = Path(path)
    rated = [r for r in rows if r.rating is not None and not r.pair]
    truth = {r.case: r.truth for r in rated}
    readers = sorted({r.reader for r in rated})
    modalities = sorted({r.modality for r in rated})
    lines = [
        description.replace("\n", " "),
        f"N0:{sum(1 for t in truth.values() if t == 0)}",
        f"N1:{sum(1 for t in truth.values() if t == 1)}",
        f"NR:{len(readers)}",
        f"NM:{len(modalities)}",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{case},truth,{value}" for case, value in truth.items()]
    lines += [f"{r.reader},{r.case},{r.modality},{r.rating:g}" for r in rated]
    return write_text_atomic(path, "\n".join(lines) + "\n")
