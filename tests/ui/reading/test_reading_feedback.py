"""Practice cases give the truth after the answer when the study asks for it; the reading window
shows which slice is on screen."""

from __future__ import annotations

from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.definition import definition_from_folders
from app.readerstudy.package import create_study
from tests.readerstudy.conftest import write_cases
from tests.ui.reading.test_reading_window import click, find_button, open_window


def _answer(qtbot, window, choice: str) -> None:
    click(qtbot, find_button(window, choice))
    click(
        qtbot, [w for w in window.question_widgets if w.question.id == "call"][0].confidence_group.button(2)
    )
    click(qtbot, [w for w in window.question_widgets if w.question.id == "quality"][0].group.button(2))
    click(qtbot, window.next_button)


def _study(tmp_path, feedback: bool):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=3, synthetic=3)
    definition = definition_from_folders(real_dir, synthetic_dir, "fb", seed=4, practice_per_class=1)
    definition.options.practice_feedback = feedback
    return create_study(definition, tmp_path / "study", load_nifti, save_nifti)


def test_practice_feedback_shows_the_truth_after_the_answer_only(qtbot, tmp_path):
    created = _study(tmp_path, feedback=True)
    window = open_window(qtbot, created, "R1")
    truths = {}
    for item in window.session.package["items"]:
        if item["practice"]:
            truths[item["item_id"]] = item["practice_answer"]
        else:
            assert "practice_answer" not in item  # analysed cases never carry their truth
    assert window.feedback_label.text() == ""  # nothing before the answer
    for expected_position in (1, 2):
        answered = window.session.current.item_id
        assert window.session.current.practice
        _answer(qtbot, window, "Real")
        said = window.feedback_label.text()
        truth = truths[answered]
        assert said == (
            "The practice case you just answered was computer-generated."
            if truth == "synthetic"
            else "The practice case you just answered was real (acquired)."
        ), (expected_position, said)
    window.grab().save("/tmp/r/reading_feedback.png")
    _answer(qtbot, window, "Real")  # the first analysed case: no feedback
    assert window.feedback_label.text() == ""


def test_no_feedback_unless_the_study_asks(qtbot, tmp_path):
    created = _study(tmp_path, feedback=False)
    window = open_window(qtbot, created, "R1")
    assert all("practice_answer" not in item for item in window.session.package["items"])
    _answer(qtbot, window, "Real")
    assert window.feedback_label.text() == ""


def test_the_window_shows_the_slice_position(qtbot, tmp_path):
    created = _study(tmp_path, feedback=False)
    window = open_window(qtbot, created, "R1")
    view = window.views[0]
    number, total = view.slice_position()
    assert total == 4 and view.position_label.text() == f"Slice {number} of {total}"
    assert view.position_label.isVisible()
    view.scroll(-10)
    assert view.position_label.text() == f"Slice 1 of {total}"
    view.scroll(1)
    assert view.position_label.text() == f"Slice 2 of {total}"
    window.grab().save("/tmp/r/reading_slice_position.png")


def test_practice_pair_feedback_names_the_generated_side():
    from app.readerstudy.session import ReadingSession

    class Store:
        def start_session(self, study_id, reader, seed, order):
            return order

        def claim_session(self, study_id, reader):
            return "claim"

        def latest_answers(self, study_id, reader):
            return {}

    package = {
        "study_id": "S1",
        "seed": 1,
        "questions": [{"id": "pick", "type": "two_afc"}],
        "options": {"practice_feedback": True},
        "items": [{"item_id": "K1", "image_ids": ["IA", "IB"], "practice": True, "practice_answer": "IB"}],
    }
    session = ReadingSession(package, ".", Store(), "R1")
    side = "B" if session.items[0].image_ids[1] == "IB" else "A"
    assert session.practice_feedback("K1") == (
        f"In the practice pair you just answered, image {side} was the computer-generated one."
    )
