"""Run logging: children forward records through a queue; the supervisor prints and files them.

The supervisor owns a :class:`logging.handlers.QueueListener` that hands every record (its own and
those its child processes put on the queue with a ``QueueHandler``) to a console handler and to a
log file next to the output. One format for every command (run, calibrate, retrack): the console
shows level and message (with ``--debug`` also the time, ``HH:MM:SS``, and tracebacks); the log
file has every record with its ISO date and time, process and logger, tracebacks included.
"""

import copy
import logging
import logging.handlers
import multiprocessing as mp
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is the supervisor's: a child only puts records on the queue
    from rich.console import Console

#: Loggers of the project packages; each is configured the same way.
PACKAGES = ("magacq", "hal", "buffers", "simulators")
_FILE_FORMAT = "%(asctime)s %(processName)s %(name)s %(levelname)s: %(message)s"
_CONSOLE_TIME = "[%H:%M:%S]"


class _Forward(logging.handlers.QueueHandler):
    """Puts records on the queue with the message formatted and a traceback kept apart
    (``exc_text``): the log file writes it, the console only with ``--debug``."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        return record


class _Plain(logging.Formatter):
    """The message alone: no traceback (it is in the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def console_handler(console: "Console", *, debug: bool) -> logging.Handler:
    """The console handler of every command: level and message; time and tracebacks with
    ``debug``."""
    from rich.logging import RichHandler

    handler = RichHandler(
        console=console, show_path=False, show_time=debug, log_time_format=_CONSOLE_TIME
    )
    if not debug:
        handler.setFormatter(_Plain())
    handler.setLevel(logging.DEBUG if debug else logging.INFO)
    return handler


def file_handler(path: Path) -> logging.Handler:
    """The log file handler of every command: every record, tracebacks included."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    return handler


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

    def __init__(self, console: "Console", *, debug: bool, ctx: Any = None) -> None:
        self.level = logging.DEBUG if debug else logging.INFO
        self.queue = (ctx or mp).Queue()
        self._console = console_handler(console, debug=debug)
        self._file: logging.Handler | None = None
        self._listener = logging.handlers.QueueListener(
            self.queue, self._console, respect_handler_level=True
        )
        self._local = _Forward(self.queue)
        for name in PACKAGES:
            log = logging.getLogger(name)
            log.setLevel(self.level)
            log.addHandler(self._local)
            log.propagate = False

    def start(self) -> None:
        self._listener.start()

    def add_file(self, path: Path) -> None:
        """Also write every record to ``path`` (appended)."""
        handler = file_handler(path)
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
    handler = _Forward(queue)
    for name in PACKAGES:
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level)
        log.propagate = False
