"""The tool docks and tool menus of the main window, declared in one list.

Each entry names a dock (its title is its name), the function that builds it and whether it is
built only when first shown (start-up stays short; a dock behind a tab costs nothing until its
tab is raised). Every builder attaches its widget through ``MainWindow.add_dock(widget, name)``;
docks find each other by name through ``MainWindow.dock_widget(name)``. A builder that fails
(an import error included) is reported to the user through the window's notification area and
its dock shows the error: a broken tool never simply vanishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ToolSpec:
    name: str  # the dock's title, or a menu entry's name for a tool without a dock
    build: Callable  # (window) -> None; attaches through window.add_dock / the menus
    lazy: bool = False  # a dock built when first shown (needs a dock: has_dock)
    has_dock: bool = True  # False: the tool adds menu entries only, built at start


def _plugin_panel(window) -> None:
    from app.ui.plugin_panel import install_plugin_panel

    install_plugin_panel(window)


def _hallucination_panel(window) -> None:
    from app.ui.hallucination_panel import install_hallucination_panel

    install_hallucination_panel(window)


def _lesion_checklist(window) -> None:
    from app.ui.hallucination_checklist import install_lesion_checklist

    install_lesion_checklist(window)


def _annotation_tools(window) -> None:
    from app.ui.annotation_panel import install_annotation_tools

    install_annotation_tools(window)


def _measure_panel(window) -> None:
    from app.ui.measure_panel import install_measure_panel

    install_measure_panel(window)


def _figure_export(window) -> None:
    from app.ui.figure_export import install_figure_export

    install_figure_export(window)


def _gallery_menu(window) -> None:
    from app.ui.gallery import install_gallery_menu

    install_gallery_menu(window)


def _batch_results_menu(window) -> None:
    from app.ui.batch_results import install_batch_results_menu

    install_batch_results_menu(window)


def _pacs_menu(window) -> None:
    from app.ui.pacs_dialog import install_pacs_menu

    install_pacs_menu(window)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("GAN plugins", _plugin_panel),  # in front of the right column: shown at start
    ToolSpec("Hallucination check", _hallucination_panel, lazy=True),
    ToolSpec("Lesion checklist", _lesion_checklist, lazy=True),
    ToolSpec("Annotations", _annotation_tools),  # binds the annotation keys at start
    ToolSpec("Measurements", _measure_panel, lazy=True),  # profiles, noise, CNR, NPS per panel
    ToolSpec("Export figure", _figure_export, has_dock=False),
    ToolSpec("Sample gallery", _gallery_menu, has_dock=False),
    ToolSpec("Batch results", _batch_results_menu, has_dock=False),
    ToolSpec("PACS", _pacs_menu, has_dock=False),
)

DOCK_NAMES = tuple(tool.name for tool in TOOLS if tool.has_dock)
