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
