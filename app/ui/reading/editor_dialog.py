"""The study editor dialog: a coordinator defines a reader study (cases, truth, questions, options)
and saves it as YAML or JSON. The dialog only edits a StudyDefinition; validation and file
format live in ``app.readerstudy.definition``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.readerstudy.definition import (
    IMAGE_SUFFIXES,
    CaseSpec,
    Question,
    StudyDefinition,
    StudyDefinitionError,
    default_questions,
    save_definition,
)

CASE_COLUMNS = ("id", "image", "truth", "modality", "practice", "paired image (2AFC)", "finding L, P, S (mm)")
FINDING_COLUMN = 6


class StudyEditorDialog(QtWidgets.QDialog):
    def __init__(
        self, definition: StudyDefinition | None = None, save_path: str | None = None, parent=None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reader study editor")
        self.save_path = save_path
        self.base_dir = definition.base_dir if definition else str(Path.cwd())
        definition = definition or StudyDefinition("New reader study", 0, default_questions(), [])
        # Kept so that what the dialog does not show (intensity percentiles and range, MRMC case
        # keys) survives a round trip through it.
        self._loaded_options = definition.options
        self._loaded_cases = {case.id: case for case in definition.cases}
        self._loaded_questions = list(definition.questions)  # their ids, wording, required flags

        self.name_edit = QtWidgets.QLineEdit(definition.name)
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(definition.seed)
        options = definition.options
        self.shuffle_check = QtWidgets.QCheckBox("Shuffle cases per reader")
        self.shuffle_check.setChecked(options.shuffle)
        self.modify_check = QtWidgets.QCheckBox("Readers may change answers")
        self.modify_check.setChecked(options.allow_answer_modification)
        self.navigate_check = QtWidgets.QCheckBox("Readers may go back to earlier cases")
        self.navigate_check.setChecked(options.allow_case_navigation)
        self.lock_check = QtWidgets.QCheckBox("Window/level locked")
        self.lock_check.setChecked(options.window_level_locked)
        self.scroll_check = QtWidgets.QCheckBox("Readers may scroll through slices")
        self.scroll_check.setChecked(options.allow_scroll)
        self.feedback_check = QtWidgets.QCheckBox("Show the truth after each practice answer")
        self.feedback_check.setChecked(options.practice_feedback)
        self.shape_check = QtWidgets.QCheckBox("Pad every case to one array shape")
        self.shape_check.setChecked(options.common_shape)
        self.time_spin = QtWidgets.QDoubleSpinBox()
        self.time_spin.setRange(0, 3600)
        self.time_spin.setSpecialValueText("no limit")
        self.time_spin.setSuffix(" s")
        self.time_spin.setValue(options.time_limit_s or 0)
        self.spacing_spin = QtWidgets.QDoubleSpinBox()
        self.spacing_spin.setRange(0, 10)
        self.spacing_spin.setDecimals(2)
        self.spacing_spin.setSpecialValueText("keep")
        self.spacing_spin.setSuffix(" mm")
        self.spacing_spin.setValue(options.common_spacing_mm or 0)
        self.normalise_check = QtWidgets.QCheckBox(
            "Normalise intensities (each case's {:g}-{:g}th percentiles)".format(
                *options.intensity_percentiles
            )
        )
        self.normalise_check.setToolTip(
            "Rescale every case to one value range and quantisation, so value ranges cannot tell cases apart"
        )
        self.normalise_check.setChecked(options.intensity_normalisation == "percentile")
        self.tolerance_spin = QtWidgets.QDoubleSpinBox()
        self.tolerance_spin.setRange(0.1, 500)
        self.tolerance_spin.setDecimals(1)
        self.tolerance_spin.setSuffix(" mm")
        self.tolerance_spin.setValue(options.localisation_tolerance_mm)

        types = {q.type: q for q in definition.questions}
        self.question_checks: dict[str, QtWidgets.QCheckBox] = {}
        questions_box = QtWidgets.QGroupBox("Questions")
        questions_layout = QtWidgets.QVBoxLayout(questions_box)
        for question_type, label in (
            ("real_synthetic", "Real or synthetic, with confidence"),
            ("two_afc", "Which of a pair is synthetic (2AFC), with confidence"),
            ("likert", "Image quality, Likert 1-5"),
            ("free_text", "Free-text comment"),
            ("localise", "Click to localise a suspicious finding"),
        ):
            check = QtWidgets.QCheckBox(label)
            check.setChecked(question_type in types)
            self.question_checks[question_type] = check
            questions_layout.addWidget(check)
        self.scale_combo = QtWidgets.QComboBox()
        self.scale_combo.addItems(["1-5", "0-100"])
        confident = types.get("real_synthetic") or types.get("two_afc")
        self.scale_combo.setCurrentText(confident.scale if confident else "1-5")
        questions_layout.addWidget(QtWidgets.QLabel("Confidence scale"))
        questions_layout.addWidget(self.scale_combo)

        self.case_table = QtWidgets.QTableWidget(0, len(CASE_COLUMNS))
        self.case_table.setHorizontalHeaderLabels(CASE_COLUMNS)
        self.case_table.horizontalHeader().setStretchLastSection(True)
        for column, width in ((0, 90), (1, 280), (2, 95), (3, 95), (4, 65)):
            self.case_table.setColumnWidth(column, width)
        for column in (5, FINDING_COLUMN):  # wide enough for their headers
            self.case_table.setColumnWidth(
                column, self.case_table.horizontalHeader().sectionSizeHint(column) + 12
            )
        self.case_table.setTextElideMode(QtCore.Qt.TextElideMode.ElideLeft)  # the file name stays readable
        for case in definition.cases:
            self._append_case(case)
        add_real = QtWidgets.QPushButton("Add real images…")
        add_real.clicked.connect(lambda: self._choose_files("real"))
        add_synthetic = QtWidgets.QPushButton("Add synthetic images…")
        add_synthetic.clicked.connect(lambda: self._choose_files("synthetic"))
        remove = QtWidgets.QPushButton("Remove selected")
        remove.clicked.connect(self.remove_selected)
        case_buttons = QtWidgets.QHBoxLayout()
        for button in (add_real, add_synthetic, remove):
            case_buttons.addWidget(button)
        case_buttons.addStretch(1)

        form = QtWidgets.QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Randomisation seed", self.seed_spin)
        form.addRow("Time limit per case", self.time_spin)
        form.addRow("Common voxel spacing", self.spacing_spin)
        form.addRow("Localisation hit radius", self.tolerance_spin)
        for check in (
            self.normalise_check,
            self.shuffle_check,
            self.modify_check,
            self.navigate_check,
            self.lock_check,
            self.scroll_check,
            self.feedback_check,
            self.shape_check,
        ):
            form.addRow(check)
        top = QtWidgets.QHBoxLayout()
        top.addLayout(form, 1)
        top.addWidget(questions_box, 1)

        self.message_label = QtWidgets.QLabel()
        self.message_label.setStyleSheet("color: #ff8080;")
        self.message_label.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Save | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(QtWidgets.QLabel("Cases (the truth stays in this file; readers never see it)"))
        layout.addWidget(self.case_table, 1)
        layout.addLayout(case_buttons)
        layout.addWidget(self.message_label)
        layout.addWidget(buttons)
        self.resize(1000, 700)

    # ----- cases -----------------------------------------------------------------------------------
    def _append_case(self, case: CaseSpec) -> None:
        row = self.case_table.rowCount()
        self.case_table.insertRow(row)
        self.case_table.setItem(row, 0, QtWidgets.QTableWidgetItem(case.id))
        self.case_table.setItem(row, 1, QtWidgets.QTableWidgetItem(case.path))
        truth = QtWidgets.QComboBox()
        truth.addItems(["real", "synthetic"])
        truth.setCurrentText(case.truth)
        self.case_table.setCellWidget(row, 2, truth)
        self.case_table.setItem(row, 3, QtWidgets.QTableWidgetItem(case.modality))
        practice = QtWidgets.QTableWidgetItem()
        practice.setFlags(QtCore.Qt.ItemFlag.ItemIsUserCheckable | QtCore.Qt.ItemFlag.ItemIsEnabled)
        practice.setCheckState(
            QtCore.Qt.CheckState.Checked if case.practice else QtCore.Qt.CheckState.Unchecked
        )
        self.case_table.setItem(row, 4, practice)
        self.case_table.setItem(row, 5, QtWidgets.QTableWidgetItem(case.paired_path))
        finding = "" if case.finding_lps_mm is None else ", ".join(f"{x:g}" for x in case.finding_lps_mm)
        self.case_table.setItem(row, FINDING_COLUMN, QtWidgets.QTableWidgetItem(finding))

    def add_images(self, paths: list[str | Path], truth: str) -> None:
        """Append one case per image file, ids numbered after the existing ones."""
        existing = {self.case_table.item(r, 0).text() for r in range(self.case_table.rowCount())}
        number = 1
        for path in paths:
            while f"{truth}-{number:03d}" in existing:
                number += 1
            case_id = f"{truth}-{number:03d}"
            existing.add(case_id)
            self._append_case(CaseSpec(case_id, str(path), truth))

    def _choose_files(self, truth: str) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, f"Add {truth} images", "", f"Images ({patterns})"
        )
        self.add_images(paths, truth)

    def remove_selected(self) -> None:
        for row in sorted({index.row() for index in self.case_table.selectedIndexes()}, reverse=True):
            self.case_table.removeRow(row)

    # ----- the definition --------------------------------------------------------------------------
    def _cell(self, row: int, column: int) -> str:
        item = self.case_table.item(row, column)
        return item.text().strip() if item is not None else ""

    def definition(self) -> StudyDefinition:
        scale = self.scale_combo.currentText()
        ids = {
            "real_synthetic": "call",
            "two_afc": "pick",
            "likert": "quality",
            "free_text": "comment",
            "localise": "finding",
        }
        questions = []
        for t, check in self.question_checks.items():
            if not check.isChecked():
                continue
            loaded = [q for q in self._loaded_questions if q.type == t]
            if not loaded:
                loaded = [Question(ids[t], t, required=t not in ("free_text", "localise"))]
            confidence = t in ("real_synthetic", "two_afc")
            questions += [dataclasses.replace(q, scale=scale) if confidence else q for q in loaded]
        cases = []
        for row in range(self.case_table.rowCount()):
            case_id = self._cell(row, 0)
            loaded = self._loaded_cases.get(case_id)
            cases.append(
                CaseSpec(
                    id=case_id,
                    path=self._cell(row, 1),
                    truth=self.case_table.cellWidget(row, 2).currentText(),
                    modality=self._cell(row, 3) or "default",
                    mrmc_case=(loaded.mrmc_case if loaded and loaded.mrmc_case else case_id),
                    practice=self.case_table.item(row, 4).checkState() == QtCore.Qt.CheckState.Checked,
                    paired_path=self._cell(row, 5),
                    finding_lps_mm=_parse_finding(self._cell(row, FINDING_COLUMN)),
                )
            )
        options = dataclasses.replace(
            self._loaded_options,
            shuffle=self.shuffle_check.isChecked(),
            allow_answer_modification=self.modify_check.isChecked(),
            allow_case_navigation=self.navigate_check.isChecked(),
            window_level_locked=self.lock_check.isChecked(),
            allow_scroll=self.scroll_check.isChecked(),
            practice_feedback=self.feedback_check.isChecked(),
            common_shape=self.shape_check.isChecked(),
            time_limit_s=self.time_spin.value() or None,
            common_spacing_mm=self.spacing_spin.value() or None,
            intensity_normalisation="percentile" if self.normalise_check.isChecked() else "none",
            localisation_tolerance_mm=self.tolerance_spin.value(),
        )
        return StudyDefinition(
            self.name_edit.text().strip(), self.seed_spin.value(), questions, cases, options, self.base_dir
        )

    def save(self, path: str | Path | None = None) -> bool:
        """Validate and write the definition; a problem is shown in the dialog, nothing written."""
        definition = self.definition()
        try:
            definition.validate()
        except StudyDefinitionError as error:
            self.message_label.setText(str(error))
            return False
        target = path or self.save_path
        if not target:
            target, _ = QtWidgets.QFileDialog.getSaveFileName(
                self, "Save study definition", "study.yaml", "YAML (*.yaml);;JSON (*.json)"
            )
            if not target:
                return False
        save_definition(definition, target)
        self.save_path = str(target)
        self.message_label.setText("")
        self.accept()
        return True


def _parse_finding(text: str) -> list | None:
    """'L, P, S' (commas or spaces) -> three floats; None when empty. Anything else is passed on
    as written, for the definition's validation to name."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        return parts
