"""The study editor dialog: a coordinator adds real and synthetic images, sets options, saves."""

from __future__ import annotations

from PySide6 import QtCore

from app.readerstudy.definition import load_definition
from app.ui.reading.editor_dialog import StudyEditorDialog
from tests.readerstudy.conftest import write_cases


def test_editor_builds_a_valid_definition_and_saves_it(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=2, synthetic=2)
    dialog = StudyEditorDialog()
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("Editor study")
    dialog.seed_spin.setValue(321)
    dialog.add_images(sorted(real_dir.glob("*.nii.gz")), "real")
    dialog.add_images(sorted(synthetic_dir.glob("*.nii.gz")), "synthetic")
    dialog.case_table.item(0, 4).setCheckState(QtCore.Qt.CheckState.Checked)  # first case is practice
    dialog.show()
    qtbot.waitExposed(dialog)
    check_box = dialog.lock_check
    qtbot.mouseClick(
        check_box, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, check_box.height() // 2)
    )
    dialog.time_spin.setValue(30)
    dialog.question_checks["localise"].setChecked(True)
    target = tmp_path / "study.yaml"
    assert dialog.save(target)
    loaded = load_definition(target)
    assert loaded.name == "Editor study" and loaded.seed == 321
    assert [c.truth for c in loaded.cases] == ["real", "real", "synthetic", "synthetic"]
    assert [c.id for c in loaded.cases] == ["real-001", "real-002", "synthetic-001", "synthetic-002"]
    assert loaded.cases[0].practice and not loaded.cases[1].practice
    assert loaded.options.window_level_locked and loaded.options.time_limit_s == 30
    assert {q.type for q in loaded.questions} == {"real_synthetic", "likert", "free_text", "localise"}
    dialog.grab().save("/tmp/g_study_editor.png")


def test_editor_refuses_an_invalid_study_with_a_message(qtbot, tmp_path):
    dialog = StudyEditorDialog()
    qtbot.addWidget(dialog)
    target = tmp_path / "study.yaml"
    assert not dialog.save(target)
    assert "no cases" in dialog.message_label.text()
    assert not target.exists()


def test_editor_sets_normalisation_and_findings_and_keeps_what_it_does_not_show(qtbot, tmp_path):
    from app.readerstudy.definition import CaseSpec, StudyDefinition, default_questions, save_definition

    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=1, synthetic=1)
    cases = [
        CaseSpec(
            "r", str(next(real_dir.glob("*.nii.gz"))), "real", mrmc_case="pair-1", finding_lps_mm=[1.5, 2, 3]
        ),
        CaseSpec("s", str(next(synthetic_dir.glob("*.nii.gz"))), "synthetic", mrmc_case="pair-2"),
    ]
    original = StudyDefinition("with findings", 3, default_questions(), cases)
    original.options.intensity_percentiles = [2.0, 98.0]
    source = save_definition(original, tmp_path / "in.yaml")
    dialog = StudyEditorDialog(load_definition(source))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.case_table.item(0, 6).text() == "1.5, 2, 3" and dialog.case_table.item(1, 6).text() == ""
    assert not dialog.normalise_check.isChecked()
    check_box = dialog.normalise_check
    qtbot.mouseClick(
        check_box, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, check_box.height() // 2)
    )
    dialog.tolerance_spin.setValue(7.5)
    assert not dialog.feedback_check.isChecked() and not dialog.shape_check.isChecked()
    for box in (dialog.feedback_check, dialog.shape_check):
        qtbot.mouseClick(box, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, box.height() // 2))
    dialog.case_table.item(1, 6).setText("4 5 6")
    target = tmp_path / "out.yaml"
    assert dialog.save(target)
    loaded = load_definition(target)
    assert loaded.options.intensity_normalisation == "percentile"
    assert loaded.options.intensity_percentiles == [2.0, 98.0]  # not shown, kept
    assert loaded.options.localisation_tolerance_mm == 7.5
    assert loaded.options.practice_feedback and loaded.options.common_shape
    assert [c.finding_lps_mm for c in loaded.cases] == [[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert [c.mrmc_case for c in loaded.cases] == ["pair-1", "pair-2"]

    again = StudyEditorDialog(loaded)
    qtbot.addWidget(again)
    again.case_table.item(0, 6).setText("1, 2")
    assert not again.save(tmp_path / "bad.yaml")
    assert "finding_lps_mm" in again.message_label.text() and not (tmp_path / "bad.yaml").exists()
    dialog.grab().save("/tmp/g_study_editor_findings.png")


def test_editor_keeps_the_wording_ids_and_required_flags_of_loaded_questions(qtbot, tmp_path):
    """Opening a definition and saving it through the editor replaced the coordinator's question
    wording with the defaults and renamed the questions (and dropped a second one of a type)."""
    from app.readerstudy.definition import CaseSpec, Question, StudyDefinition, save_definition

    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=1, synthetic=1)
    cases = [
        CaseSpec("r", str(next(real_dir.glob("*.nii.gz"))), "real"),
        CaseSpec("s", str(next(synthetic_dir.glob("*.nii.gz"))), "synthetic"),
    ]
    questions = [
        Question("vtt", "real_synthetic", text="Was this slice acquired on a scanner?", scale="1-5"),
        Question("iq", "likert", text="Diagnostic quality", required=False),
        Question("notes", "free_text", text="Artefacts seen", required=False),
        Question("notes2", "free_text", text="Anything else", required=False),
    ]
    path = save_definition(StudyDefinition("wording", 3, questions, cases), tmp_path / "study.yaml")
    dialog = StudyEditorDialog(load_definition(path), save_path=str(path))
    qtbot.addWidget(dialog)
    dialog.scale_combo.setCurrentText("0-100")
    dialog.question_checks["localise"].setChecked(True)
    assert dialog.save(path)
    loaded = load_definition(path)
    kept = [(q.id, q.type, q.text, q.required) for q in loaded.questions if q.type != "localise"]
    assert kept == [(q.id, q.type, q.text, q.required) for q in questions]
    assert loaded.questions[0].scale == "0-100"  # what the dialog shows still applies
    assert [q.id for q in loaded.questions if q.type == "localise"] == ["finding"]
