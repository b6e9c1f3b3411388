"""``study export-csv`` never writes a cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv

from app.readerstudy.package import load_package
from app.readerstudy.ratings import FORMULA_PREFIXES, RatingRow, read_csv, write_csv
from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore
from main import main

HOSTILE = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_export_neutralises_formula_prefixes_in_every_text_cell(tmp_path, created_study, capsys):
    created, _ = created_study
    package, reading_dir = load_package(created.reading_dir)
    store = StudyStore(created.database_url, create=False)
    for index, hostile in enumerate(HOSTILE):
        session = ReadingSession(package, reading_dir, store, f"{hostile}#{index}")
        while not session.finished:
            session.submit(
                {"call": {"choice": "real", "confidence": 3}, "quality": 3, "comment": hostile}, 1.0
            )
    store.close()
    out = tmp_path / "export.csv"
    assert (
        main(["study", "export-csv", str(created.database_url), str(out), "--truth", str(created.truth_path)])
        == 0
    )
    with out.open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    text_cells = [c for c in cells if c and not _is_number(c)]
    assert any(c.startswith("'=HYPERLINK") for c in text_cells)
    assert not [c for c in text_cells if c.startswith(FORMULA_PREFIXES[:-1])]
    # Read back, the values are the readers' own.
    rows = read_csv(out)
    assert {r.reader for r in rows} == {f"{h}#{i}".strip() for i, h in enumerate(HOSTILE)}  # ids are stripped
    assert {r.free_text for r in rows} == {h.strip() for h in HOSTILE}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_round_trip_keeps_an_apostrophe_and_negative_numbers(tmp_path):
    rows = [RatingRow("'quoted", "m", "-case", 1, -3.5, free_text="'=x")]
    path = write_csv(rows, tmp_path / "r.csv")
    assert read_csv(path) == rows
    assert "-3.5" in path.read_text()  # numbers are numbers, not neutralised text
