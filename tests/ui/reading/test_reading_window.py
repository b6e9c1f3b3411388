"""The reading-session window, used as a reader uses it: clicks on answers, Next, Pause/Resume.

The blinding walk visits every visible widget's text, tooltip and the window title at every
step of a scripted session and asserts that no file name, folder, path, plugin name, series
description or the word "synthetic" shows anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.definition import CaseSpec, Question, definition_from_folders
from app.readerstudy.package import create_study, load_package
from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore
from app.ui.reading.session_window import ReadingWindow
from tests.readerstudy.conftest import PLUGIN_NAME, write_cases


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def visible_texts(window: QtWidgets.QWidget) -> list[str]:
    """Everything a reader could read: titles, texts, tooltips, status tips of visible widgets."""
    texts = [window.windowTitle(), QtWidgets.QApplication.applicationDisplayName()]
    for widget in [window, *window.findChildren(QtWidgets.QWidget)]:
        if not widget.isVisible():
            continue
        texts += [
            widget.toolTip(),
            widget.statusTip(),
            widget.whatsThis(),
            widget.accessibleName(),
            widget.windowTitle(),
        ]
        for getter in ("text", "title", "toPlainText", "placeholderText"):
            if hasattr(widget, getter):
                value = getattr(widget, getter)()
                if isinstance(value, str):
                    texts.append(value)
    return [t for t in texts if t]


def assert_blinded(window: QtWidgets.QWidget, forbidden: list[str]) -> None:
    for view in getattr(window, "views", []):
        # On the image itself nothing but orientation letters (no name, window or position read-out).
        shown = [label.text() for label in view.findChildren(QtWidgets.QLabel) if label.isVisible()]
        assert set(shown) <= {"A", "P", "R", "L", "S", "I"}, shown
    for text in visible_texts(window):
        lowered = text.lower()
        for token in forbidden:
            assert token.lower() not in lowered, f"{token!r} visible in {text!r}"


def click(qtbot, button: QtWidgets.QAbstractButton) -> None:
    """Click where a person would: on a radio button's indicator (its centre may be empty space)."""
    if isinstance(button, QtWidgets.QRadioButton):
        qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, button.height() // 2))
    else:
        qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)


def find_button(window: QtWidgets.QWidget, text: str) -> QtWidgets.QAbstractButton:
    buttons = [
        b for b in window.findChildren(QtWidgets.QAbstractButton) if b.text() == text and b.isVisible()
    ]
    assert buttons, f"no visible button {text!r}"
    return buttons[0]


@pytest.fixture
def study(tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=3, synthetic=3)
    definition = definition_from_folders(real_dir, synthetic_dir, "toygan VTT", seed=9, practice_per_class=1)
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    forbidden = [
        "synthetic",
        PLUGIN_NAME,
        "toygan",
        "sub-",
        "T1w",
        "SeriesDescription",
        "real_scans",
        str(tmp_path),
    ]
    forbidden += [Path(c.path).name for c in definition.cases]
    return created, definition, forbidden


def open_window(qtbot, created, reader: str, clock=None) -> ReadingWindow:
    package, reading_dir = load_package(created.reading_dir)
    session = ReadingSession(package, reading_dir, StudyStore(created.database_url, create=False), reader)
    window = ReadingWindow(session, load_nifti, clock=clock or FakeClock())
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_scripted_session_is_blinded_and_records_every_answer(qtbot, study):
    created, definition, forbidden = study
    clock = FakeClock()
    window = open_window(qtbot, created, "R1", clock)
    assert window.progress_label.text() == "Practice case 1 of 2"
    steps = 0
    while window.session.current is not None:
        assert_blinded(window, forbidden)
        assert len(window.views) == 1 and window.views[0].isVisible()
        # Next without answers is refused with a message; nothing is recorded.
        click(qtbot, window.next_button)
        assert "please answer" in window.message_label.text()
        click(qtbot, find_button(window, "Generated" if steps % 2 else "Real"))
        call = [w for w in window.question_widgets if w.question.id == "call"][0]
        click(qtbot, call.confidence_group.button(3))  # confidence 4
        quality = [w for w in window.question_widgets if w.question.id == "quality"][0]
        click(qtbot, quality.group.button(2))
        assert_blinded(window, forbidden)
        if steps == 2:
            window.views[0].grab().save("/tmp/g_reading_panel.png")
            window.grab().save("/tmp/g_reading_window.png")
            click(qtbot, window.pause_button)
            assert window.pages.currentWidget() is window.paused_page
            assert_blinded(window, forbidden)
            clock.now += 100.0  # paused time is not reading time
            click(qtbot, window.resume_button)
        clock.now += 7.0
        click(qtbot, window.next_button)
        steps += 1
    assert steps == len(definition.cases)
    assert window.pages.currentWidget() is window.finished_page
    assert_blinded(window, forbidden)
    store = window.session.store
    stored = store.latest_answers(created.study_id, "R1")
    assert len(stored) == len(definition.cases)
    assert all(values["quality"] == 3 and values["call"]["confidence"] == 4 for values in stored.values())
    times = store.time_spent(created.study_id, "R1")
    assert sorted(times.values()) == [pytest.approx(7.0)] * len(definition.cases)


def test_reopening_resumes_at_first_unanswered_case(qtbot, study):
    created, _, _ = study
    window = open_window(qtbot, created, "R2")
    for _ in range(3):
        click(qtbot, find_button(window, "Real"))
        click(
            qtbot,
            [w for w in window.question_widgets if w.question.id == "call"][0].confidence_group.button(1),
        )
        click(qtbot, [w for w in window.question_widgets if w.question.id == "quality"][0].group.button(0))
        qtbot.keyClick(window, QtCore.Qt.Key.Key_Return, QtCore.Qt.KeyboardModifier.ControlModifier)  # = Next
    expected = window.session.current.item_id
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)  # Escape pauses; the pause page offers to stop
    assert window.pages.currentWidget() is window.paused_page
    click(qtbot, window.stop_button)
    assert not window.isVisible()
    reopened = open_window(qtbot, created, "R2")
    assert reopened.session.current.item_id == expected
    assert reopened.progress_label.text() == "Case 2 of 4"


def test_locked_window_level_and_scroll(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=1, synthetic=1)
    definition = definition_from_folders(real_dir, synthetic_dir, "locked", seed=1)
    definition.options.window_level_locked = True
    definition.options.allow_scroll = False
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    window = open_window(qtbot, created, "R1")
    view = window.views[0]
    window_before, cursor_before = view.content.fixed_window, view.state.cursor_lps_mm
    view.drag_window(40, 40)
    view.scroll(1)
    assert view.content.fixed_window == window_before
    assert (view.state.cursor_lps_mm == cursor_before).all()


def test_paired_two_alternative_forced_choice(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=2, synthetic=2)
    reals, synthetics = sorted(real_dir.glob("*.nii.gz")), sorted(synthetic_dir.glob("*.nii.gz"))
    definition = definition_from_folders(real_dir, synthetic_dir, "2afc", seed=3)
    definition.questions = [Question("pick", "two_afc", scale="0-100")]
    definition.cases = [
        CaseSpec(f"pair{i}", str(r), "real", paired_path=str(s))
        for i, (r, s) in enumerate(zip(reals, synthetics, strict=True))
    ]
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    truth = json.loads(created.truth_path.read_text())["items"]
    window = open_window(qtbot, created, "R1")
    picks = []
    while window.session.current is not None:
        assert len(window.views) == 2 and window.views[1].isVisible()
        assert_blinded(window, ["synthetic", PLUGIN_NAME, "sub-"])
        click(qtbot, find_button(window, "Image A"))
        window.question_widgets[0].confidence_spin.setValue(80)
        picks.append((window.session.current.item_id, window.session.current.image_ids[0]))
        click(qtbot, window.next_button)
    from app.readerstudy.analysis import analyze

    result = analyze(created.database_url)
    correct = sum(truth[item]["synthetic_image_id"] == image for item, image in picks)
    pooled = result["modalities"]["default"]["two_afc"]["pooled"]
    assert pooled["proportion_correct"]["successes"] == correct
    assert pooled["proportion_correct"]["total"] == 2


def test_time_limit_hides_the_case_and_localise_records_a_click(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=1, synthetic=1)
    definition = definition_from_folders(real_dir, synthetic_dir, "timed", seed=2)
    definition.options.time_limit_s = 20
    definition.questions.append(Question("finding", "localise", required=False))
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    clock = FakeClock()
    window = open_window(qtbot, created, "R1", clock)
    view = window.views[0]
    qtbot.mouseClick(view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=view.viewport().rect().center())
    finding = [w for w in window.question_widgets if w.question.id == "finding"][0]
    assert finding.value() is not None and finding.value()["image_id"] == window.session.current.image_ids[0]
    clicked_lps = finding.value()["lps_mm"]
    # On the slice shown (axial: same S as the slice), inside the image.
    assert clicked_lps[2] == pytest.approx(view.state.cursor_lps_mm[2])
    low, high = view.volume.bounds_lps_mm()
    assert all(min(a, b) - 1 <= x <= max(a, b) + 1 for a, b, x in zip(low, high, clicked_lps, strict=True))
    assert window.timer_label.text() == "20 s left"
    clock.now += 25
    window._on_tick()
    assert window.image_stack.currentWidget() is window.hidden_label
    click(qtbot, find_button(window, "Real"))
    click(
        qtbot, [w for w in window.question_widgets if w.question.id == "call"][0].confidence_group.button(0)
    )
    click(qtbot, [w for w in window.question_widgets if w.question.id == "quality"][0].group.button(0))
    item = window.session.current.item_id
    click(qtbot, window.next_button)
    stored = window.session.store.latest_answers(created.study_id, "R1")[item]
    assert stored["finding"]["lps_mm"] == pytest.approx(clicked_lps)
    assert window.image_stack.currentWidget() is window.image_area  # the next case is shown again


def test_previous_shows_stored_answers_and_a_change_is_audited(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=2, synthetic=1)
    definition = definition_from_folders(real_dir, synthetic_dir, "nav", seed=4)
    definition.options.allow_case_navigation = True
    definition.options.allow_answer_modification = True
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    clock = FakeClock()
    window = open_window(qtbot, created, "R1", clock)
    assert window.previous_button.isVisible() and not window.previous_button.isEnabled()

    def answer(choice: str) -> None:
        click(qtbot, find_button(window, choice))
        click(
            qtbot,
            [w for w in window.question_widgets if w.question.id == "call"][0].confidence_group.button(2),
        )
        click(qtbot, [w for w in window.question_widgets if w.question.id == "quality"][0].group.button(3))

    first = window.session.current.item_id
    answer("Real")
    clock.now += 5
    click(qtbot, window.next_button)
    answer("Real")
    clock.now += 5
    click(qtbot, window.next_button)
    clock.now += 2
    click(qtbot, window.previous_button)
    clock.now += 1
    click(qtbot, window.previous_button)
    assert window.session.current.item_id == first
    call = [w for w in window.question_widgets if w.question.id == "call"][0]
    assert call.value() == {"choice": "real", "confidence": 3}  # the stored answer is shown
    click(qtbot, find_button(window, "Generated"))
    clock.now += 4
    click(qtbot, window.next_button)
    assert window.session.position == 1  # on to the next item, not past the reviewed ones
    store = window.session.store
    assert store.latest_answers(created.study_id, "R1")[first]["call"]["choice"] == "synthetic"
    assert store.time_spent(created.study_id, "R1")[first] == pytest.approx(5 + 4)
    changes = [r for r in store.audit_trail(created.study_id) if r["action"] == "change-answer"]
    assert len(changes) == 1 and changes[0]["who"] == "R1" and changes[0]["item_id"] == first


def test_reading_panels_hide_overlay_text_through_the_public_option(qtbot, study):
    """The blinding uses SliceView's public switches, so a renamed private label cannot leak
    the title or the slice/position/window read-out onto a case."""
    import numpy as np

    from app.core.planes import Plane
    from app.core.viewer_state import ViewerState
    from app.core.volume import Geometry, Volume
    from app.ui.slice_view import CrosshairLine, PanelContent, SliceView

    created, _, forbidden = study
    window = open_window(qtbot, created, "R1")
    view = window.views[0]
    window.grab()  # paint once, as a reader would see it
    assert not view.overlay_text_visible
    assert view.drawn_position_text == ""
    assert_blinded(window, forbidden)
    lines = [i for i in view.view_box.childGroup.childItems() if isinstance(i, CrosshairLine)]
    assert lines and not any(line.isVisible() for line in lines)
    view.grab().save("/tmp/g_reading_panel_blinded.png")

    # The same switch on a viewer panel: the read-out is drawn, then gone, then back.
    volume = Volume(
        np.arange(60, dtype=np.float32).reshape(3, 4, 5), Geometry.identity((1, 1, 2)), name="vol-x"
    )
    panel = SliceView(ViewerState(volume), PanelContent(volume, title="patient-title"), Plane.AXIAL)
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    qtbot.waitExposed(panel)
    panel.grab()
    assert panel.overlay_text_visible and "mm" in panel.drawn_position_text
    shown = [label.text() for label in panel.findChildren(QtWidgets.QLabel) if label.isVisible()]
    assert any("patient-title" in text for text in shown)
    panel.set_overlay_text_visible(False)
    panel.grab()
    assert panel.drawn_position_text == ""
    shown = [label.text() for label in panel.findChildren(QtWidgets.QLabel) if label.isVisible()]
    assert set(shown) <= {"A", "P", "R", "L", "S", "I"}, shown
    panel.set_overlay_text_visible(True)
    panel.grab()
    assert "mm" in panel.drawn_position_text


def test_localisation_click_is_marked_on_its_slice_and_cleared(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=1, synthetic=1)
    definition = definition_from_folders(real_dir, synthetic_dir, "marks", seed=5)
    definition.questions.append(Question("finding", "localise", required=False))
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    window = open_window(qtbot, created, "R1")
    view = window.views[0]
    assert not view.mark_visible()
    target = view.viewport().rect().center() + QtCore.QPoint(30, -20)
    qtbot.mouseClick(view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=target)
    finding = [w for w in window.question_widgets if w.question.id == "finding"][0]
    clicked = finding.value()["lps_mm"]
    assert view.mark_visible()
    x, y = view.mark_item.getData()
    point = view.lps_to_scene(clicked)
    assert (x[0], y[0]) == pytest.approx((point.x(), point.y()))
    view.grab().save("/tmp/g_reading_mark.png")
    view.scroll(1)  # another slice: the mark belongs to the clicked one
    assert view.state.cursor_lps_mm[2] != pytest.approx(clicked[2]) and not view.mark_visible()
    view.scroll(-1)
    assert view.mark_visible()
    clear = find_button(window, "Clear")
    qtbot.wait(20)  # let the side panel lay out, as it has long before a person reaches for Clear
    window.grab().save("/tmp/g_reading_marks_window.png")
    click(qtbot, clear)
    assert finding.value() is None and not view.mark_visible()


@pytest.mark.parametrize("scale", ["1-5", "0-100"])
def test_question_wording_is_shown_whole_and_confidence_says_its_ends(qtbot, tmp_path, scale):
    """The side panel is 340 px wide: a question's wording in a group-box title was cut off
    ("Image quality (1 = non-diagnostic, 5 = exce"), and the confidence scale named no ends."""
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=1, synthetic=1)
    definition = definition_from_folders(real_dir, synthetic_dir, "wording", seed=2)
    definition.questions[0].scale = scale
    definition.questions.append(Question("finding", "localise", required=False))
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    window = open_window(qtbot, created, "R1")
    for widget in window.question_widgets:
        wording = widget.question.default_text()
        title_room = widget.width() - 24
        fits_title = widget.fontMetrics().horizontalAdvance(widget.title()) <= title_room
        assert fits_title, f"group-box title cut off: {widget.title()!r}"
        labels = [
            label
            for label in widget.findChildren(QtWidgets.QLabel)
            if label.isVisible() and label.text() == wording
        ]
        assert labels, f"{wording!r} is not shown in full"
        label = labels[0]
        fits_line = label.fontMetrics().horizontalAdvance(wording) <= label.width()
        assert fits_line or (label.wordWrap() and label.height() >= label.heightForWidth(label.width()))
    call = [w for w in window.question_widgets if w.question.id == "call"][0]
    texts = [label.text() for label in call.findChildren(QtWidgets.QLabel) if label.isVisible()]
    low, high = ("1", "5") if scale == "1-5" else ("0", "100")
    assert f"Confidence ({low} = guessing, {high} = certain)" in texts
