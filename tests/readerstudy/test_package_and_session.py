"""Study definition, blinding of the reading package, per-reader order, durable append-only answers."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import sqlalchemy as sa

from app.io.nifti import load_nifti, save_nifti, sidecar_path
from app.readerstudy.definition import StudyDefinitionError, StudyOptions, load_definition, save_definition
from app.readerstudy.package import create_study, load_package
from app.readerstudy.session import AnswerError, ReadingSession, reader_seed, reading_order
from app.readerstudy.storage import StudyStore, answers

from .conftest import PLUGIN_NAME

CALL_SYNTHETIC = {"choice": "synthetic", "confidence": 4}
CALL_REAL = {"choice": "real", "confidence": 2}


def open_session(created, reader: str) -> ReadingSession:
    package, reading_dir = load_package(created.reading_dir)
    return ReadingSession(package, reading_dir, StudyStore(created.database_url, create=False), reader)


def answer_all(session: ReadingSession, seconds: float = 2.0) -> None:
    while not session.finished:
        session.submit({"call": CALL_SYNTHETIC, "quality": 3}, seconds)


def test_reading_package_is_blinded(created_study, case_folders):
    created, definition = created_study
    reading = created.reading_dir
    files = [p for p in reading.rglob("*") if p.is_file()]
    names = " ".join(str(p.relative_to(reading)) for p in files).lower()
    package_text = (reading / "study.json").read_text().lower()
    for leak in ("synthetic_scans", "real_scans", "sub-", PLUGIN_NAME, "t1w", "seriesdescription", "toygan"):
        assert leak not in names and leak not in package_text
    assert '"truth"' not in package_text and "modality" not in package_text and "vtt of" not in package_text
    # Truth lives outside the reading folder, in its own owner-only folder.
    assert created.truth_path.parent.parent == reading.parent and not created.truth_path.is_relative_to(
        reading
    )
    assert created.truth_path.parent.stat().st_mode & 0o777 == 0o700
    assert created.truth_path.stat().st_mode & 0o777 == 0o600
    images = sorted((reading / "images").iterdir())
    assert len(images) == len(definition.cases)
    dtypes = set()
    for image in images:
        assert image.name.endswith(".nii") and not sidecar_path(image).exists()
        header = nib.load(str(image)).header
        # The same description on every image, real or synthetic: it tells only that it may be.
        assert (
            header["descrip"].tobytes().strip(b"\x00") == b"BLINDED STUDY IMAGE - MAY BE SYNTHETIC"
            and header["aux_file"].tobytes().strip(b"\x00") == b""
        )
        assert header.get_data_dtype() == np.float32
        volume = load_nifti(image)
        assert volume.provenance is None and not volume.is_synthetic
        assert volume.blinded_study_image is True
        dtypes.add(np.asarray(volume.voxels).dtype)
    assert dtypes == {np.dtype(np.float32)}  # int16 real vs float32 synthetic no longer differ
    # Items are listed by opaque id, not grouped by truth.
    ids = [item["item_id"] for item in json.loads(package_text)["items"]]
    assert ids == sorted(ids)


def test_blinded_images_keep_pixels_and_geometry(created_study, case_folders):
    created, _ = created_study
    truth = json.loads(created.truth_path.read_text())["items"]
    item_id, entry = next(iter(truth.items()))
    package, _ = load_package(created.reading_dir)
    image_id = next(i["image_ids"][0] for i in package["items"] if i["item_id"] == item_id)
    source = load_nifti(entry["sources"][0])
    blinded = load_nifti(created.reading_dir / "images" / f"{image_id}.nii")
    assert blinded.geometry.allclose(source.geometry)
    # Normalised (folders mode): the same picture, brighter stays brighter.
    order = np.argsort(np.asarray(source.voxels, dtype=float).ravel(), kind="stable")
    assert np.all(np.diff(np.asarray(blinded.voxels).ravel()[order]) >= 0)


def test_definition_round_trip_and_errors(tmp_path, created_study):
    _, definition = created_study
    path = save_definition(definition, tmp_path / "study.yaml")
    loaded = load_definition(path)
    assert [c.path for c in loaded.cases] == [c.path for c in definition.cases]
    assert loaded.seed == 1234
    json_path = save_definition(definition, tmp_path / "study.json")
    assert load_definition(json_path).name == definition.name
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nquestions: [{id: q, type: essay}]\ncases: []\n")
    with pytest.raises(StudyDefinitionError, match="essay"):
        load_definition(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text(
        "name: x\nquestions: [{id: q, type: likert}]\ncases: [{id: a, path: nowhere.nii, truth: real}]\n"
    )
    with pytest.raises(StudyDefinitionError, match="image not found"):
        load_definition(missing)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(StudyDefinitionError):
        load_definition(unsafe)


def test_order_is_reproducible_from_seed_and_differs_between_readers():
    items = [{"item_id": f"K{i:02d}", "image_ids": [f"I{i}"], "practice": i < 2} for i in range(20)]
    first = reading_order(items, 99, "reader-a")
    assert first == reading_order(items, 99, "reader-a")
    assert [o["item_id"] for o in first[:2]] == ["K00", "K01"]  # practice first, in order
    others = [reading_order(items, 99, reader) for reader in ("reader-b", "reader-c")]
    assert all([o["item_id"] for o in other] != [o["item_id"] for o in first] for other in others)
    assert reading_order(items, 100, "reader-a") != first
    assert reader_seed(99, "reader-a") != reader_seed(99, "reader-b")


def test_session_records_resumes_and_keeps_an_audit_trail(created_study):
    created, definition = created_study
    session = open_session(created, "R1")
    assert session.progress() == ("practice", 1, 2)
    with pytest.raises(AnswerError, match="please answer"):
        session.submit({"quality": 3}, 1.0)
    session.submit({"call": CALL_REAL, "quality": 4}, 3.0)
    session.submit({"call": CALL_SYNTHETIC, "quality": 2}, 2.0)
    assert session.progress() == ("case", 1, len(definition.cases) - 2)
    session.leave(4.0, "pause")
    second_item = session.current.item_id
    session.submit({"call": CALL_SYNTHETIC, "quality": 2, "comment": "noisy"}, 1.5)
    assert session.time_spent()[second_item] == pytest.approx(5.5)  # summed over both visits

    seed, order = session.store.session_order(created.study_id, "R1")
    package, _ = load_package(created.reading_dir)
    assert int(seed) == reader_seed(definition.seed, "R1")  # the recorded seed reproduces the order
    assert order == reading_order(package["items"], definition.seed, "R1")

    resumed = open_session(created, "R1")  # a new process: same order, first unanswered case
    assert [i.item_id for i in resumed.items] == [i.item_id for i in session.items]
    assert resumed.position == 3
    assert resumed.stored_answers(second_item)["comment"] == "noisy"

    trail = resumed.store.audit_trail(created.study_id)
    assert [row["action"] for row in trail].count("answer") == 7
    assert {"create-study", "start-session", "pause"} <= {row["action"] for row in trail}
    assert all(row["who"] in ("coordinator", "R1") and row["when_utc"] for row in trail)


def test_answers_are_append_only(created_study):
    created, _ = created_study
    session = open_session(created, "R1")
    session.submit({"call": CALL_REAL, "quality": 4}, 1.0)
    engine = session.store.engine
    for statement in (sa.update(answers).values(value_json='"x"'), sa.delete(answers)):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(statement)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_changing_answers_follows_the_study_option(tmp_path, case_folders):
    from app.readerstudy.definition import definition_from_folders

    real_dir, synthetic_dir = case_folders
    definition = definition_from_folders(real_dir, synthetic_dir, "nav", seed=5)
    definition.options.allow_case_navigation = True
    definition.options.allow_answer_modification = True
    created = create_study(definition, tmp_path / "nav", load_nifti, save_nifti)
    session = open_session(created, "R2")
    first = session.current.item_id
    session.submit({"call": CALL_REAL, "quality": 4}, 1.0)
    session.go_to(0, seconds_on_current=2.0)
    assert session.current.item_id == first
    session.submit({"call": CALL_SYNTHETIC, "quality": 4}, 1.0)
    assert session.position == 1
    with pytest.raises(AnswerError, match="not available"):
        session.go_to(5)
    trail = session.store.audit_trail(created.study_id)
    change = [json.loads(r["detail_json"]) for r in trail if r["action"] == "change-answer"]
    assert change == [{"question": "call", "old": CALL_REAL, "new": CALL_SYNTHETIC, "revision": 2}]
    with session.store.engine.connect() as connection:
        revisions = connection.execute(sa.select(answers.c.revision).where(answers.c.item_id == first)).all()
    assert sorted(r[0] for r in revisions) == [1, 1, 2]  # the old answer is kept


def test_changing_answers_refused_when_not_allowed(created_study):
    created, _ = created_study
    session = open_session(created, "R3")
    session.submit({"call": CALL_REAL, "quality": 4}, 1.0)
    with pytest.raises(AnswerError, match="does not allow"):
        session.go_to(0)


def test_three_readers_and_analysis_exclude_practice(created_study):
    from app.readerstudy.analysis import analyze

    created, definition = created_study
    truth = json.loads(created.truth_path.read_text())["items"]
    for reader, accuracy in (("R1", 1.0), ("R2", 0.5), ("R3", 0.0)):
        session = open_session(created, reader)
        rng = np.random.default_rng(len(reader) + ord(reader[-1]))
        while not session.finished:
            is_synthetic = truth[session.current.item_id]["truth"] == "synthetic"
            correct = rng.random() < accuracy
            choice = "synthetic" if is_synthetic == correct else "real"
            session.submit(
                {"call": {"choice": choice, "confidence": 3}, "quality": 4 if choice == "real" else 2}, 1.0
            )
    result = analyze(created.database_url.replace("sqlite:///", ""))
    section = result["modalities"]["default"]
    main_cases = sum(1 for c in definition.cases if not c.practice)
    assert section["cases"] == main_cases
    assert section["binary"]["per_reader"]["R1"]["accuracy"]["estimate"] == 1.0
    assert section["binary"]["per_reader"]["R3"]["accuracy"]["estimate"] == 0.0
    assert section["binary"]["pooled"]["accuracy"]["total"] == 3 * main_cases
    assert set(section["agreement"]["cohen_pairwise"]) == {"R1 vs R2", "R1 vs R3", "R2 vs R3"}
    assert section["agreement"]["cohen_pairwise"]["R1 vs R3"] == pytest.approx(-1.0)
    assert section["roc"]["per_reader"]["R1"]["auc"] == 1.0
    assert section["likert"]["test_name"].startswith("Mann-Whitney")


def test_common_spacing_removes_a_spacing_difference(tmp_path):
    from app.core.volume import Geometry, Volume
    from app.readerstudy.package import blinded_volume

    volume = Volume(
        np.arange(4 * 6 * 8, dtype=np.int16).reshape(4, 6, 8), Geometry.identity((0.5, 0.5, 2.0)), name="x"
    )
    blinded = blinded_volume(volume, "IABC", common_spacing_mm=1.0)
    np.testing.assert_allclose(blinded.geometry.spacing_mm, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(blinded.geometry.origin_lps_mm, volume.geometry.origin_lps_mm)
    # Within the same extent: centres 0-3.5 mm -> 4 voxels, 0-2.5 mm -> 3, 0-6 mm -> 7.
    assert blinded.shape_kji == (7, 3, 4)
    assert blinded.voxels.dtype == np.float32 and blinded.name == "IABC" and blinded.provenance is None
    assert blinded.value_at_lps(volume.geometry.lps_from_index([2, 2, 1])) == pytest.approx(
        float(volume.voxels[1, 2, 2])
    )


def test_create_warns_when_spacing_tells_real_from_synthetic(tmp_path):
    from app.core.volume import Geometry, Volume
    from app.readerstudy.definition import CaseSpec, StudyDefinition, default_questions

    paths = []
    for index, spacing in enumerate([(1, 1, 1), (0.5, 0.5, 0.5)]):
        path = tmp_path / f"case{index}.nii.gz"
        save_nifti(Volume(np.zeros((2, 3, 4), np.float32), Geometry.identity(spacing)), path)
        paths.append(path)
    definition = StudyDefinition(
        "w",
        1,
        default_questions(),
        [CaseSpec("a", str(paths[0]), "real"), CaseSpec("b", str(paths[1]), "synthetic")],
    )
    created = create_study(definition, tmp_path / "out", load_nifti, save_nifti)
    assert any("spacing" in warning and "common_spacing_mm" in warning for warning in created.warnings)


def test_two_modality_study_from_the_database_gets_mrmc_and_studies_are_kept_apart(tmp_path, case_folders):
    """Each case read under two modalities (e.g. two generators); two studies share one database."""
    from app.readerstudy.analysis import analyze
    from app.readerstudy.definition import CaseSpec, StudyDefinition, default_questions

    real_dir, synthetic_dir = case_folders
    images = sorted(real_dir.glob("*.nii.gz")) + sorted(synthetic_dir.glob("*.nii.gz"))
    cases = []
    for modality in ("gan-a", "gan-b"):
        for index, path in enumerate(images):
            truth = "real" if "real_scans" in str(path) else "synthetic"
            cases.append(
                CaseSpec(f"{modality}-{index}", str(path), truth, modality=modality, mrmc_case=f"c{index}")
            )
    definition = StudyDefinition(
        "mrmc", 8, default_questions(), cases, StudyOptions(intensity_normalisation="percentile")
    )
    database = tmp_path / "shared.db"
    created = create_study(definition, tmp_path / "one", load_nifti, save_nifti, database=database)
    other = create_study(definition, tmp_path / "two", load_nifti, save_nifti, database=database)
    truth = json.loads(created.truth_path.read_text())["items"]
    rng = np.random.default_rng(4)
    for reader in ("R1", "R2", "R3"):
        package, reading_dir = load_package(created.reading_dir)
        session = ReadingSession(package, reading_dir, StudyStore(database, create=False), reader)
        while not session.finished:
            entry = truth[session.current.item_id]
            skill = 0.9 if entry["modality"] == "gan-a" else 0.6
            is_synthetic = entry["truth"] == "synthetic"
            choice = "synthetic" if is_synthetic == (rng.random() < skill) else "real"
            confidence = int(rng.integers(1, 6))
            session.submit({"call": {"choice": choice, "confidence": confidence}, "quality": 3}, 1.0)
    with pytest.raises(ValueError, match="holds 2 studies"):
        analyze(database)
    result = analyze(database, created.study_id, truth=created.truth_path)
    assert set(result["modalities"]) == {"gan-a", "gan-b"}
    mrmc = result["mrmc"]
    assert mrmc["modalities"] == ["gan-a", "gan-b"] and mrmc["cases"] == len(images)
    assert mrmc["ndf"] == 1 and mrmc["ddf"] > 0 and 0 <= mrmc["p_value"] <= 1
    assert set(mrmc["reader_auc"]["gan-a"]) == {"R1", "R2", "R3"}
    with pytest.raises(ValueError, match="no readings"):
        analyze(database, other.study_id, truth=other.truth_path)


def test_dicom_series_cases_are_blinded_to_pixels_only(tmp_path, case_folders):
    """A synthetic case stored as a derived DICOM series (image type, series description, UIDs,
    synthetic-data flag) reaches readers as a bare float32 NIfTI with the same pixels."""
    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume
    from app.io.dicom_export import write_derived_series
    from app.io.loader import load_volume
    from app.readerstudy.definition import definition_from_folders

    real_dir, synthetic_dir = case_folders
    voxels = np.arange(3 * 8 * 6, dtype=np.float32).reshape(3, 8, 6) * 3.0
    volume = Volume(
        voxels, Geometry.identity((0.8, 0.8, 2.5)), modality="MR", provenance=Provenance(PLUGIN_NAME, "2.0")
    )
    write_derived_series(volume, synthetic_dir / "dicom_case", series_description=f"{PLUGIN_NAME} output")
    definition = definition_from_folders(real_dir, synthetic_dir, "dicom", seed=1)
    definition.options.intensity_normalisation = "none"  # to compare the pixels themselves
    assert any(c.path.endswith("dicom_case") and c.truth == "synthetic" for c in definition.cases)
    created = create_study(definition, tmp_path / "study", load_volume, save_nifti)
    truth = json.loads(created.truth_path.read_text())["items"]
    item_id = next(k for k, v in truth.items() if v["sources"][0].endswith("dicom_case"))
    package, _ = load_package(created.reading_dir)
    image_id = next(i["image_ids"][0] for i in package["items"] if i["item_id"] == item_id)
    image = created.reading_dir / "images" / f"{image_id}.nii"
    blinded = load_nifti(image)
    np.testing.assert_allclose(np.asarray(blinded.voxels), voxels, atol=0.01)
    np.testing.assert_allclose(blinded.geometry.spacing_mm, [0.8, 0.8, 2.5])
    assert blinded.provenance is None and not sidecar_path(image).exists()
    assert PLUGIN_NAME.encode() not in image.read_bytes()  # anywhere in the file


def _write_order_study(tmp_path, case_folders, paired: bool):
    """A definition of 12 real and 12 synthetic cases (or 12 pairs, the real image first in the
    definition), created with a save_volume that records the order images are written in."""
    from app.readerstudy.definition import CaseSpec, Question, StudyDefinition

    real_dir, synthetic_dir = case_folders
    real = sorted(real_dir.glob("*.nii.gz"))
    synthetic = sorted(synthetic_dir.glob("*.nii.gz"))
    if paired:
        cases = [
            CaseSpec(f"p{i}", str(real[i % 4]), "real", paired_path=str(synthetic[i % 4])) for i in range(12)
        ]
        questions = [Question("pick", "two_afc")]
    else:
        cases = [CaseSpec(f"r{i}", str(real[i % 4]), "real") for i in range(12)]
        cases += [CaseSpec(f"s{i}", str(synthetic[i % 4]), "synthetic") for i in range(12)]
        questions = [Question("call", "real_synthetic")]
    definition = StudyDefinition(
        "order", 3, questions, cases, StudyOptions(intensity_normalisation="percentile")
    )
    written = []

    def recording_save(volume, path):
        written.append(path.name.removesuffix(".nii"))
        return save_nifti(volume, path)

    created = create_study(definition, tmp_path / "study", load_nifti, recording_save)
    truth = json.loads(created.truth_path.read_text())["items"]
    package, _ = load_package(created.reading_dir)
    return written, truth, package


def test_images_are_written_in_an_order_that_says_nothing_about_truth(tmp_path, case_folders):
    """File times and inode numbers follow the writing order, which a reader can list: writing
    cases in definition order (every real case, then every synthetic one) told them apart."""
    written, truth, package = _write_order_study(tmp_path, case_folders, paired=False)
    truth_of_image = {item["image_ids"][0]: truth[item["item_id"]]["truth"] for item in package["items"]}
    sequence = [truth_of_image[image_id] for image_id in written]
    assert sorted(sequence) == sorted(truth_of_image.values())
    # Definition order would be 12 x real then 12 x synthetic; a shuffle gives that 1 in 2.7 million.
    assert sequence != ["real"] * 12 + ["synthetic"] * 12


def test_the_two_images_of_a_pair_are_not_written_in_definition_order(tmp_path, case_folders):
    """In each 2AFC pair the definition's ``path`` (here always the real image) was written just
    before its partner: the older file of a pair was the real one."""
    written, truth, package = _write_order_study(tmp_path, case_folders, paired=True)
    position = {image_id: index for index, image_id in enumerate(written)}
    synthetic_written_first = [
        position[truth[item["item_id"]]["synthetic_image_id"]] == min(position[i] for i in item["image_ids"])
        for item in package["items"]
    ]
    assert any(synthetic_written_first) and not all(synthetic_written_first)  # 1 in 2048 to fail


def test_a_failed_create_leaves_no_images_behind(tmp_path, case_folders):
    """A case that cannot be loaded stops the creation; the images already written are removed,
    so a second run into the same folder does not ship orphans beside its own images."""
    real_dir, synthetic_dir = case_folders
    (synthetic_dir / "zz_broken.nii.gz").write_bytes(b"not an image")
    from app.readerstudy.definition import definition_from_folders

    definition = definition_from_folders(real_dir, synthetic_dir, "broken", seed=1)
    with pytest.raises(ValueError, match="cannot load"):
        create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    images = tmp_path / "study" / "reading" / "images"
    assert not images.exists() or not any(images.iterdir())
    (synthetic_dir / "zz_broken.nii.gz").unlink()
    definition = definition_from_folders(real_dir, synthetic_dir, "fixed", seed=1)
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    assert len(list((created.reading_dir / "images").iterdir())) == len(definition.cases)
