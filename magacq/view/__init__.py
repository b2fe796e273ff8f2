"""``magacq view``: a live desktop window onto a running acquisition.

Qt (PySide6) and pyqtgraph come with the optional ``view`` extra and are imported only when the
window opens, so the rest of magacq works without them.
"""

import os
import sys

from ._discovery import RunInfo, ViewError, choose_run, find_runs, mine

__all__ = ["RunInfo", "ViewError", "choose_run", "find_runs", "main", "mine"]


def main(run: str | None = None) -> int:
    """Open the viewer on run ``run`` (a namespace), or on the only live run.

    Returns
    -------
    int
        0 when the window was closed, 2 when there is nothing (or no single thing) to attach to
        or the ``view`` extra is missing.
    """
    try:
        info = choose_run(find_runs(), run)
    except ViewError as exc:
        print(f"magacq view: {exc}", file=sys.stderr)
        return 2
    if not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    ):
        print("magacq view: no display (DISPLAY is not set)", file=sys.stderr)
        return 2
    try:
        from ._app import run_window
    except ImportError as exc:
        print(
            f"magacq view needs the 'view' extra ({exc.name} is missing): "
            "pip install 'magacq[view]'",
            file=sys.stderr,
        )
        return 2
    return run_window(info)
