"""What a run needs of the machine besides memory, checked before any device is opened.

Each refusal is one :class:`~magacq.errors.ConfigError` line (exit 2) naming what to change: a
shared-memory namespace the buffers cannot use, an open-file limit too low for the run's
processes, a process limit too low to start them, an output directory that is a file, cannot
be created or cannot be written.
"""

import os
import sys
import tempfile
from pathlib import Path

import psutil

from buffers import default_namespace, segment_name
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


def open_file_limit() -> int | None:
    """This process's open-file limit (``ulimit -n``); None where there is none (Windows)."""
    if sys.platform == "win32":
        return None
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_files(workers: int) -> None:
    """Raise the open-file limit to its hard limit; refuse one too low for ``workers`` trackers
    (POSIX: Windows has no such limit)."""
    if sys.platform == "win32":
        return
    import resource

    need = BASE_OPEN_FILES + WORKER_OPEN_FILES * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise ConfigError(
            f"the open-file limit (ulimit -n) is {hard}; a run of {workers} tracker worker(s) "
            f"needs at least {need}: raise it (ulimit -n 4096) or lower tracking.workers"
        )
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def check_process_limit(workers: int) -> None:
    """Refuse a run that the user's process limit (``ulimit -u``: threads of all of the user's
    processes, where the OS has such a limit) cannot start: a thread or process the OS refuses
    mid-start leaves a library spinning (OpenBLAS) or a run half started."""
    if not sys.platform.startswith("linux"):  # psutil reads it on Linux (Windows has none)
        return
    if os.geteuid() == 0:  # root is not held to it
        return
    soft = psutil.Process().rlimit(psutil.RLIMIT_NPROC)[0]
    if soft == psutil.RLIM_INFINITY:
        return
    uid = os.getuid()
    used = sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["uids", "num_threads"])
               if p.info["uids"] is not None and p.info["uids"].real == uid)  # fmt: skip
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
