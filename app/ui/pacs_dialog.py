"""File > Query/Retrieve and File > Send to PACS.

Query/Retrieve: a node (configured name, AE@HOST:PORT or a DICOMweb URL), the search fields of
``pacs find``, a results tree (patient / study / series with modality, date, description and
instance counts), and Retrieve with progress and Cancel into the local study cache; a complete
retrieval opens in the study browser. Every network call runs off the UI thread; every failure
is one line in the dialog. The networking itself is ``app.pacs`` behind ``window.services.pacs``.
"""

from __future__ import annotations

import threading

from PySide6 import QtCore, QtGui, QtWidgets

from app.pacs.nodes import NodeError, resolve_node
from app.pacs.results import Query


class _Job(QtCore.QRunnable):
    class Signals(QtCore.QObject):
        done = QtCore.Signal(object)
        failed = QtCore.Signal(str)
        progress = QtCore.Signal(int, int)

    def __init__(self, work) -> None:
        super().__init__()
        self.work = work
        self.signals = self.Signals()

    def run(self) -> None:
        try:
            value = self.work(self.signals)
        except Exception as error:  # noqa: BLE001 - shown as one line in the dialog
            self.signals.failed.emit(str(error).splitlines()[0] if str(error) else type(error).__name__)
            return
        self.signals.done.emit(value)


class _NodeChoice(QtWidgets.QComboBox):
    def __init__(self, config) -> None:
        super().__init__()
        self.setEditable(True)
        self.addItems(list(config.nodes))
        self.lineEdit().setPlaceholderText("configured name, AE@HOST:PORT or https://.../dicom-web")
        self.setMinimumContentsLength(28)


class QueryRetrieveDialog(QtWidgets.QDialog):
    def __init__(self, window, services, parent=None) -> None:
        super().__init__(parent)
        self.window_, self.services = window, services
        self.config = services.load_config()
        self.setWindowTitle("Query / Retrieve")
        self._jobs: list[_Job] = []
        self._cancel = threading.Event()
        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        self.node = _NodeChoice(self.config)
        form.addRow("Node", self.node)
        self.fields = {}
        for key, label, hint in (
            ("patient_id", "Patient ID", ""), ("patient_name", "Patient name", "wildcards * and ?"),
            ("study_date", "Study date", "YYYYMMDD or YYYYMMDD-YYYYMMDD"), ("modality", "Modality", "CT, MR, ..."),
            ("accession", "Accession", ""),
        ):  # fmt: skip
            edit = QtWidgets.QLineEdit()
            edit.setPlaceholderText(hint)
            edit.returnPressed.connect(self.search)
            form.addRow(label, edit)
            self.fields[key] = edit
        layout.addLayout(form)
        buttons = QtWidgets.QHBoxLayout()
        self.search_button = QtWidgets.QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.retrieve_button = QtWidgets.QPushButton("Retrieve and open")
        self.retrieve_button.clicked.connect(self.retrieve)
        self.retrieve_button.setEnabled(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel.set)
        self.cancel_button.setEnabled(False)
        for button in (self.search_button, self.retrieve_button, self.cancel_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(["patient / study / series", "modality", "date", "description", "instances"])
        self.tree.itemSelectionChanged.connect(lambda: self.retrieve_button.setEnabled(bool(self.tree.selectedItems())))
        self.tree.itemDoubleClicked.connect(lambda *_: self.retrieve())
        layout.addWidget(self.tree)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.resize(820, 560)

    def _node(self):
        try:
            return resolve_node(self.node.currentText().strip(), self.config)
        except NodeError as error:
            self.status.setText(str(error))
            return None

    def _start(self, work, done, progress=None) -> None:
        job = _Job(work)
        job.signals.done.connect(done)
        job.signals.failed.connect(self._failed)
        if progress is not None:
            job.signals.progress.connect(progress)
        self._jobs.append(job)
        QtCore.QThreadPool.globalInstance().start(job)

    def _busy(self, busy: bool, text: str = "") -> None:
        self.search_button.setEnabled(not busy)
        self.retrieve_button.setEnabled(not busy and bool(self.tree.selectedItems()))
        self.cancel_button.setEnabled(busy)
        self.status.setText(text)

    def _failed(self, message: str) -> None:
        self._busy(False, message)
        self.progress.setVisible(False)

    def search(self) -> None:
        node = self._node()
        if node is None:
            return
        query = Query("study", **{k: e.text().strip() for k, e in self.fields.items()})
        services, config = self.services, self.config

        def work(_signals):
            studies = services.find(node, config, query)
            return [(study, services.find(node, config, Query("series", study_uid=study["study_uid"]))) for study in studies]

        self._busy(True, f"Searching {node.name}...")
        self._start(work, self._show_results)

    def _show_results(self, results) -> None:
        self.tree.clear()
        patients: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for study, series in results:
            who = f"{study.get('patient_name') or '?'} ({study.get('patient_id') or '?'})"
            if who not in patients:
                patients[who] = QtWidgets.QTreeWidgetItem(self.tree, [who])
                patients[who].setFlags(patients[who].flags() & ~QtCore.Qt.ItemFlag.ItemIsSelectable)
            item = QtWidgets.QTreeWidgetItem(patients[who], [
                f"study {study.get('accession') or ''}".strip(), ",".join(study.get("modalities") or []),
                study.get("study_date") or "", study.get("study_description") or "", str(study.get("instance_count") or ""),
            ])  # fmt: skip
            item.setData(0, QtCore.Qt.ItemDataRole.UserRole, (study["study_uid"], None))
            for s in sorted(series, key=lambda s: (s.get("series_number") is None, s.get("series_number") or 0)):
                child = QtWidgets.QTreeWidgetItem(item, [
                    f"series {s.get('series_number') if s.get('series_number') is not None else ''}".strip(),
                    s.get("modality") or "", "", s.get("series_description") or "", str(s.get("instance_count") or ""),
                ])  # fmt: skip
                child.setData(0, QtCore.Qt.ItemDataRole.UserRole, (study["study_uid"], s["series_uid"]))
        self.tree.expandAll()
        for column in range(5):
            self.tree.resizeColumnToContents(column)
        self._busy(False, f"{len(results)} stud{'y' if len(results) == 1 else 'ies'} found")

    def retrieve(self) -> None:
        items = self.tree.selectedItems()
        node = self._node()
        if not items or node is None:
            return
        target = items[0].data(0, QtCore.Qt.ItemDataRole.UserRole)
        if not target:
            return
        study_uid, series_uid = target
        self._cancel.clear()
        services, config, cancel = self.services, self.config, self._cancel

        def work(signals):
            def progress(result):
                signals.progress.emit(result.done, result.expected or 0)

            folder, _result = services.retrieve(node, config, study_uid, series_uid, progress, cancel.is_set)
            return folder

        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self._busy(True, f"Retrieving from {node.name}...")
        self._start(work, self._retrieved, self._on_progress)

    def _on_progress(self, done: int, expected: int) -> None:
        if expected:
            self.progress.setRange(0, expected)
            self.progress.setValue(done)
        self.status.setText(f"Retrieving: {done}{f' of {expected}' if expected else ''} instance(s)")

    def _retrieved(self, folder) -> None:
        self.progress.setVisible(False)
        self._busy(False, f"Retrieved into the study cache: {folder}")
        self.window_.open_path(folder)


class SendDialog(QtWidgets.QDialog):
    """Send a derived series folder, an SR or a SEG file to a node (C-STORE or STOW-RS)."""

    def __init__(self, window, services, path: str = "", parent=None) -> None:
        super().__init__(parent)
        self.window_, self.services = window, services
        self.config = services.load_config()
        self.setWindowTitle("Send to PACS")
        self._jobs: list[_Job] = []
        layout = QtWidgets.QFormLayout(self)
        self.node = _NodeChoice(self.config)
        layout.addRow("Node", self.node)
        row = QtWidgets.QHBoxLayout()
        self.path = QtWidgets.QLineEdit(path)
        self.path.setPlaceholderText("a series folder, or an SR / SEG file")
        folder_button, file_button = QtWidgets.QPushButton("Folder..."), QtWidgets.QPushButton("File...")
        folder_button.clicked.connect(lambda: self._choose(QtWidgets.QFileDialog.getExistingDirectory(self, "Series folder")))
        file_button.clicked.connect(lambda: self._choose(QtWidgets.QFileDialog.getOpenFileName(self, "SR or SEG file")[0]))
        for widget in (self.path, folder_button, file_button):
            row.addWidget(widget)
        layout.addRow("Send", row)
        self.send_button = QtWidgets.QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        layout.addRow(self.send_button)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout.addRow(self.status)
        self.resize(640, 180)

    def _choose(self, path: str) -> None:
        if path:
            self.path.setText(path)

    def send(self) -> None:
        try:
            node = resolve_node(self.node.currentText().strip(), self.config)
        except NodeError as error:
            self.status.setText(str(error))
            return
        path = self.path.text().strip()
        if not path:
            self.status.setText("Choose a series folder, an SR or a SEG file to send.")
            return
        services, config = self.services, self.config
        job = _Job(lambda _signals: services.send(node, config, path))
        job.signals.done.connect(lambda r: self._sent(node, r))
        job.signals.failed.connect(lambda message: (self.status.setText(message), self.send_button.setEnabled(True)))
        self._jobs.append(job)
        self.send_button.setEnabled(False)
        self.status.setText(f"Sending to {node.name}...")
        QtCore.QThreadPool.globalInstance().start(job)

    def _sent(self, node, result) -> None:
        self.send_button.setEnabled(True)
        detail = f"; not sent: {result.skipped[0]}" if result.skipped else ""
        self.status.setText(f"Sent {result.done} of {result.expected} file(s) to {node.name}{detail}")


def install_pacs_menu(window) -> list[QtGui.QAction]:
    """File > Query/Retrieve... and File > Send to PACS..."""
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.menu() is not None and a.menu().title().replace("&", "") == "File")
    window.pacs_dialogs = []

    def open_dialog(kind) -> None:
        services = window.services.pacs
        if services is None:
            QtWidgets.QMessageBox.warning(window, "PACS", "This window was started without DICOM networking.")
            return
        try:
            dialog = kind(window, services, parent=window)
        except Exception as error:  # noqa: BLE001 - a bad configuration file: one line
            QtWidgets.QMessageBox.warning(window, "PACS configuration", str(error).splitlines()[0])
            return
        dialog.show()
        window.pacs_dialogs.append(dialog)

    actions = []
    anchor = file_menu.actions()[3] if len(file_menu.actions()) > 3 else None
    for text, kind in (("Query/Retrieve...", QueryRetrieveDialog), ("Send to PACS...", SendDialog)):
        action = QtGui.QAction(text, window)
        action.triggered.connect(lambda _=False, k=kind: open_dialog(k))
        file_menu.insertAction(anchor, action)
        actions.append(action)
    return actions
