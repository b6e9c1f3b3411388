"""pyqtgraph's import without its eager copy of Qt (about a third of a second of the start-up).

pyqtgraph 0.14 keeps its own "mirror" modules of QtCore, QtGui and QtWidgets and fills them at
import by copying every name of PySide6's modules (``pyqtgraph.Qt._copy_attrs``). PySide6 creates
its classes and their Python enums lazily, on first use; that copy creates all of them (about
700 classes and their enums), most of which SynthView never uses.

``install()`` puts mirrors in place first that answer pyqtgraph's copy ("is the name there?")
without touching PySide6, and fetch each name from PySide6 when it is first used: pyqtgraph sees
the same objects it would have copied. Without ``install()`` (or with another pyqtgraph) nothing
changes but the time: a mirror that is not asked by ``_copy_attrs`` always answers with PySide6's
own object.
"""

from __future__ import annotations

import importlib
import sys
import types

QT_MODULES = ("QtCore", "QtGui", "QtWidgets")
COPY_FUNCTION = "_copy_attrs"  # pyqtgraph.Qt's copy of every name of a Qt module


class LazyQtMirror(types.ModuleType):
    """``pyqtgraph.Qt.QtCore`` (...): a name is fetched from ``PySide6.<module>`` when first used."""

    def __init__(self, name: str, source: str) -> None:
        super().__init__(name)
        self._source_name = source

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)  # a module's own dunders: pyqtgraph copies PySide6's
        caller = sys._getframe(1).f_code
        if caller.co_name == COPY_FUNCTION and caller.co_filename.endswith(("pyqtgraph/Qt/__init__.py", "pyqtgraph\\Qt\\__init__.py")):
            return True  # only "hasattr?": the value is fetched when something uses it
        value = getattr(importlib.import_module(self._source_name), name)
        setattr(self, name, value)
        return value


def install() -> None:
    """Make the next ``import pyqtgraph`` lazy about Qt's names (no-op once it is imported)."""
    if "pyqtgraph" in sys.modules:
        return
    for module in QT_MODULES:
        name = f"pyqtgraph.Qt.{module}"
        sys.modules.setdefault(name, LazyQtMirror(name, f"PySide6.{module}"))
