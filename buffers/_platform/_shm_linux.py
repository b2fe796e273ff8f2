"""Linux's fast path for shared-memory blocks (:mod:`._shm`): ``shm_open`` and ``mmap`` with
``MAP_POPULATE`` (every page faulted in at once, not one by one on the first frame writes), a
header read with ``pread``."""

import sys

assert sys.platform.startswith("linux")  # imported on Linux only (mypy: checked there only)

import _posixshmem  # type: ignore[import-not-found]  # noqa: E402  (CPython's, no stub)
import mmap  # noqa: E402
import os  # noqa: E402

from ._shm import Block, unlink_block  # noqa: E402


class FastBlock(Block):
    """A block mapped from its own descriptor."""

    def __init__(self, fd: int, populate: bool) -> None:
        size = os.fstat(fd).st_size
        flags = mmap.MAP_SHARED | (mmap.MAP_POPULATE if populate else 0)
        self._fd = fd
        self._mmap = mmap.mmap(fd, size, flags=flags) if size else None
        self.buf = memoryview(self._mmap) if self._mmap is not None else memoryview(b"")

    def close(self) -> None:
        self.buf.release()
        if self._mmap is not None:
            self._mmap.close()
        os.close(self._fd)


def create_block(name: str, size: int, populate: bool) -> Block:
    """See :func:`._shm.create_block`."""
    fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        os.ftruncate(fd, size)
        return FastBlock(fd, populate)
    except BaseException:
        os.close(fd)
        unlink_block(name)
        raise


def attach_block(name: str, populate: bool) -> Block:
    """See :func:`._shm.attach_block`."""
    fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    try:
        return FastBlock(fd, populate)
    except BaseException:
        os.close(fd)
        raise


def read_block(name: str, n: int) -> bytes:
    """See :func:`._shm.read_block` (FileNotFoundError if gone)."""
    fd = _posixshmem.shm_open("/" + name, os.O_RDONLY, mode=0o600)
    try:
        return os.pread(fd, n, 0)
    finally:
        os.close(fd)
