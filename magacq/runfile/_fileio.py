"""File I/O that the platforms do differently: a portable way everywhere, a better one where the
platform has it, each choice made and logged once per process by
:func:`buffers.choose_fast_path` (``MAGACQ_PORTABLE=1`` forces the portable ways, as it does for
the shared-memory buffers).

============  =======================================  =====================================
what          where the platform has it                portable
============  =======================================  =====================================
reserve       ``posix_fallocate`` (Linux, BSDs)         zeros written
cache         ``posix_fadvise(DONTNEED)`` (Linux)       left to the OS
direct I/O    ``O_DIRECT`` + ``pwrite`` (Linux, BSDs)   writes through HDF5 (buffered)
free space    ``shutil.disk_usage`` everywhere
============  =======================================  =====================================
"""

import os
import shutil
from pathlib import Path
from typing import BinaryIO, TypeVar

from buffers import choose_fast_path

T = TypeVar("T")


def _better(what: str, call: T | None, better: str, portable: str) -> T | None:
    """``call`` (the platform's better way of ``what``, None where it has none), unless
    ``MAGACQ_PORTABLE`` forces the portable way (then None)."""
    return call if choose_fast_path(what, call is not None, better, portable) else None


def reserve(f: BinaryIO, nbytes: int) -> None:
    """Give the new file ``f`` ``nbytes`` of disk (ENOSPC if the disk has not that much)."""
    fallocate = _better("disk reserve", getattr(os, "posix_fallocate", None), "posix_fallocate",
                        "zeros")  # fmt: skip
    if fallocate is not None:
        fallocate(f.fileno(), 0, nbytes)
    else:
        f.write(bytes(nbytes))
        f.flush()
        os.fsync(f.fileno())  # blocks given now, not at write-back


def drop_cached(fd: int, end: int) -> None:
    """Drop bytes ``[0, end)`` of file ``fd`` from the page cache, where the OS lets us."""
    fadvise = _better("page cache", getattr(os, "posix_fadvise", None), "posix_fadvise",
                      "left to the OS")  # fmt: skip
    if fadvise is not None:
        fadvise(fd, 0, end, os.POSIX_FADV_DONTNEED)  # type: ignore[attr-defined,unused-ignore]


def open_direct(path: Path) -> int | None:
    """A descriptor of ``path`` for direct I/O writes (with :func:`os.pwrite`), or None where
    the platform or the file system has none."""
    flag = getattr(os, "O_DIRECT", None) if hasattr(os, "pwrite") else None
    direct = _better("direct I/O", flag, "O_DIRECT", "through HDF5")
    if direct is None:
        return None
    try:
        return os.open(path, os.O_WRONLY | direct)
    except OSError:  # EINVAL on tmpfs before Linux 6.6
        return None


def free_bytes(path: Path) -> int:
    """Bytes free to this user on the file system of ``path``."""
    return shutil.disk_usage(path).free
