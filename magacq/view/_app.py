"""Starting Qt and the viewer window for one run."""

import logging
import sys

import psutil

from magacq._platform import lower_priority

from ._discovery import RunInfo, ViewError
from ._qt import QtCore, QtWidgets
from ._source import RunSource
from ._window import ViewerWindow

log = logging.getLogger("magacq.view")

#: How long after the window's first paint the viewer lowers its priority (ms).
LOWER_AFTER_MS = 1000


def run_window(info: RunInfo) -> int:
    """Attach to ``info``'s buffers, show the window and run Qt's loop until it is closed.

    The window is built, shown and first painted at the caller's priority (on a loaded machine
    a niced process took about 20 s to show anything); it lowers its priority once it is up."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    try:
        source = RunSource(info.namespace)
    except ViewError as exc:
        print(f"magacq view: {exc}", file=sys.stderr)
        return 2
    window = ViewerWindow(source)
    first_paint = _FirstPaint(window)
    window.installEventFilter(first_paint)
    window.show()
    app.exec()
    return 0


class _FirstPaint(QtCore.QObject):
    """On the window's first paint: log it with the priority, and lower the priority soon after."""

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.Paint:
            watched.removeEventFilter(self)
            log.info("window shown (nice %s)", psutil.Process().nice())
            QtCore.QTimer.singleShot(LOWER_AFTER_MS, _lower_priority)
        return False


def _lower_priority() -> None:
    """Lower this process's priority: it is only a viewer, the acquisition it watches matters
    more (where it may not, it runs as is)."""
    nice = lower_priority()
    if nice is not None:
        log.info("priority lowered (nice %s)", nice)
