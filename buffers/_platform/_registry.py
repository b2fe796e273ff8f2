"""The per-user registry of segments: how runs and stale segments are found on every platform.

Shared memory cannot be listed portably (Linux has /dev/shm, macOS and Windows nothing), and
segment names are hashes (:func:`buffers.segment_name`), so each segment's creator writes a
record beside it in a per-user directory (``platformdirs``' runtime directory, or
``$MAGACQ_RUNTIME_DIR``): ``<segment>.seg`` says which namespace and buffer it is and which
process (pid and start token) made it; ``<segment>.lock`` is the file the buffer's lock locks
(:mod:`buffers._lock`). Both go when the segment is unlinked; a sweep removes those of dead
creators. A record's modification time is the segment's creation time.
"""

import functools
import getpass
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ENV = "MAGACQ_RUNTIME_DIR"
RECORD, LOCK = ".seg", ".lock"


@functools.cache
def _runtime_dir() -> Path:
    """The platform's per-user runtime directory for magacq (``platformdirs``)."""
    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: platformdirs warns, falls back
        warnings.simplefilter("ignore")
        return platformdirs.user_runtime_path("magacq")


def registry_dir() -> Path:
    """The registry directory of this user (made, private, on first use)."""
    given = os.environ.get(ENV)
    if given:
        path = Path(os.path.abspath(given))  # the same directory, the same segment names
    else:
        path = _runtime_dir()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except PermissionError:  # a runtime directory we may not write: a private one in temp
        path = Path(tempfile.gettempdir()) / f"magacq-{getpass.getuser()}"
        path.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass(frozen=True)
class Record:
    """A segment's registry record."""

    name: str
    namespace: str
    buffer: str
    pid: int
    token: int
    created: float


def lock_path(full: str) -> Path:
    """The file that segment ``full``'s lock locks."""
    return registry_dir() / (full + LOCK)


def add(full: str, namespace: str, buffer: str, pid: int, token: int) -> None:
    """Record segment ``full`` (just created by process ``pid``) and make its lock file."""
    where = registry_dir()
    fd = os.open(where / (full + LOCK), os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    text = json.dumps({"namespace": namespace, "buffer": buffer, "pid": pid, "token": token})
    with tempfile.NamedTemporaryFile("w", dir=where, suffix=".tmp", delete=False) as f:
        f.write(text)
    os.replace(f.name, where / (full + RECORD))  # readers never see half a record


def remove(full: str) -> None:
    """Forget segment ``full`` (its record and lock file); nothing if already gone."""
    where = registry_dir()
    for suffix in (RECORD, LOCK):
        try:
            (where / (full + suffix)).unlink()
        except FileNotFoundError:
            pass
        except PermissionError:  # Windows: another process has the lock file open
            pass


def read(full: str) -> Record | None:
    """The record of segment ``full``; None if there is none."""
    path = registry_dir() / (full + RECORD)
    try:
        created = path.stat().st_mtime
        fields = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return Record(full, created=created, **fields)


def records() -> list[Record]:
    """Every record of this user, sorted by segment name."""
    found = (read(p.name[: -len(RECORD)]) for p in sorted(registry_dir().glob("*" + RECORD)))
    return [r for r in found if r is not None]
