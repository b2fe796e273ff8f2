"""Named shared-memory blocks: create, attach, unlink, and read a header without mapping.

Two ways, one interface (:class:`Block`):

- portable (macOS, Windows, and Linux with ``MAGACQ_PORTABLE=1``): the standard library's
  ``multiprocessing.shared_memory.SharedMemory``, not tracked by ``multiprocessing``'s resource
  tracker (the owner unlinks its blocks, or a sweep of the registry does), its pages touched
  once when asked to populate;
- Linux's fast path (:mod:`._shm_linux`): ``shm_open`` and ``mmap(MAP_POPULATE)``.

Both name a POSIX shared-memory object where there is one, so processes on either way share
blocks. On Windows a block lives while a process has it open; it cannot outlive them, and
unlinking does nothing.
"""

import mmap
import os
import sys
import threading
import time
from collections.abc import Sized
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from ._choice import choose

_TRACK_ARG = sys.version_info >= (3, 13)  # SharedMemory(track=False)


class Block:
    """A mapped block. ``buf`` is a writable memoryview of all of it; :meth:`close` unmaps
    (every view taken from ``buf`` released first, else BufferError)."""

    buf: memoryview

    def close(self) -> None:
        raise NotImplementedError


def fast() -> bool:
    """Whether Linux's fast path is taken (not forced off by ``MAGACQ_PORTABLE``)."""
    return choose(
        "shared memory",
        sys.platform.startswith("linux") and hasattr(os, "pread"),
        "shm_open + mmap(MAP_POPULATE)",
        "multiprocessing.shared_memory",
    )


class _SharedMemory(shared_memory.SharedMemory):
    """SharedMemory whose collection does not raise while views into it live on (the
    mapping then goes with the last view, as the fast path's does)."""

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, BufferError):
            pass


class PortableBlock(Block):
    """A block through the standard library."""

    def __init__(self, shm: shared_memory.SharedMemory, populate: bool, created: bool) -> None:
        assert shm.buf is not None  # open
        self._shm = shm
        self.buf = shm.buf
        if populate:  # MAP_POPULATE's work: a byte a page written (a new block) or read
            pages = np.frombuffer(self.buf, np.uint8)[:: mmap.PAGESIZE]
            if created:  # nobody else has it yet
                pages[:] = 0
            else:
                pages.sum()
            del pages

    def close(self) -> None:
        self._shm.close()


def _shared_memory(name: str, create: bool, size: int) -> shared_memory.SharedMemory:
    if _TRACK_ARG:
        return _SharedMemory(name, create, size, track=False)  # type: ignore[call-arg]
    if sys.platform == "win32":  # no resource tracker
        return _SharedMemory(name, create, size)
    # Python < 3.13 registers every SharedMemory, even attached, with the resource tracker,
    # which would unlink it when this process ends. Registering then unregistering races where
    # processes share one tracker (spawn): the tracker keeps a set of names, so one process's
    # unregister can come after another's and fail (a KeyError traceback). So: not registered.
    with _UNTRACKED:
        register = resource_tracker.register

        def all_but_blocks(resource: Sized, rtype: str) -> None:
            # meanwhile, what another thread registers (a semaphore) is registered still
            if rtype != "shared_memory":
                register(resource, rtype)

        resource_tracker.register = all_but_blocks  # type: ignore[assignment, unused-ignore]
        try:
            return _SharedMemory(name, create, size)
        finally:
            resource_tracker.register = register


_UNTRACKED = threading.Lock()


def create_block(name: str, size: int, populate: bool = False) -> Block:
    """Create and map block ``name`` of ``size`` zeroed bytes (mode 0600).

    Raises FileExistsError if there is one of that name.
    """
    if sys.platform.startswith("linux") and fast():
        from . import _shm_linux

        return _shm_linux.create_block(name, size, populate)
    return PortableBlock(_shared_memory(name, True, size), populate, created=True)


def attach_block(name: str, populate: bool = False) -> Block:
    """Map the existing block ``name``. Raises FileNotFoundError if there is none."""
    if sys.platform.startswith("linux") and fast():
        from . import _shm_linux

        return _shm_linux.attach_block(name, populate)
    return PortableBlock(_shared_memory(name, False, 0), populate, created=False)


def read_block(name: str, n: int) -> bytes | None:
    """The first ``n`` bytes of block ``name`` (fewer if it is smaller); None if it is gone or
    not this user's."""
    try:
        if sys.platform.startswith("linux") and fast():
            from . import _shm_linux

            return _shm_linux.read_block(name, n)
        block = PortableBlock(_shared_memory(name, False, 0), populate=False, created=False)
    except (FileNotFoundError, PermissionError):
        return None
    try:
        return bytes(block.buf[:n])
    finally:
        block.close()


def unlink_block(name: str) -> None:
    """Remove block ``name``'s name (nothing if gone; nothing on Windows, see above)."""
    if sys.platform != "win32":
        import _posixshmem  # type: ignore[import-not-found]  # CPython's, no stub

        try:
            _posixshmem.shm_unlink("/" + name)
        except FileNotFoundError:
            pass


def list_blocks(prefix: str) -> list[tuple[str, float]] | None:
    """This user's blocks named ``prefix...``, each with the seconds since it was last modified
    (at most its age); None where the platform cannot list them (macOS, Windows): only Linux
    shows its shared memory, in /dev/shm."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/dev/shm"):
        return None
    found, now, me = [], time.time(), os.getuid()
    with os.scandir("/dev/shm") as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # unlinked meanwhile
                continue
            if entry.name.startswith(prefix) and st.st_uid == me:
                found.append((entry.name, now - st.st_mtime))
    return found
