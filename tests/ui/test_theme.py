"""The dark theme is qdarkstyle's own style sheet, loaded without qtpy (0.12 s of the start)."""

import re
from pathlib import Path

from PySide6 import QtGui

from app.ui.application import dark_stylesheet
from tests.ui.child_process import run_python_child


def _icons_as_names(text: str) -> str:
    return re.sub(r'url\("[^"]*/rc/', 'url("rc/', text)


def test_the_dark_theme_is_qdarkstyles_style_sheet_with_its_icons_on_disk(qapp):
    import qdarkstyle

    ours = dark_stylesheet(qapp)
    theirs = qdarkstyle.load_stylesheet(qt_api="pyside6")  # from its compiled resources, via qtpy
    assert _icons_as_names(ours) == _icons_as_names(theirs)
    icons = re.findall(r'url\("([^"]+)"\)', ours)
    assert len(icons) > 50 and all(Path(icon).is_file() for icon in icons)
    link = qapp.palette().color(QtGui.QPalette.ColorGroup.Normal, QtGui.QPalette.ColorRole.Link)
    from qdarkstyle.dark.palette import DarkPalette

    assert link == QtGui.QColor(DarkPalette.COLOR_ACCENT_3)  # qdarkstyle's palette patch


STYLED_APPLICATION = """
import sys
from app.ui.application import create_application
app = create_application([])
print(bool(app.styleSheet()), "qtpy" in sys.modules)
"""


def test_the_styled_application_never_imports_qtpy():
    result = run_python_child(STYLED_APPLICATION, QT_QPA_PLATFORM="offscreen")
    assert result.stdout.split() == ["True", "False"]
