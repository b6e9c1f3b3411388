"""The only package that imports PySide6, pyqtgraph and VTK widgets."""

from app.ui.pyqtgraph_import import install as _lazy_pyqtgraph_qt

_lazy_pyqtgraph_qt()  # before any module of the package imports pyqtgraph
