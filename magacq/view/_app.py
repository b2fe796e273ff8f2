"""Starting Qt and the viewer window for one run."""

import sys

import psutil

from ._discovery import RunInfo, ViewError
from ._qt import QtCore, QtWidgets
from ._source import RunSource
from ._window import ViewerWindow


def run_window(info: RunInfo) -> int:
    """Attach to ``info``'s buffers, show the window and run Qt's loop until it is closed.

    The window is built and shown at the caller's priority (on a loaded machine a niced
    process took about 20 s to show anything); it lowers its priority once it is up."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    try:
        source = RunSource(info.namespace)
    except ViewError as exc:
        print(f"magacq view: {exc}", file=sys.stderr)
        return 2
    window = ViewerWindow(source)
    window.show()
    QtCore.QTimer.singleShot(1000, _lower_priority)  # once the window is up and painted
    app.exec()
    return 0


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
        pass
