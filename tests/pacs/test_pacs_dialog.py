"""File > Query/Retrieve as a person uses it: type a patient ID, search, pick the study in the
tree, retrieve: the study lands complete in the cache and opens in the viewer. Send to PACS
sends a series folder."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402

import pytest  # noqa: E402
from PySide6 import QtCore  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot, tmp_path, pacs_config, monkeypatch):
    from app.cli.file_services import file_services
    from app.ui.main_window import MainWindow
    from app.ui.settings import ViewerSettings

    monkeypatch.setenv("SYNTHVIEW_PACS_CONFIG", str(pacs_config))
    settings = ViewerSettings(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))
    window = MainWindow(settings, services=file_services())
    window.resize(1200, 800)
    qtbot.addWidget(window)
    window.show()
    return window


def test_search_pick_and_retrieve_opens_the_study(qtbot, window, orthanc, pacs_config, tmp_path):
    from app.ui.pacs_dialog import QueryRetrieveDialog

    dialog = QueryRetrieveDialog(window, window.services.pacs, parent=window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.node.setCurrentText("orthanc-web")
    qtbot.keyClicks(dialog.fields["patient_id"], orthanc.study["patient_id"])
    qtbot.mouseClick(dialog.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "found" in dialog.status.text() or "error" in dialog.status.text().lower(), timeout=30000)
    assert dialog.status.text() == "1 study found"
    patient = dialog.tree.topLevelItem(0)
    study = patient.child(0)
    assert study.childCount() == 2 and {study.child(i).text(4) for i in range(2)} == {"12"}
    dialog.grab().save(str(tmp_path / "query_retrieve.png"))
    dialog.tree.setCurrentItem(study)
    qtbot.mouseClick(dialog.retrieve_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Retrieved" in dialog.status.text() or "received" in dialog.status.text(), timeout=60000)
    assert "Retrieved into the study cache" in dialog.status.text(), dialog.status.text()
    qtbot.waitUntil(lambda: window.session.current is not None, timeout=60000)
    assert window.session.current.voxels.shape[0] == 12
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert [e["complete"] for e in index.values()] == [True] and list(index.values())[0]["instances"] == 24


def test_a_partial_study_is_not_kept_and_the_dialog_says_why(qtbot, window, orthanc, tmp_path):
    from app.ui.pacs_dialog import QueryRetrieveDialog

    dialog = QueryRetrieveDialog(window, window.services.pacs, parent=window)
    qtbot.addWidget(dialog)
    dialog.node.setCurrentText("orthanc-get")
    qtbot.keyClicks(dialog.fields["patient_id"], "PARTIAL")
    qtbot.mouseClick(dialog.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "found" in dialog.status.text(), timeout=30000)
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(0).child(0))
    qtbot.mouseClick(dialog.retrieve_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "nothing kept" in dialog.status.text(), timeout=60000)
    assert "of 4 instance(s)" in dialog.status.text()
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert [e["complete"] for e in index.values()] == [False]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # nothing half-written kept


def test_a_bad_node_is_one_line(qtbot, window):
    from app.ui.pacs_dialog import QueryRetrieveDialog

    dialog = QueryRetrieveDialog(window, window.services.pacs, parent=window)
    qtbot.addWidget(dialog)
    dialog.node.setCurrentText("nonsense")
    qtbot.mouseClick(dialog.search_button, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.status.text().startswith("unknown node 'nonsense'")


def test_the_file_menu_offers_query_retrieve_and_send(window):
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.menu() and "File" in a.menu().title())
    texts = [a.text() for a in file_menu.actions()]
    if "Query/Retrieve..." not in texts:  # tools are installed by the application, not the bare window
        from app.ui.pacs_dialog import install_pacs_menu

        install_pacs_menu(window)
        texts = [a.text() for a in file_menu.actions()]
    assert "Query/Retrieve..." in texts and "Send to PACS..." in texts
