"""Qt and pyqtgraph, imported once, in the right order.

PySide6 is imported before pyqtgraph so that pyqtgraph binds to it even where another Qt binding
(PyQt6, pulled in by other packages) is installed too.
"""

import PySide6  # noqa: F401  (must come first: pyqtgraph binds to the first Qt it finds)

# isort: split
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="k")

__all__ = ["pg", "QtCore", "QtGui", "QtWidgets"]
