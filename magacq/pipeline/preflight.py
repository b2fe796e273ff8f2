"""What a run needs of the machine besides memory, checked before any device is opened.

Each refusal is one :class:`~magacq.errors.ConfigError` line (exit 2) naming what to change: a
shared-memory namespace the buffers cannot use, an open-file limit too low for the run's
processes, an output directory that is a file, cannot be created or cannot be written.
"""

import os
import resource
import tempfile
from pathlib import Path

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


def raise_open_files(workers: int) -> int:
    """Raise the open-file limit to its hard limit; refuse one too low for ``workers`` trackers.

    Returns
    -------
    int
        The limit now in force.
    """
    need = BASE_OPEN_FILES + WORKER_OPEN_FILES * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise ConfigError(
            f"the open-file limit (ulimit -n) is {hard}; a run of {workers} tracker worker(s) "
            f"needs at least {need}: raise it (ulimit -n 4096) or lower tracking.workers"
        )
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


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
