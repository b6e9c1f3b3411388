"""Panel titles are readable in both themes: WCAG AA contrast (4.5:1 or more) between the title's
text colour and what is actually painted behind it.

The light theme is the application without qdarkstyle (the system's light palette); there the
title strip showed the window's grey under the light title, at 1.1:1.
"""

from __future__ import annotations

import pytest
from PySide6 import QtGui, QtWidgets

from app.core.planes import Plane
from app.core.viewer_state import ViewerState
from app.ui.slice_view import PanelContent, SliceView

WCAG_AA = 4.5


def relative_luminance(colour: QtGui.QColor) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(colour.red()) + 0.7152 * linear(colour.green()) + 0.0722 * linear(colour.blue())


def contrast_ratio(first: QtGui.QColor, second: QtGui.QColor) -> float:
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_ratio_matches_wcag_examples():
    assert contrast_ratio(QtGui.QColor("white"), QtGui.QColor("black")) == pytest.approx(21.0)
    assert contrast_ratio(QtGui.QColor("#777777"), QtGui.QColor("white")) == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio(QtGui.QColor("#e8e8e8"), QtGui.QColor("#efefef")) < 1.2  # the light-theme title


@pytest.fixture(params=["light", "dark"])
def themed_panel(request, qtbot, phantom):
    app = QtWidgets.QApplication.instance()
    if request.param == "dark":
        from app.ui.application import create_application

        create_application([])  # qdarkstyle's style sheet (reset after the test by conftest)
        assert app.styleSheet()
    else:
        app.setStyleSheet("")
    panel = SliceView(ViewerState(phantom), PanelContent(phantom, title="original: orientation phantom"), Plane.AXIAL)
    qtbot.addWidget(panel)
    panel.resize(420, 420)
    panel.show()
    qtbot.waitExposed(panel)
    QtWidgets.QApplication.processEvents()
    return request.param, panel


def test_panel_title_meets_wcag_aa_in_both_themes(themed_panel):
    theme, panel = themed_panel
    title = panel._title_label
    assert title.text().startswith("original")
    title.ensurePolished()
    text = title.palette().color(title.foregroundRole())
    # The style's own colours...
    backing = title.palette().color(title.backgroundRole())
    assert backing.alpha() == 255, f"{theme}: the title has no backing of its own"
    assert contrast_ratio(text, backing) >= WCAG_AA, (theme, text.name(), backing.name())
    # ...and what is painted behind the text: the strip's pixels beyond the title's end, and at
    # both ends of the strip (its whole width is the title's).
    picture = panel.grab().toImage()
    strip = title.geometry()
    middle = strip.center().y()
    text_end = strip.left() + title.fontMetrics().horizontalAdvance(title.text()) + 12
    for x in (strip.left() + 1, text_end, strip.right() - 2):
        behind = picture.pixelColor(x, middle)
        assert contrast_ratio(text, behind) >= WCAG_AA, (theme, x, text.name(), behind.name())
    # The text itself is drawn in that colour: its brightest pixel stands out as much.
    brightest = max(
        (picture.pixelColor(x, y) for x in range(strip.left(), text_end) for y in range(strip.top(), strip.bottom())),
        key=relative_luminance,
    )
    assert contrast_ratio(brightest, picture.pixelColor(strip.right() - 2, middle)) >= WCAG_AA
