"""Follow-up gaps of the reader studies: the truth kept only in the coordinator's file, intensity
normalisation in blinding, localisation clicks and free text in the export and the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from app.cli.study import add_arguments, run
from app.core.volume import Geometry, Volume
from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.analysis import analyze, load_rows
from app.readerstudy.definition import (
    CaseSpec,
    Question,
    StudyDefinition,
    StudyDefinitionError,
    StudyOptions,
    default_questions,
    load_definition,
    save_definition,
)
from app.readerstudy.package import blinded_volume, create_study, load_package, normalise_intensity
from app.readerstudy.ratings import read_csv, write_csv
from app.readerstudy.report import render_html
from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore

from .conftest import PLUGIN_NAME

FINDING_LPS = [5.25, 6.75, 2.0]
STUDY_NAME = "Zebra pix2pix versus acquired"
MODALITIES = ("modality-alpha-gen", "modality-beta-gen")


def cli(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(argv))


def localisation_definition(case_folders) -> StudyDefinition:
    """Every case under two distinctive modality names and case ids; real cases carry a finding."""
    real_dir, synthetic_dir = case_folders
    questions = [*default_questions(), Question("finding", "localise", required=False)]
    cases = []
    for modality in MODALITIES:
        for truth, folder in (("real", real_dir), ("synthetic", synthetic_dir)):
            for index, path in enumerate(sorted(folder.glob("*.nii.gz"))):
                cases.append(
                    CaseSpec(
                        f"casekey-{modality}-{truth}-{index}",
                        str(path),
                        truth,
                        modality=modality,
                        mrmc_case=f"mrmckey-{truth}-{index}",
                        finding_lps_mm=FINDING_LPS if truth == "real" else None,
                    )
                )
    cases[0].practice = True
    definition = StudyDefinition(
        STUDY_NAME, 31, questions, cases, StudyOptions(intensity_normalisation="percentile")
    )
    definition.options.localisation_tolerance_mm = 3.0
    return definition


def read_with_clicks(created, truth: dict, reader: str) -> dict[str, str]:
    """Answer every case; on real cases click 1 mm (hit), 10 mm (miss) posterior of the finding,
    or not at all, in turn."""
    package, reading_dir = load_package(created.reading_dir)
    session = ReadingSession(package, reading_dir, StudyStore(created.database_url, create=False), reader)
    kinds: dict[str, str] = {}
    turn = 0
    while not session.finished:
        item = session.current
        entry = truth[item.item_id]
        values: dict = {
            "call": {"choice": entry["truth"], "confidence": 4},
            "quality": 3,
            "comment": f'looks odd, "edge" here\nsecond line {reader}',
        }
        if entry["finding_lps_mm"] is not None and not item.practice:
            kind = ("hit", "miss", "none")[turn % 3]
            turn += 1
            offset = {"hit": 1.0, "miss": 10.0}.get(kind)
            if offset is not None:
                click = [FINDING_LPS[0], FINDING_LPS[1] + offset, FINDING_LPS[2]]
                values["finding"] = {"image_id": item.image_ids[0], "lps_mm": click}
            kinds[item.item_id] = kind
        session.submit(values, 2.0)
    session.store.close()
    return kinds


@pytest.fixture
def localisation_study(tmp_path, case_folders):
    definition = localisation_definition(case_folders)
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    truth = json.loads(created.truth_path.read_text())["items"]
    kinds = {reader: read_with_clicks(created, truth, reader) for reader in ("R1", "R2")}
    return created, definition, truth, kinds


def test_reading_package_and_answers_database_hold_no_truth(localisation_study, tmp_path):
    """Grep every byte a reader can reach (package files, the database and its WAL) for truth."""
    created, definition, truth, _ = localisation_study
    out_dir = created.reading_dir.parent
    # The truth folder is the coordinator's own (0700): a reader's account cannot list it.
    assert created.truth_path.parent.stat().st_mode & 0o077 == 0
    reachable = [p for p in out_dir.rglob("*") if p.is_file() and created.truth_path.parent not in p.parents]
    assert any(p.name == "answers.db" for p in reachable)
    assert any(p.parent.name == "images" for p in reachable)
    blob = b"\n".join(p.read_bytes() for p in reachable).lower()
    tokens = [
        STUDY_NAME,
        PLUGIN_NAME,
        "truth",
        "synthetic_image_id",
        "mrmc",
        "casekey",
        "mrmckey",
        *MODALITIES,
    ]
    for case in definition.cases:
        tokens += [case.id, Path(case.path).name, str(Path(case.path).parent)]
    tokens.append(json.dumps(FINDING_LPS)[1:-1])  # the marked finding's coordinates
    for token in tokens:
        assert token.lower().encode() not in blob, f"{token!r} is readable outside the truth file"
    # No table or column in the database names the truth either.
    inspector = sa.inspect(sa.create_engine(created.database_url))
    names = [t for t in inspector.get_table_names()]
    names += [c["name"] for t in inspector.get_table_names() for c in inspector.get_columns(t)]
    assert not [n for n in names if "truth" in n or "modality" in n]
    # ...while the coordinator's file has it all, and the analysis finds it beside the database.
    assert {entry["case"] for entry in truth.values()} == {c.id for c in definition.cases}
    result = analyze(created.database_url)
    assert set(result["modalities"]) == set(MODALITIES)
    assert result["modalities"][MODALITIES[0]]["binary"]["pooled"]["accuracy"]["estimate"] == 1.0


def test_storing_truth_in_the_answers_database_is_refused(tmp_path):
    store = StudyStore(tmp_path / "a.db")
    with pytest.raises(ValueError, match="truth file"):
        store.register_study("S1", {"items": []}, [{"item_id": "K1", "truth": 1}])
    store.close()


def test_analyze_needs_the_truth_file_when_it_is_not_beside_the_database(
    localisation_study, tmp_path, capsys
):
    created, _, _, _ = localisation_study
    moved = tmp_path / "coordinator" / "truth-kept-apart.json"
    moved.parent.mkdir()
    created.truth_path.rename(moved)
    database = str(created.reading_dir.parent / "answers.db")
    with pytest.raises(ValueError, match="--truth"):
        analyze(database)
    assert cli(["analyze", database]) == 2
    assert "--truth" in capsys.readouterr().err
    out = tmp_path / "r.json"
    assert cli(["analyze", database, "--truth", str(moved), "--json", str(out)]) == 0
    assert "clicks within 3 mm of the marked finding" in capsys.readouterr().out
    assert set(json.loads(out.read_text())["modalities"]) == set(MODALITIES)
    # The study is taken from the truth file, and a truth file of another study is refused.
    other = json.loads(moved.read_text())
    other["study_id"] = "SOTHER"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="truth of study SOTHER"):
        analyze(database, created.study_id, truth=wrong)
    assert cli(["analyze", database, "--truth", str(tmp_path / "missing.json")]) == 2


def test_localisation_and_free_text_in_csv_and_report(localisation_study, tmp_path):
    created, definition, truth, kinds = localisation_study
    result = analyze(created.database_url)
    for modality in MODALITIES:
        section = result["modalities"][modality]["localisation"]
        assert section["tolerance_mm"] == [3.0]
        for reader in ("R1", "R2"):
            mine = [kinds[reader][k] for k in kinds[reader] if truth[k]["modality"] == modality]
            entry = section["per_reader"][reader]
            assert entry["cases"] == len(mine)  # every real case with a finding (no practice)
            assert entry["clicked"] == sum(k != "none" for k in mine)
            assert entry["hits"] == mine.count("hit")
            assert entry["hit_rate"]["estimate"] == pytest.approx(mine.count("hit") / len(mine))
            assert (
                entry["hit_rate"]["ci_low"] <= entry["hit_rate"]["estimate"] <= entry["hit_rate"]["ci_high"]
            )
        assert section["pooled"]["cases"] == sum(s["cases"] for s in section["per_reader"].values())
    html = render_html(result)
    assert "Localisation" in html and "within 3 mm" in html

    csv_path = tmp_path / "long.csv"
    assert cli(["export-csv", created.database_url, str(csv_path)]) == 0
    with csv_path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    header = csv_path.read_text().splitlines()[0]
    assert header.startswith("reader,modality,case,truth,rating,time_s")
    for column in (
        "click_l_mm",
        "click_p_mm",
        "click_s_mm",
        "finding_distance_mm",
        "tolerance_mm",
        "free_text",
    ):
        assert column in header
    clicked = [r for r in records if r["click_l_mm"]]
    assert clicked and all(float(r["click_l_mm"]) == FINDING_LPS[0] for r in clicked)
    assert {float(r["finding_distance_mm"]) for r in clicked} == {1.0, 10.0}
    assert all(r["free_text"].startswith('looks odd, "edge" here\nsecond line R') for r in records)
    assert all(r["tolerance_mm"] == "" for r in records if r["truth"] == "1")  # no finding marked
    # The CSV carries everything the localisation analysis needs.
    from_csv = analyze(csv_path)
    assert (
        from_csv["modalities"][MODALITIES[0]]["localisation"]
        == result["modalities"][MODALITIES[0]]["localisation"]
    )
    rows, _ = load_rows(csv_path)
    again = tmp_path / "again.csv"
    write_csv(rows, again)
    assert read_csv(again) == rows


def test_finding_is_validated_and_round_trips(tmp_path, case_folders):
    definition = localisation_definition(case_folders)
    path = save_definition(definition, tmp_path / "study.yaml")
    loaded = load_definition(path)
    assert loaded.cases[0].finding_lps_mm == FINDING_LPS and loaded.options.localisation_tolerance_mm == 3.0
    loaded.cases[0].finding_lps_mm = [1.0, "x", 2.0]
    with pytest.raises(StudyDefinitionError, match="finding_lps_mm"):
        loaded.validate()


def test_percentile_normalisation_removes_range_offset_and_quantisation():
    rng = np.random.default_rng(3)
    acquired = rng.integers(-1000, 2000, size=(4, 8, 8)).astype(np.int16)  # whole numbers, HU-like
    generated = (rng.normal(0.2, 0.05, size=(4, 8, 8))).astype(np.float32)  # continuous, 0-1 scale
    definition = StudyDefinition("n", 1, default_questions(), [])
    definition.options.intensity_normalisation = "percentile"
    blinded = [
        blinded_volume(Volume(v, Geometry.identity((1, 1, 1))), "I", options=definition.options)
        for v in (acquired, generated)
    ]
    for volume, source in zip(blinded, (acquired, generated), strict=True):
        voxels = volume.voxels
        assert voxels.dtype == np.float32
        assert voxels.min() == 0.0 and voxels.max() == 4095.0
        assert np.array_equal(voxels, np.round(voxels))  # one quantisation for every case
        # Order preserved: brighter stays brighter (ties only from clipping and quantisation).
        order = np.argsort(source.ravel(), kind="stable")
        assert np.all(np.diff(voxels.ravel()[order]) >= 0)
    # Same rank of values -> same normalised values, whatever the source's scale and offset.
    np.testing.assert_array_equal(normalise_intensity(acquired * 3.0 + 7.0), normalise_intensity(acquired))
    # Constant and NaN images stay finite, at the low end of the range.
    assert np.all(normalise_intensity(np.full((2, 2, 2), 5.0)) == 0.0)
    assert np.isfinite(normalise_intensity(np.array([[[np.nan, 1.0, 2.0]]]))).all()
    # Off by default: the pixels are kept as they are.
    plain = blinded_volume(Volume(acquired, Geometry.identity((1, 1, 1))), "I")
    np.testing.assert_array_equal(plain.voxels, acquired.astype(np.float32))


def test_created_study_with_normalisation_gives_readers_one_value_range(tmp_path, case_folders):
    real_dir, synthetic_dir = case_folders
    cases = [CaseSpec(f"r{i}", str(p), "real") for i, p in enumerate(sorted(real_dir.glob("*.nii.gz")))]
    cases += [
        CaseSpec(f"s{i}", str(p), "synthetic") for i, p in enumerate(sorted(synthetic_dir.glob("*.nii.gz")))
    ]
    plain = create_study(
        StudyDefinition("p", 1, default_questions(), cases), tmp_path / "plain", load_nifti, save_nifti
    )
    assert any("quantisation" in w and "intensity_normalisation" in w for w in plain.warnings)
    definition = StudyDefinition("n", 1, default_questions(), cases)
    definition.options.intensity_normalisation = "percentile"
    definition.options.intensity_percentiles = [2.0, 98.0]
    created = create_study(definition, tmp_path / "norm", load_nifti, save_nifti)
    assert not any("quantisation" in w for w in created.warnings)
    package, reading_dir = load_package(created.reading_dir)
    assert "intensity_normalisation" not in package["options"]  # blinding settings stay with the coordinator
    ranges = set()
    for image in (reading_dir / "images").iterdir():
        voxels = np.asarray(load_nifti(image).voxels)
        assert voxels.dtype == np.float32 and np.array_equal(voxels, np.round(voxels))
        ranges.add((float(voxels.min()), float(voxels.max())))
    assert ranges == {(0.0, 4095.0)}
    definition.options.intensity_normalisation = "zscore"
    with pytest.raises(StudyDefinitionError, match="intensity_normalisation"):
        definition.validate()
    definition.options.intensity_normalisation = "percentile"
    definition.options.intensity_percentiles = [99.0, 1.0]
    with pytest.raises(StudyDefinitionError, match="intensity_percentiles"):
        definition.validate()
