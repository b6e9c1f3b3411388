"""With every tool dock installed the window still fits a laptop screen and the images keep
most of its width."""

from PySide6 import QtCore, QtWidgets

from app.ui.docks import DOCK_NAMES


def test_tool_docks_share_a_tabbed_column_and_the_window_fits_1280x800(
    qtbot, viewer_settings, phantom, synthetic_phantom
):
    from app.ui.application import create_application, install_tool_docks
    from app.ui.main_window import MainWindow

    create_application([])  # the dark theme the application runs with (its sizes count here)
    window = MainWindow(viewer_settings)
    qtbot.addWidget(window)
    assert install_tool_docks(window) == []
    menus = [action.text().replace("&", "") for action in window.menuBar().actions()]
    assert menus[-1] == "Help" and menus[0] == "File"  # tools' menus (e.g. Tools) go before Help
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.show_compare(phantom, [synthetic_phantom])
    QtWidgets.QApplication.processEvents()
    QtWidgets.QApplication.processEvents()
    assert (window.width(), window.height()) == (1280, 800)  # the docks did not push it larger
    right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
    tools = [
        dock for dock in window.findChildren(QtWidgets.QDockWidget) if window.dockWidgetArea(dock) == right
    ]
    assert {dock.windowTitle() for dock in tools} == set(DOCK_NAMES)
    first = tools[0]
    tabbed = set(window.tabifiedDockWidgets(first))
    assert tabbed == set(tools) - {first}  # one column of tabs, not a stack of slivers
    assert sum(not dock.visibleRegion().isEmpty() for dock in tools) == 1  # one in front
    # The images keep the most room (the dock columns are fitted once the window shows).
    qtbot.waitUntil(lambda: window.view.width() >= 0.45 * window.width(), timeout=3000)
