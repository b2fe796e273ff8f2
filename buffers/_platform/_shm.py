"""Named shared-memory blocks: create, attach, unlink, and read a header without mapping.

Two ways, one interface (:class:`Block`):

- portable (macOS, Windows, and Linux with ``MAGACQ_PORTABLE=1``): the standard library's
  ``multiprocessing.shared_memory.SharedMemory``, not tracked by ``multiprocessing``'s resource
  tracker (the owner unlinks its blocks, or a sweep of the registry does);
- Linux's fast path: ``shm_open`` and ``mmap`` with ``MAP_POPULATE`` (every page faulted in at
  once, not one by one on the first frame writes), and a header read with ``pread``.

On Windows a block lives while a process has it open; it cannot outlive them, and unlinking
does nothing.
"""

import mmap
import os
import sys
from multiprocessing import resource_tracker, shared_memory

from ._choice import choose

_POSIX = os.name == "posix"
_TRACK_ARG = sys.version_info >= (3, 13)  # SharedMemory(track=False)

if _POSIX:
    import _posixshmem
else:
    _posixshmem = None


def fast() -> bool:
    """Whether the Linux fast path is taken (not forced off by ``MAGACQ_PORTABLE``)."""
    return choose(
        "shared memory",
        sys.platform.startswith("linux") and hasattr(os, "pread"),
        "shm_open + mmap(MAP_POPULATE)",
        "multiprocessing.shared_memory",
    )


class Block:
    """A mapped block. ``buf`` is a writable memoryview of all of it; :meth:`close` unmaps
    (every view taken from ``buf`` released first, else BufferError)."""

    buf: memoryview

    def close(self) -> None:
        raise NotImplementedError


class _FastBlock(Block):
    def __init__(self, fd: int, populate: bool) -> None:
        size = os.fstat(fd).st_size
        flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
        self._fd = fd
        self._mmap = mmap.mmap(fd, size, flags=flags) if size else None
        self.buf = memoryview(self._mmap) if self._mmap is not None else memoryview(b"")

    def close(self) -> None:
        self.buf.release()
        if self._mmap is not None:
            self._mmap.close()
        os.close(self._fd)


class _SharedMemory(shared_memory.SharedMemory):
    """SharedMemory whose collection does not raise while views into it live on (the
    mapping then goes with the last view, as the fast path's does)."""

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, BufferError):
            pass


class _PortableBlock(Block):
    def __init__(self, shm: shared_memory.SharedMemory) -> None:
        self._shm = shm
        self.buf = shm.buf  # type: ignore[assignment]

    def close(self) -> None:
        self._shm.close()


def _shared_memory(name: str, create: bool, size: int) -> shared_memory.SharedMemory:
    if _TRACK_ARG:
        return _SharedMemory(name, create, size, track=False)  # type: ignore[call-arg]
    shm = _SharedMemory(name, create, size)
    if _POSIX:  # registered (Python < 3.13, create or attach): its tracker would unlink it
        resource_tracker.unregister("/" + shm.name, "shared_memory")
    return shm


def create_block(name: str, size: int, populate: bool = False) -> Block:
    """Create and map block ``name`` of ``size`` zeroed bytes (mode 0600).

    Raises FileExistsError if there is one of that name.
    """
    if not fast():
        return _PortableBlock(_shared_memory(name, True, size))
    flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
    fd = _posixshmem.shm_open("/" + name, flags, mode=0o600)
    try:
        os.ftruncate(fd, size)
        return _FastBlock(fd, populate)
    except BaseException:
        os.close(fd)
        unlink_block(name)
        raise


def attach_block(name: str, populate: bool = False) -> Block:
    """Map the existing block ``name``. Raises FileNotFoundError if there is none."""
    if not fast():
        return _PortableBlock(_shared_memory(name, False, 0))
    fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    try:
        return _FastBlock(fd, populate)
    except BaseException:
        os.close(fd)
        raise


def read_block(name: str, n: int) -> bytes | None:
    """The first ``n`` bytes of block ``name`` (fewer if it is smaller); None if it is gone or
    not this user's."""
    try:
        if fast():
            fd = _posixshmem.shm_open("/" + name, os.O_RDONLY, mode=0o600)
            try:
                return os.pread(fd, n, 0)
            finally:
                os.close(fd)
        block = _PortableBlock(_shared_memory(name, False, 0))
    except (FileNotFoundError, PermissionError):
        return None
    try:
        return bytes(block.buf[:n])
    finally:
        block.close()


def unlink_block(name: str) -> None:
    """Remove block ``name``'s name (nothing if gone; nothing on Windows, see above)."""
    if _POSIX:
        try:
            _posixshmem.shm_unlink("/" + name)
        except FileNotFoundError:
            pass
