"""The main window: menus, study browser dock, status bar with readout and load progress.

It shows the session model (``app.core.session.Session``: open volumes, compare set, layout,
per-volume display, cursor) and rebuilds its panels when the session says what is shown changed;
it holds no image logic and stores none of the session's state. Public API used by other parts of
the application: ``session``, ``open_path``, ``open_volume``, ``show_compare``, ``add_dock``,
``set_layout``, ``panels`` and ``state``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.output_path import file_in_the_way, folder_needed_reason
from app.core.planes import Plane
from app.core.session import Layout, Session
from app.core.study import series_to_open
from app.core.viewer_state import PRESET_KEYS, ViewerState, presets_for
from app.core.volume import Volume
from app.ui.colormaps import COLORMAP_NAMES
from app.ui.device_status import DeviceStatusLabel
from app.ui.docks import TOOLS, ToolSpec
from app.ui.first_image import PANEL_MODULES, FirstImageGrid, PanelImport
from app.ui.layouts import mpr_cells, mpr_planes
from app.ui.loading import (
    CacheCheckTask,
    LoadTask,
    PreviewTask,
    ScanTask,
)
from app.ui.notifications import NotificationArea
from app.ui.services import FileServices
from app.ui.settings import ViewerSettings
from app.ui.shortcuts import SHORTCUTS, ShortcutHelpDialog
from app.ui.study_browser import StudyBrowser

if TYPE_CHECKING:  # the panels are pyqtgraph views: imported when the first ones are built
    from app.ui.compare_view import CompareView
    from app.ui.panel_grid import PanelGrid
    from app.ui.slice_view import SliceView

PANEL_MODULE = "app.ui.slice_view"  # imported (with pyqtgraph) once panels were built

TOOL_DOCK_WIDTH_PX = 380  # a tool dock's starting width: the images keep most of the screen
LAYOUT_KEYS = {"axial": "1", "coronal": "2", "sagittal": "3", "mpr": "4", "2x2": "5", "compare": "6"}


class MainWindow(QtWidgets.QMainWindow):
    volume_loaded = QtCore.Signal(object)  # every Volume that finished loading
    view_changed = QtCore.Signal()  # the panels were rebuilt (new layout or volume)
    startup_tools_built = QtCore.Signal()  # the tools built after the first image are all built
    first_image_painted = QtCore.Signal()  # a first image (FirstImageGrid) was painted for the first time

    def __init__(
        self,
        settings: ViewerSettings | None = None,
        services: FileServices | None = None,
        device_probe: list[str] | None = None,
        first_image: bool = False,
    ) -> None:
        """``first_image``: the first volume shown is painted at once by a ``FirstImageGrid``
        while pyqtgraph is imported and the panels are built (the window a person starts;
        ``panels`` and ``view`` still give the real panels to whoever asks)."""
        super().__init__()
        # How files become volumes, from the entry point (app.cli.file_services): the UI imports no
        # file-format code.
        self.services = services or FileServices()
        self.setWindowTitle("SynthView")
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        layout = self.settings.layout()
        colormap = self.settings.colormap()
        self.session = Session(
            Layout(layout) if layout in tuple(Layout) else Layout.MPR,
            colormap if colormap in COLORMAP_NAMES else "gray",
        )
        self.session.view_changed.connect(self._rebuild_view)
        self.session.label_display_changed.connect(self._show_label_display)
        self.view: PanelGrid | CompareView | None = None
        self.paints_first_image = first_image
        self.first_image: FirstImageGrid | None = None  # on screen until the panels replace it
        self._panel_import: PanelImport | None = None  # started after the first image's paint
        self.panels_unavailable = ""  # why the panels' modules cannot be imported (said once)
        self.last_error = ""
        self._pending_loads: list[LoadTask] = []
        self._cache_checks: list[CacheCheckTask] = []  # running: kept alive until they report
        self._checked_copies: dict[tuple[str, str], Volume] = {}  # (path, series UID): volume checked
        self._stale_copies: dict[tuple[str, str], Volume] = {}  # found stale: replaced once reloaded
        self._waiting_for_load: list[tuple[str, object]] = []  # (path, run once its loads end)
        self._tool_shortcuts: list[tuple[str, str]] = []  # (key, what it does) added by tool docks
        self._first_dock_of_area: dict[QtCore.Qt.DockWidgetArea, QtWidgets.QDockWidget] = {}
        self._docks: dict[str, QtWidgets.QDockWidget] = {}  # by title
        self._lazy_docks: dict[str, ToolSpec] = {}  # declared, not built yet
        self.tool_errors: dict[str, str] = {}  # tool name -> why it could not start
        self._docks_fitted = False
        self._deferred_build = None  # builds the start-up docks once the first image is drawn
        self._deferred_tools: set[str] = set()  # their names, until then

        self._placeholder = QtWidgets.QLabel(
            "Open a DICOM folder, a DICOM file or a NIfTI file\n"
            "(File menu, drag and drop, or the command line)."
        )
        self._placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._stack = QtWidgets.QStackedWidget()
        self._stack.addWidget(self._placeholder)
        self.setCentralWidget(self._stack)

        # Tabs of the tool docks run down the window's right edge: a row of tabs along the top
        # would set the dock's minimum width and take the width from the images.
        self.setTabPosition(
            QtCore.Qt.DockWidgetArea.RightDockWidgetArea, QtWidgets.QTabWidget.TabPosition.East
        )
        self.browser = StudyBrowser()
        self.browser.open_requested.connect(self.open_volume)
        self.browser.load_requested.connect(self._load_series)
        self.browser.compare_requested.connect(lambda vols: self.show_compare(vols[0], vols[1:]))
        self.add_dock(self.browser, "Studies", QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.session.volumes_changed.connect(self._list_in_browser)

        self.notifications = NotificationArea()
        # What the user asked for failed (a save, an export): the dialog opens too.
        self.session.errors.connect(lambda title, message: self.notifications.notify(title, message, popup=True))
        self.readout_label = QtWidgets.QLabel("")
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setRange(0, 0)  # busy until the loader reports a fraction (DICOM frames)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.hide()
        # Which device GAN plugins will use: asked in the background once the window shows.
        self.device_label = DeviceStatusLabel(device_probe)
        self.device_label.busy = self.is_loading  # torch's import would slow the first load down
        # What the loader noticed (missing slices, uneven spacing, gantry tilt corrected): stays
        # in view for as long as that volume is the one opened, the whole list in the tooltip.
        self.load_warnings_label = QtWidgets.QLabel("")
        self.load_warnings_label.setStyleSheet("color: #e0a000;")
        self.load_warnings_label.hide()
        self.statusBar().addWidget(self.readout_label, 1)
        self.statusBar().addPermanentWidget(self.notifications)
        self.statusBar().addPermanentWidget(self.load_warnings_label)
        self.statusBar().addPermanentWidget(self.progress_bar)
        self.statusBar().addPermanentWidget(self.device_label)

        self._build_menus()
        geometry = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 850)

    # ----- public API ---------------------------------------------------------------------
    @property
    def state(self) -> ViewerState | None:
        """Cursor and display of what is shown (the session's)."""
        return self.session.viewer

    @property
    def panels(self) -> list[SliceView]:
        self.finish_first_image()
        return list(self.view.panels) if self.view is not None else []

    def add_dock(
        self,
        widget: QtWidgets.QWidget,
        title: str,
        area: QtCore.Qt.DockWidgetArea = QtCore.Qt.DockWidgetArea.RightDockWidgetArea,
    ) -> QtWidgets.QDockWidget:
        """Attach a tool panel (plugins, hallucination regions, ...) as a dock; returns the dock.

        The one way a dock joins the window; a dock declared lazy (``add_lazy_dock``) receives
        its widget here when it is first shown."""
        dock = self._docks.get(title)
        if dock is not None:
            dock.setWidget(widget)
            self._fit_combos(widget)
            return dock
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{title}")
        dock.setWidget(widget)
        self._docks[title] = dock
        self._fit_combos(widget)
        # Tool panels share one column as tabs: stacked, their minimum heights add up and push
        # the window past a laptop screen's height (1280x800), and each gets a sliver.
        self.addDockWidget(area, dock)
        first = self._first_dock_of_area.get(area)
        if first is not None and not first.isFloating() and self.dockWidgetArea(first) == area:
            self.tabifyDockWidget(first, dock)
            first.raise_()  # the first tool stays in front; the others are a tab away
        else:
            self._first_dock_of_area[area] = dock
        if hasattr(self, "_docks_menu"):
            self._docks_menu.addAction(dock.toggleViewAction())
        if self.isVisible():
            dock.show()  # docked into a window already on screen: Qt leaves a new dock hidden
            (first or dock).raise_()
        return dock

    def add_lazy_dock(self, tool: ToolSpec) -> QtWidgets.QDockWidget:
        """A dock whose panel is built when the dock is first shown (or asked for by name)."""
        self._lazy_docks[tool.name] = tool
        dock = self.add_dock(QtWidgets.QLabel(f"{tool.name}: starting..."), tool.name)

        def shown(visible: bool) -> None:
            # A dock whose build waits for the first image (``install_tools(defer=True)``) is
            # not built by the window's show: it would delay that image.
            if visible and tool.name in self._lazy_docks and tool.name not in self._deferred_tools:
                self.build_tool(self._lazy_docks[tool.name])

        dock.visibilityChanged.connect(shown)
        return dock

    def build_tool(self, tool: ToolSpec) -> bool:
        """Build one declared tool now; a failure is shown in its dock and notified. True if built."""
        self._lazy_docks.pop(tool.name, None)
        try:
            tool.build(self)
        except Exception as error:  # noqa: BLE001 - a broken tool is reported, the viewer goes on
            import traceback

            message = f"{type(error).__name__}: {error}"
            if tool.has_dock:
                label = QtWidgets.QLabel(f"{tool.name} could not start:\n{message}")
                label.setWordWrap(True)
                label.setStyleSheet("color: #ff8080;")
                self.add_dock(label, tool.name)
            self.tool_errors[tool.name] = message
            self.notifications.notify(f"{tool.name} could not start", message, traceback.format_exc())
            return False
        self.keep_help_menu_last()
        return True

    def install_tools(self, tools: tuple[ToolSpec, ...] = TOOLS, defer: bool = False) -> dict[str, str]:
        """Attach every declared tool (lazy docks as empty docks, built when first shown);
        returns {tool name: error} for those that failed so far.

        ``defer``: the tools that are built at start (docks and menu entries) are built once the
        first image is on screen (or 2 s after the window shows with no load under way), so that
        they do not delay it; the docks and their tabs are in place at once."""
        deferred = []
        for tool in tools:
            if tool.has_dock and (tool.lazy or defer):
                self.add_lazy_dock(tool)
                if not tool.lazy:
                    deferred.append(tool)
            elif defer:
                deferred.append(tool)
            else:
                self.build_tool(tool)
        if deferred:
            self._build_after_first_view(deferred)
        self.keep_help_menu_last()
        return {name: error for name, error in self.tool_errors.items() if name in {t.name for t in tools}}

    def _build_after_first_view(self, tools: list[ToolSpec]) -> None:
        self._deferred_tools = {tool.name for tool in tools}

        pending: list[ToolSpec] = []

        def build() -> None:
            if self._deferred_build is not build or pending or not self._deferred_tools:
                return  # done or under way already (the image came first, or the timer did)
            self._deferred_tools = set()
            pending.extend(tools)
            build_next()

        def build_next() -> None:
            # One tool per turn of the event loop: together they held the UI thread 0.2-0.35 s
            # right after the first image; one at a time, input and paints come in between.
            while pending:
                tool = pending.pop(0)
                if tool.name in self._lazy_docks or not tool.has_dock:  # not built on demand since
                    self.build_tool(tool)
                    break
            if pending:
                QtCore.QTimer.singleShot(0, self, build_next)
            else:
                self._deferred_build = None  # every start-up tool is built
                self.startup_tools_built.emit()

        self._deferred_build = build
        # After the first image is drawn (a zero timer: the panels paint first)...
        self.view_changed.connect(lambda: QtCore.QTimer.singleShot(0, self, build))
        # ...or, with nothing opened, once the window had time to show (a load under way brings
        # an image: on a slow or busy machine the docks must not compete with it).
        def fallback() -> None:
            if self._deferred_build is not build:
                return
            if self.is_loading():
                QtCore.QTimer.singleShot(250, self, fallback)
                return
            build()

        QtCore.QTimer.singleShot(2000, self, fallback)

    def building_startup_tools(self) -> bool:
        """Whether tools declared at start are still to be built (``startup_tools_built`` follows)."""
        return self._deferred_build is not None

    def dock_widget(self, name: str) -> QtWidgets.QWidget | None:
        """The panel of the dock named ``name`` (built now if it is lazy and not built yet)."""
        if name in self._lazy_docks:
            self.build_tool(self._lazy_docks[name])
        dock = self._docks.get(name)
        return dock.widget() if dock is not None else None

    def _fit_combos(self, widget: QtWidgets.QWidget) -> None:
        # A long entry (a plugin's full name) must not set the whole column's minimum width:
        # combo boxes in docks shrink and elide; the open list still shows entries in full.
        for combo in widget.findChildren(QtWidgets.QComboBox):
            combo.setSizeAdjustPolicy(
                QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(min(combo.minimumContentsLength() or 12, 12))
            combo.setMinimumWidth(combo.sizeHint().width())  # Qt keeps a stale minimumSizeHint

    def add_shortcut(self, key: str, description: str, slot) -> QtGui.QAction:
        """Bind ``key`` in the whole window (a tool dock's keys) and list it in the F1 help."""
        action = QtGui.QAction(description, self)
        action.setShortcut(QtGui.QKeySequence(key))
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda checked=False: slot())
        self.addAction(action)
        self._tool_shortcuts.append((key, description))
        return action

    def key_actions(self) -> list[QtGui.QAction]:
        """Every action of the window and its menus that has a key bound."""
        actions = list(self.actions())
        menus = [action.menu() for action in self.menuBar().actions() if action.menu() is not None]
        while menus:
            menu = menus.pop()
            for action in menu.actions():
                if action.menu() is not None:
                    menus.append(action.menu())
                else:
                    actions.append(action)
        return [action for action in actions if not action.shortcut().isEmpty()]

    def keep_help_menu_last(self) -> None:
        """Put Help back at the end of the menu bar after tools added menus (e.g. Tools)."""
        bar = self.menuBar()
        action = self._help_menu.menuAction()
        if bar.actions() and bar.actions()[-1] is not action:
            bar.removeAction(action)
            bar.addAction(action)

    def shortcut_list(self) -> list[tuple[str, str]]:
        """What F1 shows: the viewer's table, the tool docks' keys, then any other bound key."""
        listed = [*SHORTCUTS, *self._tool_shortcuts]
        known = {QtGui.QKeySequence(key).toString() for key, _ in listed}
        for action in self.key_actions():
            key = action.shortcut().toString()
            if key not in known:
                listed.append((key, action.text().replace("&", "").rstrip(".")))
                known.add(key)
        return listed

    def open_path(self, path: str | Path, series_uid: str | None = None) -> None:
        """Load a DICOM folder/file or NIfTI file in the background, then show it.

        A folder is first scanned (headers only): every series is listed in the study browser
        and the first one is loaded; the others load on double-click. A DICOM file is one slice of
        a series: its folder is scanned the same way and the series holding the file is loaded.
        """
        path = str(path)
        scanner = self.services.scan_beside
        if series_uid is None and scanner is not None and _is_folder_or_dicom_file(Path(path)):
            task = ScanTask(path, scanner)
            task.signals.scanned.connect(self._on_scanned)
            self._start(task)
        else:
            self._load_series(path, series_uid)

    def _load_series(self, path: str, series_uid: str | None, scanned=None) -> None:
        """Load a series in the background; ``scanned`` (its SeriesInfo from a scan of ``path``)
        spares a second scan of the folder."""
        loader = self.services.load_volume
        load_scanned = self.services.load_scanned
        if scanned is not None and load_scanned is not None:

            def loader(path: str, series_uid: str | None = None, progress=None) -> Volume:
                return load_scanned(scanned, path, progress)

        task = LoadTask(path, series_uid or None, loader)
        task.signals.loaded.connect(self._on_loaded)
        task.signals.progress.connect(self._on_progress)
        self._start(task)

    def _start(self, task: LoadTask | ScanTask) -> None:
        path = task.path
        task.setAutoDelete(False)
        task.signals.failed.connect(self._on_failed)
        self._pending_loads.append(task)
        self.progress_bar.setRange(0, 0)  # busy until a fraction arrives
        self.progress_bar.show()
        self.statusBar().showMessage(f"Loading {path} ...")
        in_memory = self.services.in_memory
        if in_memory is not None and in_memory(*task.request):
            task.run()  # read ahead (the start's study, from the decoded cache): nothing to wait for
        else:
            QtCore.QThreadPool.globalInstance().start(task)

    def is_loading(self) -> bool:
        return bool(self._pending_loads)

    def open_volume(self, volume: Volume) -> None:
        """Show one volume in the current single-volume layout (MPR when in compare)."""
        self._show_load_warnings(volume.load_warnings)
        self.session.show(volume)

    def show_compare(
        self,
        original: Volume,
        others: list[Volume],
        reference: Volume | None = None,
        planes: list[Plane] | None = None,
    ) -> None:
        """original | others... | difference, all linked in world coordinates.

        ``reference`` (default: ``original``) is the volume whose grid sets slice steps and the
        initial cursor; ``planes`` default to all three (the 3x3 grid with one other volume).
        """
        self._show_load_warnings(original.load_warnings)
        self.session.show_compare(original, others, reference, planes)

    def set_layout(self, name: Layout | str) -> None:
        """Arrange the panels (remembered for next time); ValueError for an unknown layout."""
        layout = Layout(name)
        if not self.session.set_layout(layout):
            self.statusBar().showMessage("Compare needs two volumes: open another one first", 5000)
            return
        if layout is not Layout.COMPARE:
            self.settings.set_layout(layout.value)

    def save_screenshot(self, path: str | Path) -> bool:
        QtWidgets.QApplication.processEvents()
        picture = self.grab()
        from app.ui.volume_3d import Volume3DWidget

        # OpenGL views are not in grab(): paint their own rendering at their place.
        painter = QtGui.QPainter(picture)
        for widget in self.findChildren(Volume3DWidget):
            if widget.isVisible():
                painter.drawImage(widget.interactor.mapTo(self, QtCore.QPoint(0, 0)), widget.rendered_image())
                if widget.synthetic_label is not None:
                    painter.drawPixmap(
                        widget.synthetic_label.mapTo(self, QtCore.QPoint(0, 0)), widget.synthetic_label.grab()
                    )
        painter.end()
        if file_in_the_way(path) is None:
            Path(path).absolute().parent.mkdir(parents=True, exist_ok=True)
        return picture.save(str(path))

    # ----- building -----------------------------------------------------------------------
    def _list_in_browser(self, volumes: list[Volume]) -> None:
        listed = self.browser.volumes()
        for volume in volumes:
            if not any(known is volume for known in listed):
                self.browser.add_volume(volume)

    def _rebuild_view(self) -> None:
        """Panels for what the session shows (it changed: another volume, compare or layout)."""
        session = self.session
        current = session.current
        if current is None:
            return
        compare = session.layout is Layout.COMPARE and bool(session.compare)
        if self.paints_first_image and PANEL_MODULE not in sys.modules and not compare:
            self._show_first_image(current)
            return
        if compare and self._panel_modules_missing(said=False):
            # No panels (pyqtgraph missing or broken): said through the error channel, and the
            # original stays on screen as a still picture. Before, the compare's import raised
            # out of the session's event (a traceback, the request lost without a word).
            self.session.report_error(
                "Cannot show the compare",
                f"{self.panels_unavailable}. The original is shown as a still picture.",
            )
            self._show_first_image(current)
            return
        self._build_panels()

    def _show_first_image(self, current: Volume) -> None:
        """Paint ``current`` at once (``FirstImageGrid``); the panels replace it after that paint."""
        old_view, self.view = self.view, None
        if old_view is not None:
            old_view.detach()
            self._stack.removeWidget(old_view)
            old_view.deleteLater()
        layout = self.session.layout
        grid = FirstImageGrid(self.state, current, mpr_planes(Layout.MPR if layout is Layout.COMPARE else layout))
        if self.first_image is not None:
            self.first_image.detach()
            self._stack.removeWidget(self.first_image)
            self.first_image.deleteLater()
        self.first_image = grid
        self._stack.addWidget(grid)
        self._stack.setCurrentWidget(grid)
        self.setWindowTitle(f"SynthView — {current.name}")
        # After the paint that put it on screen (a window shown later, as the start shows it:
        # after its first paint; one never shown builds them when ``panels`` is asked for), the
        # panels' modules are imported in a thread: pyqtgraph's import (0.13 s here) would hold
        # the UI thread, which stays free to repaint and resize; the panels are built when it is
        # done.
        grid.painted.connect(self.first_image_painted.emit, QtCore.Qt.ConnectionType.SingleShotConnection)
        grid.painted.connect(self._import_panels, QtCore.Qt.ConnectionType.SingleShotConnection)

    def _import_panels(self) -> None:
        if self._panel_import is None:
            self._panel_import = PanelImport(self)
            self._panel_import.done.connect(self.finish_first_image)
            self._panel_import.start()

    def finish_first_image(self) -> None:
        """Build the panels now if the first image stands in for them (no-op otherwise). Panels
        whose modules cannot be imported (pyqtgraph missing or broken) are said once, through
        the session's errors; the first image stays, a still picture."""
        if self.first_image is None or self._panel_modules_missing():
            return
        self._build_panels()

    def _panel_modules_missing(self, said: bool = True) -> bool:
        """True when the panels' modules cannot be imported (``panels_unavailable`` says why;
        ``said``: the first time, through the session's errors as 'Cannot show the image
        panels'; else the caller says what it could not show)."""
        try:
            for name in PANEL_MODULES:
                importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - any import failure: told, never a blank window
            first_time = not self.panels_unavailable
            self.panels_unavailable = self.panels_unavailable or f"{type(error).__name__}: {error}"
            if first_time and said:
                self.session.report_error(
                    "Cannot show the image panels",
                    f"{self.panels_unavailable}. The image shown is a still picture: it cannot be "
                    "scrolled, windowed or measured.",
                )
            return True
        return False

    def _build_panels(self) -> None:
        from app.ui.compare_view import CompareView
        from app.ui.panel_grid import PanelGrid

        session = self.session
        current = session.current
        if current is None:
            return
        first_image, self.first_image = self.first_image, None
        if first_image is not None:
            first_image.detach()
        old = self.view
        if old is not None:
            old.detach()
        if session.layout is Layout.COMPARE and session.compare:
            self.view = CompareView(
                self.state,
                current,
                list(session.compare),
                list(session.compare_planes),
                segmentation=session.segmentation,
            )
        else:
            widget_3d = None
            if session.layout is Layout.TWO_BY_TWO:
                from app.ui.volume_3d import make_volume_3d_widget

                widget_3d = make_volume_3d_widget(current, self.state)
            self.view = PanelGrid(self.state, mpr_cells(current, session.layout, widget_3d))
        for replaced in (old, first_image):
            if replaced is not None:
                self._stack.removeWidget(replaced)
                replaced.deleteLater()
        self._stack.addWidget(self.view)
        self._stack.setCurrentWidget(self.view)
        for panel in self.view.panels:
            panel.readout_changed.connect(self._show_readout)
        if self.view.panels:
            self.view.panels[0].setFocus()  # arrow keys work at once
        self.setWindowTitle(f"SynthView — {current.name}")
        QtCore.QTimer.singleShot(0, self._reset_zoom)
        self.view_changed.emit()

    def _compare_view(self) -> CompareView | None:
        """The compare grid when it is what the window shows."""
        if "app.ui.compare_view" not in sys.modules:
            return None  # no compare grid was ever built
        from app.ui.compare_view import CompareView

        return self.view if isinstance(self.view, CompareView) else None

    def _show_label_display(self, overlays) -> None:
        if self._compare_view() is not None:
            self.view.set_label_display(overlays)

    def _show_readout(self, text: str) -> None:
        """The value under the mouse; in the SYNTHETIC red when it is read off synthesized data."""
        self.readout_label.setStyleSheet("color: #ff4d5e;" if text.startswith("SYNTHETIC") else "")
        self.readout_label.setText(text)

    def _reset_zoom(self) -> None:
        if self.panels:  # (built now if the first image stood in for them)
            self.view.reset_zoom()

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._add_action(file_menu, "Open file (DICOM or NIfTI)...", "Ctrl+O", self._choose_file)
        self._add_action(file_menu, "Open DICOM folder...", "Ctrl+D", self._choose_folder)
        self._recent_menu = file_menu.addMenu("Recent files")
        self._recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._add_action(file_menu, "Save screenshot...", "Ctrl+Shift+S", self._choose_screenshot)
        file_menu.addSeparator()
        self._add_action(file_menu, "Quit", "Ctrl+Q", self.close)

        view_menu = bar.addMenu("&View")
        for name, key in LAYOUT_KEYS.items():
            self._add_action(view_menu, f"Layout: {name}", key, lambda n=name: self.set_layout(n))
        view_menu.addSeparator()
        self._add_action(view_menu, "Reset zoom and pan", "R", self._reset_zoom)
        self._add_action(view_menu, "Flicker original / synthesized", "F", self._toggle_flicker)
        self._docks_menu = view_menu.addMenu("Panels")

        image_menu = bar.addMenu("&Image")
        # The presets of the shown volume's modality (CT's are in HU: none on MR); Alt+N picks the
        # Nth of them, the menu lists them when it opens.
        self._presets_menu = image_menu.addMenu("Window presets")
        self._presets_menu.aboutToShow.connect(self._fill_presets_menu)
        for number in range(1, PRESET_KEYS + 1):
            action = QtGui.QAction(f"Window preset {number}", self)
            action.setShortcut(QtGui.QKeySequence(f"Alt+{number}"))
            action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda checked=False, n=number: self.apply_preset_number(n))
            self.addAction(action)
        self._add_action(
            image_menu,
            "Invert",
            "I",
            lambda: self._with_state(lambda s: s.set_display(invert=not s.display.invert)),
        )
        self._add_action(image_menu, "Next colormap", "C", self._next_colormap)
        colormaps = image_menu.addMenu("Colormap")
        for name in COLORMAP_NAMES:
            self._add_action(colormaps, name, None, lambda n=name: self.set_colormap(n))
        self._add_action(image_menu, "Threshold mask...", None, self._choose_threshold)
        self._add_action(image_menu, "Threshold mask on / off", "T", self._toggle_threshold)

        help_menu = bar.addMenu("&Help")
        self._help_menu = help_menu
        self._add_action(help_menu, "Keyboard shortcuts", "F1", self.show_shortcuts)
        self._add_action(help_menu, "About SynthView", None, self._show_about)

    def _add_action(self, menu: QtWidgets.QMenu, text: str, key: str | None, slot) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if key:
            action.setShortcut(QtGui.QKeySequence(key))
            action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda checked=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    # ----- actions ------------------------------------------------------------------------
    def window_presets(self) -> tuple[str, ...]:
        current = self.session.current
        return presets_for(current.modality if current is not None else "")

    def apply_preset_number(self, number: int) -> None:
        presets = self.window_presets()
        if self.state is not None and 1 <= number <= len(presets):
            self.state.apply_preset(presets[number - 1])

    def _fill_presets_menu(self) -> None:
        menu = self._presets_menu
        menu.clear()
        for number, name in enumerate(self.window_presets(), start=1):
            # The key is shown (after a tab), bound once by the window's own action.
            action = menu.addAction(f"{name}\tAlt+{number}")
            action.triggered.connect(lambda checked=False, n=number: self.apply_preset_number(n))

    def _with_state(self, change) -> None:
        if self.state is not None:
            change(self.state)

    def set_colormap(self, name: str) -> None:
        """Colormap of the original and same-modality panels (remembered for next time)."""
        if name not in COLORMAP_NAMES:
            raise ValueError(f"unknown colormap {name!r}")
        self.settings.set_colormap(name)
        if self.state is not None:
            self.state.set_display(colormap=name)

    def _next_colormap(self) -> None:
        if self.state is None:
            return
        names = list(COLORMAP_NAMES)
        current = self.state.display.colormap
        self.set_colormap(names[(names.index(current) + 1) % len(names)] if current in names else names[0])

    def _choose_threshold(self) -> None:
        if self.state is None:
            return
        current = self.state.display.threshold
        value, accepted = QtWidgets.QInputDialog.getDouble(
            self,
            "Threshold mask",
            "Show voxels above (e.g. 130 HU for calcium):",
            130.0 if current is None else current,
            -1e9,
            1e9,
            1,
        )
        if accepted:
            self.state.set_display(threshold=value)

    def _toggle_threshold(self) -> None:
        if self.state is None:
            return
        if self.state.display.threshold is None:
            self.state.set_display(threshold=getattr(self, "_last_threshold", 130.0))
        else:
            self._last_threshold = self.state.display.threshold
            self.state.set_display(threshold=None)

    def _toggle_flicker(self) -> None:
        if self._compare_view() is not None:
            self.view.toggle_flicker()

    def show_shortcuts(self) -> ShortcutHelpDialog:
        dialog = ShortcutHelpDialog(self, self.shortcut_list())
        dialog.open()
        return dialog

    def _show_about(self):
        """Help > About at once: the device line (torch, seconds) comes from the status bar's
        check in a child process, filled in when it answers; this process never imports torch."""
        from app.ui.about_dialog import AboutDialog

        label = self.device_label
        dialog = AboutDialog(self, device_description=label.description or "checking… (see the status bar)")
        if not label.description:
            label.described.connect(dialog.set_device_description)
            label.start(delay_ms=0)
        dialog.open()
        return dialog

    def _start_directory(self) -> str:
        """Where file dialogs open: beside the most recent file (remembered in QSettings)."""
        recent = self.settings.recent_files()
        return str(Path(recent[0]).parent) if recent else ""

    def _choose_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self,
            "Open image",
            self._start_directory(),
            "Images (*.nii *.nii.gz *.dcm *.DCM *);;All files (*)",
        )
        if path:
            self.open_path(path)

    def _choose_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._start_directory())
        if path:
            self.open_path(path)

    def _choose_screenshot(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save screenshot", "synthview.png", "PNG (*.png)"
        )
        if path and not self.save_screenshot(path):
            # Qt's image writer gives no reason: a file where a folder is needed is named.
            reason = folder_needed_reason(path) or "the image could not be written there"
            self.session.report_error("Cannot save the screenshot", f"{path}: {reason}")

    def _fill_recent_menu(self) -> None:
        self._recent_menu.clear()
        for path in self.settings.recent_files():
            action = self._recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_path(p))
        if self._recent_menu.isEmpty():  # first run: say so rather than show an empty menu
            self._recent_menu.addAction("No recent files yet").setEnabled(False)

    def _finish_task(self, path: str) -> None:
        self._pending_loads = [task for task in self._pending_loads if task.path != path]
        if not self._pending_loads:
            self.progress_bar.hide()
        ready = [then for waited, then in self._waiting_for_load if waited == path]
        self._waiting_for_load = [(waited, then) for waited, then in self._waiting_for_load if waited != path]
        for then in ready:
            QtCore.QTimer.singleShot(0, self, then)  # after the loaded volume is shown

    def _on_progress(self, path: str, done: int, total: int) -> None:
        """A real percentage while a DICOM series loads (frames read of frames in the series)."""
        if total <= 0 or not any(task.path == path for task in self._pending_loads):
            return
        percent = round(100 * min(done, total) / total)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(percent)
        self.statusBar().showMessage(f"Loading {path} ... {percent}% ({done} of {total} slices)")

    def _on_loaded(self, path: str, volume: Volume, series_uid: str = "") -> None:
        self._finish_task(path)
        if series_uid:
            self.browser.attach_volume(path, series_uid, volume)
        self.settings.add_recent_file(path)
        self.statusBar().showMessage(f"Loaded {path}", 5000)
        self.volume_loaded.emit(volume)
        stale = self._stale_copies.pop((path, series_uid), None)
        if stale is not None:  # read again after its cached copy was found stale: in its place
            self.session.replace_volume(stale, volume)
            if self.session.current is volume:
                self._show_load_warnings(volume.load_warnings)
        else:
            self.open_volume(volume)
        if self.services.verify_cached is not None:
            self._checked_copies[(path, series_uid)] = volume
            self._check_cached_copy(path, series_uid)

    def _check_cached_copy(self, path: str, series_uid: str) -> None:
        """A volume the decoded-series cache served is shown at once; its files are rehashed in
        the background, and a change the file stats could not see (same size and time) reloads it."""
        task = CacheCheckTask(path, series_uid, self.services.verify_cached)
        task.setAutoDelete(False)
        task.signals.checked.connect(self._on_cache_checked)
        self._cache_checks.append(task)
        QtCore.QThreadPool.globalInstance().start(task)

    def _on_cache_checked(self, path: str, series_uid: str, unchanged: object) -> None:
        self._cache_checks = [
            task for task in self._cache_checks if (task.path, task.series_uid) != (path, series_uid)
        ]
        checked = self._checked_copies.pop((path, series_uid), None)
        if unchanged is False:
            if checked is not None:
                self._stale_copies[(path, series_uid)] = checked
            self.notifications.notify(
                f"Reloaded {Path(path).name}", "the cached copy did not match the files; reloaded from them"
            )
            self._load_series(path, series_uid or None)

    def _show_load_warnings(self, warnings: Sequence[str]) -> None:
        label = self.load_warnings_label
        label.setVisible(bool(warnings))
        if not warnings:
            label.clear()
            label.setToolTip("")
            return
        first = warnings[0] if len(warnings[0]) <= 70 else warnings[0][:69] + "…"
        more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
        label.setText(f"⚠ {first}{more}")
        label.setToolTip("Loading this series:\n" + "\n".join(f"• {warning}" for warning in warnings))

    def _on_scanned(self, path: str, studies: list) -> None:
        self._finish_task(path)
        first = series_to_open(studies, path)  # what the file cache fetched ahead, too
        if first is None and Path(path).is_file():
            self._load_series(path, None)  # in no series: the loader says what the file is
            return
        uids = self.browser.add_scanned(path, studies)
        if first is None or not uids:
            self._on_failed(path, "no image series found in this folder")
            return
        self.statusBar().showMessage(f"{len(uids)} series found in {path}", 5000)
        every_series = [series for study in studies for series in getattr(study, "series", ())]
        self._load_series(path, first.uid, first)  # never open_path: an empty UID must not rescan
        if self.services.series_preview is not None:
            # The thumbnails wait for the series to be on screen: read alongside, they would
            # compete with its load for the interpreter.
            self._after_load(path, lambda: self._start_previews(path, every_series))

    def _after_load(self, path: str, then) -> None:
        """Run ``then`` once the loads of ``path`` have finished (at once when none is pending)."""
        if not any(task.path == path for task in self._pending_loads):
            then()
            return
        self._waiting_for_load.append((path, then))

    def _start_previews(self, path: str, series_list: list) -> None:
        previews = PreviewTask(path, series_list, self.services.series_preview)
        previews.setAutoDelete(False)
        previews.signals.preview_ready.connect(self.browser.set_preview)
        self._preview_tasks = [previews]  # kept alive while it runs
        QtCore.QThreadPool.globalInstance().start(previews)

    def _on_failed(self, path: str, message: str) -> None:
        self._finish_task(path)
        self.last_error = f"Could not open {path}: {message}"
        self.statusBar().showMessage(self.last_error)
        self.notifications.notify("Could not open", self.last_error, popup=True)

    # ----- drag and drop, persistence -----------------------------------------------------
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        self.device_label.start()
        if not self._docks_fitted:
            # Before the first paint (a study read ahead from the cache is in it): fitted later,
            # the docks would widen under the image just drawn and every panel jump. The layout
            # is laid out first, so that the docks have sizes to change.
            self._docks_fitted = True
            self.layout().activate()
            self.fit_docks()

    def fit_docks(self) -> None:
        """Dock columns at a share of the window's width, so the images keep most of it."""
        width = self.width()
        for area, share, most in (
            (QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, 0.22, 340),
            (QtCore.Qt.DockWidgetArea.RightDockWidgetArea, 0.27, TOOL_DOCK_WIDTH_PX),
        ):
            dock = self._first_dock_of_area.get(area)
            if dock is not None and self.dockWidgetArea(dock) == area and dock.isVisible():
                self.resizeDocks([dock], [min(most, int(share * width))], QtCore.Qt.Orientation.Horizontal)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.device_label.stop()  # a device check still running is killed and reaped
        self.settings.set_window_geometry(self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)


def _is_folder_or_dicom_file(path: Path) -> bool:
    return path.is_dir() or (path.is_file() and not path.name.lower().endswith((".nii", ".nii.gz")))
