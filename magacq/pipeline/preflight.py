"""What a run needs of the machine besides memory, checked before any device is opened.

Each refusal is one :class:`~magacq.errors.ConfigError` line (exit 2) naming what to change: a
shared-memory namespace the buffers cannot use, an open-file limit too low for the run's
processes, a process limit too low to start them, an output directory that is a file, cannot
be created or cannot be written.
"""

import os
import tempfile
from pathlib import Path

from buffers import default_namespace, segment_name
from magacq._platform import open_file_limits, process_limit, raise_open_file_limit, user_threads
from magacq.errors import ConfigError

#: Files a run holds open besides its tracker workers' (measured: about 50), with a margin.
BASE_OPEN_FILES = 128
#: Files each tracker worker adds (measured: 2), with a margin.
WORKER_OPEN_FILES = 8


def check_namespace() -> str:
    """The session's namespace (``$MAGACQ_NAMESPACE``), refused when segments cannot use it."""
    namespace = default_namespace()
    try:
        segment_name("status", f"{namespace}-run{os.getpid()}")
    except ValueError:
        raise ConfigError(
            f"MAGACQ_NAMESPACE={namespace!r}: a namespace must be non-empty, under 80 characters, "
            "without '/' or '.' (letters, digits, '-' and '_' are safe)"
        ) from None
    return namespace


def raise_open_files(workers: int) -> None:
    """Raise the open-file limit to its hard limit; refuse one too low for ``workers`` trackers
    (where the OS has such a limit)."""
    limits = open_file_limits()
    if limits is None:
        return
    need = BASE_OPEN_FILES + WORKER_OPEN_FILES * workers
    if limits[1] < need:
        raise ConfigError(
            f"the open-file limit (ulimit -n) is {limits[1]:.0f}; a run of {workers} tracker "
            f"worker(s) needs at least {need}: raise it (ulimit -n 4096) or lower tracking.workers"
        )
    raise_open_file_limit()


def check_process_limit(workers: int) -> None:
    """Refuse a run that the user's process limit (``ulimit -u``: threads of all of the user's
    processes, where the OS has such a limit) cannot start: a thread or process the OS refuses
    mid-start leaves a library spinning (OpenBLAS) or a run half started."""
    soft = process_limit()
    if soft is None:
        return
    used = user_threads()
    # each process: its main thread, queue feeders, a motion or listener thread, and the BLAS
    # and numba thread pools (one thread per CPU at most); measured: 15 for a 2-tracker run
    need = (workers + 5) * (4 + (os.cpu_count() or 1))
    if used + need > soft:
        raise ConfigError(
            f"the process limit (ulimit -u) is {soft} and this user's processes hold {used} "
            f"threads; a run of {workers} tracker worker(s) needs about {need} more: raise it "
            "(ulimit -u 4096) or lower tracking.workers"
        )


def check_output_dir(path: Path, key: str = "output.dir") -> Path:
    """Create the directory ``path`` if needed and check that a file can be written in it.

    Raises
    ------
    ConfigError
        ``path`` is a file, cannot be created or is not writable.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key} {path}: is a file, not a directory; name a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{key} {path}: cannot create it: {exc.strerror}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{key} {path}: cannot write there: {exc.strerror}; name a writable directory"
        ) from None
    return path
