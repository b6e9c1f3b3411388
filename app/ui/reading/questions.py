"""Answer widgets for the reading session, one per study question, each with value()/set_value().

``value()`` returns None while unanswered, so the session can insist on required answers."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.readerstudy.definition import Question


class QuestionWidget(QtWidgets.QGroupBox):
    def __init__(self, question: Question, parent=None) -> None:
        # The wording goes in a wrapped label, not the group-box title: a title does not wrap
        # and the side panel cut longer questions off mid-word.
        super().__init__(parent)
        self.question = question
        self.setLayout(QtWidgets.QVBoxLayout())
        self.wording_label = QtWidgets.QLabel(question.default_text())
        self.wording_label.setWordWrap(True)
        self.wording_label.setStyleSheet("font-weight: bold;")
        self.layout().addWidget(self.wording_label)

    def value(self) -> object | None:
        raise NotImplementedError

    def set_value(self, value: object) -> None:
        raise NotImplementedError


def _radio_row(labels: list[str]) -> tuple[QtWidgets.QWidget, QtWidgets.QButtonGroup]:
    row = QtWidgets.QWidget()
    layout = QtWidgets.QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    group = QtWidgets.QButtonGroup(row)
    for index, label in enumerate(labels):
        button = QtWidgets.QRadioButton(label)
        group.addButton(button, index)
        layout.addWidget(button)
    return row, group


class ChoiceWithConfidence(QuestionWidget):
    """Real/synthetic call (or which image of a pair) plus a confidence on 1-5 or 0-100."""

    def __init__(self, question: Question, choices: list[tuple[str, object]], parent=None) -> None:
        super().__init__(question, parent)
        self.choices = choices
        row, self.choice_group = _radio_row([label for label, _ in choices])
        self.layout().addWidget(row)
        low, high = question.scale.split("-")
        confidence_label = QtWidgets.QLabel(f"Confidence ({low} = guessing, {high} = certain)")
        confidence_label.setWordWrap(True)
        self.layout().addWidget(confidence_label)
        if question.scale == "1-5":
            confidence_row, self.confidence_group = _radio_row([str(i) for i in range(1, 6)])
            self.layout().addWidget(confidence_row)
            self.confidence_spin = None
        else:
            self.confidence_group = None
            self.confidence_spin = QtWidgets.QSpinBox()
            self.confidence_spin.setRange(-1, 100)
            self.confidence_spin.setSpecialValueText("–")
            self.confidence_spin.setValue(-1)
            self.layout().addWidget(self.confidence_spin)

    def value(self) -> object | None:
        choice = self.choice_group.checkedId()
        if choice < 0:
            return None
        if self.confidence_group is not None:
            confidence = (
                self.confidence_group.checkedId() + 1 if self.confidence_group.checkedId() >= 0 else None
            )
        else:
            confidence = self.confidence_spin.value() if self.confidence_spin.value() >= 0 else None
        if confidence is None:
            return None
        return {"choice": self.choices[choice][1], "confidence": confidence}

    def set_value(self, value: object) -> None:
        for index, (_, stored) in enumerate(self.choices):
            if isinstance(value, dict) and value.get("choice") == stored:
                self.choice_group.button(index).setChecked(True)
        confidence = value.get("confidence") if isinstance(value, dict) else None
        if confidence is None:
            return
        if self.confidence_group is not None:
            self.confidence_group.button(int(confidence) - 1).setChecked(True)
        else:
            self.confidence_spin.setValue(int(confidence))


class LikertQuestion(QuestionWidget):
    def __init__(self, question: Question, parent=None) -> None:
        super().__init__(question, parent)
        row, self.group = _radio_row([str(i) for i in range(1, 6)])
        self.layout().addWidget(row)

    def value(self) -> object | None:
        return self.group.checkedId() + 1 if self.group.checkedId() >= 0 else None

    def set_value(self, value: object) -> None:
        self.group.button(int(value) - 1).setChecked(True)


class FreeTextQuestion(QuestionWidget):
    def __init__(self, question: Question, parent=None) -> None:
        super().__init__(question, parent)
        self.editor = QtWidgets.QPlainTextEdit()
        self.editor.setFixedHeight(70)
        self.layout().addWidget(self.editor)

    def value(self) -> object | None:
        text = self.editor.toPlainText().strip()
        return text or None

    def set_value(self, value: object) -> None:
        self.editor.setPlainText(str(value))


class LocaliseQuestion(QuestionWidget):
    """Filled by clicking on the image; the point is kept in LPS millimetres."""

    changed = QtCore.Signal(object)  # the new value (None when cleared), for the mark on the image

    def __init__(self, question: Question, parent=None) -> None:
        super().__init__(question, parent)
        self.point: dict | None = None
        self.status = QtWidgets.QLabel("No location marked")
        clear = QtWidgets.QPushButton("Clear")
        clear.clicked.connect(lambda: self.set_value(None))
        self.layout().addWidget(self.status)
        self.layout().addWidget(clear)

    def value(self) -> object | None:
        return self.point

    def set_value(self, value: object) -> None:
        self.point = value if isinstance(value, dict) else None
        self.status.setText("Location marked" if self.point else "No location marked")
        self.changed.emit(self.point)


def question_widget(question: Question, image_ids: list[str]) -> QuestionWidget:
    if question.type == "real_synthetic":
        return ChoiceWithConfidence(question, [("Real", "real"), ("Generated", "synthetic")])
    if question.type == "two_afc":
        return ChoiceWithConfidence(question, [("Image A", image_ids[0]), ("Image B", image_ids[1])])
    if question.type == "likert":
        return LikertQuestion(question)
    if question.type == "free_text":
        return FreeTextQuestion(question)
    return LocaliseQuestion(question)
