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
from dataclasses import dataclass, fields
from pathlib import Path

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


def _optional_float(text: str | None) -> float | None:
    if text is None or str(text).strip() in ("", "NA", "nan", "None"):
        return None
    value = float(text)
    return None if math.isnan(value) else value


def write_csv(rows: list[RatingRow], path: str | Path) -> Path:
    """Long-format CSV, one header line then one row per reading, empty cells for missing values."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
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
                decision = _optional_float(record.get("decision"))
                click = [_optional_float(record.get(c)) for c in CLICK_COLUMNS]
                rows.append(
                    RatingRow(
                        reader=str(record["reader"]).strip(),
                        modality=str(record.get("modality") or "default").strip(),
                        case=str(record["case"]).strip(),
                        truth=int(float(record["truth"])),
                        rating=_optional_float(record.get("rating")),
                        time_s=_optional_float(record.get("time_s")),
                        decision=None if decision is None else int(decision),
                        likert=_optional_float(record.get("likert")),
                        pair=str(record.get("pair") or "").strip(),
                        click_lps_mm=None if None in click else tuple(click),
                        finding_distance_mm=_optional_float(record.get("finding_distance_mm")),
                        tolerance_mm=_optional_float(record.get("tolerance_mm")),
                        free_text=str(record.get("free_text") or ""),
                    )
                )
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path.name} line {line_number}: {error}") from None
    return rows


def read_imrmc(path: str | Path) -> list[RatingRow]:
    """Read an iMRMC input file: header lines, ``BEGIN DATA:``, then ``reader,case,modality,score``
    rows where reader -1 gives the case's truth (1 positive, 0 negative)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().upper().startswith("BEGIN DATA"))
    except StopIteration:
        raise ValueError(f"{path.name}: not an iMRMC file (no 'BEGIN DATA:' line)") from None
    truth: dict[str, int] = {}
    readings: list[tuple[str, str, str, float]] = []
    for line_number, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise ValueError(f"{path.name} line {line_number}: expected 4 fields, found {len(parts)}")
        reader, case, modality, score = parts
        if reader == "-1":
            truth[case] = int(float(score))
        else:
            readings.append((reader, case, modality, float(score)))
    rows = []
    for reader, case, modality, score in readings:
        if case not in truth:
            raise ValueError(f"{path.name}: case {case} has readings but no truth line")
        rows.append(RatingRow(reader=reader, modality=modality, case=case, truth=truth[case], rating=score))
    return rows


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
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def field_names() -> list[str]:
    return [f.name for f in fields(RatingRow)]
