"""Run logging: children forward records through a queue; the supervisor prints and files them.

The supervisor owns a :class:`logging.handlers.QueueListener` that hands every record (its own and
those its child processes put on the queue with a ``QueueHandler``) to a console handler and to a
log file next to the output.
"""

import logging
import logging.handlers
import multiprocessing as mp
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

#: Loggers of the project packages; each is configured the same way.
PACKAGES = ("magacq", "hal", "buffers", "simulators")
_FILE_FORMAT = "%(asctime)s %(processName)s %(name)s %(levelname)s: %(message)s"


class RunLogging:
    """The supervisor side: a queue for children, a console handler, an optional log file.

    Parameters
    ----------
    console : rich.console.Console
        Where console records go (the same console as the live status).
    debug : bool
        DEBUG level everywhere, else INFO.
    ctx : multiprocessing context
        The context the child processes are started with.
    """

    def __init__(self, console: Console, *, debug: bool, ctx: Any = None) -> None:
        self.level = logging.DEBUG if debug else logging.INFO
        self.queue = (ctx or mp).Queue()
        self._console = RichHandler(
            console=console, show_path=False, show_time=debug, rich_tracebacks=debug
        )
        self._console.setLevel(self.level)
        self._file: logging.Handler | None = None
        self._listener = logging.handlers.QueueListener(
            self.queue, self._console, respect_handler_level=True
        )
        self._local = logging.handlers.QueueHandler(self.queue)
        for name in PACKAGES:
            log = logging.getLogger(name)
            log.setLevel(self.level)
            log.addHandler(self._local)
            log.propagate = False

    def start(self) -> None:
        self._listener.start()

    def add_file(self, path: Path) -> None:
        """Also write every record to ``path`` (appended)."""
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        self._file = handler
        self._listener.handlers = (self._console, handler)

    def stop(self) -> None:
        """Flush what is queued, close the file, detach the handlers."""
        self._listener.stop()
        for name in PACKAGES:
            logging.getLogger(name).removeHandler(self._local)
        if self._file is not None:
            self._file.close()
        self.queue.close()
        self.queue.join_thread()


def setup_child(queue: Any, level: int) -> None:
    """In a child process: send every project logger's records to the supervisor's queue."""
    handler = logging.handlers.QueueHandler(queue)
    for name in PACKAGES:
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level)
        log.propagate = False
