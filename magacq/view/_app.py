"""Starting Qt and the viewer window for one run."""

import logging
import sys

import psutil

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


def _lower_priority(increment: int = 10) -> None:
    """Lower this process's priority (POSIX: ``increment`` more nice; Windows: below normal):
    it is only a viewer, the acquisition it watches matters more."""
    me = psutil.Process()
    try:
        if sys.platform == "win32":
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            me.nice(me.nice() + increment)
    except psutil.Error:  # not allowed: run as is
        log.debug("could not lower the viewer's priority", exc_info=True)
        return
    log.info("priority lowered (nice %s)", me.nice())
