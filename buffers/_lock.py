"""The lock every buffer takes: one per segment, that the kernel frees when its holder dies.

A :class:`SegmentLock` is an OS file lock (:mod:`buffers._platform._filelock`: ``flock``, or
``msvcrt.locking`` on Windows) on the segment's lock file in the registry directory, behind a
thread lock. It needs nothing passed from process to process, so:

- a process that is not a child of the run (``magacq view``) excludes, and is excluded by, the
  run's processes, just by attaching;
- a holder that dies, even by SIGKILL, releases it: the OS drops a file lock when its holder's
  descriptor closes, which process exit does. Nobody deadlocks.

Within one process all attachments of one segment share one lock (a reentrant thread lock plus
one open file), so a thread may hold it through two attachments at once (``locks={name:
other.lock}``) without deadlocking itself. After ``fork`` a child closes the files it inherited
(they must not keep a dead parent's lock held) and opens its own on first use.

What the dying holder was changing is another matter: each buffer marks a change in progress in
the segment (an odd sequence counter, a dirty word) with a journal to roll it back, and repairs
it in a hook that runs whenever a process takes the lock first (see :class:`BufferLock`).

:class:`BufferLock` (a buffer's ``lock`` attribute) is that SegmentLock, preceded by the
caller's own lock when the reference-style ``locks`` dict has one for the buffer: reference code
that takes ``locks[name]`` around its own steps still excludes the buffer's calls. Only the
SegmentLock part survives its holder's death; a ``multiprocessing`` lock passed in does not.
"""

import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._platform import after_fork_in_child, lock, try_lock, unlock

_POLL_S = 0.0005
# a held lock is retried this long before sleeping in the kernel (not on one CPU: the holder
# could not run meanwhile)
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_SPIN_S = 100e-6 if (_CPUS or 1) > 1 else 0.0


def _lock_ex(fd: int) -> None:
    """Lock ``fd``'s file, retrying briefly before it blocks.

    The buffers' sections last microseconds (a frame copy, tens): a waiter that sleeps in the
    kernel instead is woken only after a scheduling delay, during which the holder, wanting
    the lock back, sleeps too. Retrying for up to ``_SPIN_S`` hands the lock over at once.
    """
    if try_lock(fd):
        return
    deadline = time.perf_counter() + _SPIN_S
    while time.perf_counter() < deadline:
        if try_lock(fd):
            return
    lock(fd)


def _acquire_spinning(lock: Any) -> None:
    """``lock.acquire()`` (a caller's multiprocessing lock), retried briefly before it blocks.

    For the same reason as :func:`_lock_ex`: a waiter asleep in the kernel is woken only after
    the holder, back for the next frame, has taken the lock again; the holder pays the wake-up.
    """
    if lock.acquire(False):
        return
    deadline = time.perf_counter() + _SPIN_S
    while time.perf_counter() < deadline:
        if lock.acquire(False):
            return
    lock.acquire()


class _Shared:
    """The per-process state of one segment's lock."""

    __slots__ = ("depth", "fd", "refs", "rlock")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.rlock = threading.RLock()
        self.depth = 0  # acquisitions by the thread holding rlock; file locked while > 0
        self.refs = 0


_registry: dict[tuple[str, int, int], _Shared] = {}
_registry_lock = threading.Lock()
_generation = 1  # bumped in a forked child: every SegmentLock then binds anew


def _after_fork_in_child() -> None:
    """Drop the inherited files: a dead parent's lock must not live on in a child."""
    global _registry_lock, _generation
    for shared in _registry.values():
        try:
            os.close(shared.fd)
        except OSError:
            pass
    _registry.clear()
    _registry_lock = threading.Lock()
    _generation += 1


after_fork_in_child(_after_fork_in_child)


class SegmentLock:
    """Exclusive lock on a segment across threads, attachments and processes.

    Parameters
    ----------
    path : Path
        The segment's lock file (it exists while the segment does).
    name : str
        For messages.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self._path: Path | None = path
        self._generation = 0  # 0: not bound (or closed: then _path is None)
        self._shared: _Shared = self._bind()

    def _bind(self) -> _Shared:
        """This process's shared state for the segment (first use, or first use after fork)."""
        if self._path is None:
            raise ValueError(f"lock of {self.name!r} is closed")
        try:
            fd = os.open(self._path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise FileNotFoundError(f"shared buffer {self.name!r} was removed") from None
        st = os.fstat(fd)
        key = (str(self._path), st.st_dev, st.st_ino)  # a recreated segment: a new file
        with _registry_lock:
            shared = _registry.get(key)
            if shared is None:
                shared = _registry[key] = _Shared(fd)
            else:
                os.close(fd)
            shared.refs += 1
            self._key = key
            self._shared, self._generation = shared, _generation
        return shared

    @property
    def depth(self) -> int:
        """How many times the calling thread holds it (valid for the holder only)."""
        return self._shared.depth if self._generation == _generation else 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock; True when taken (always, when blocking without timeout)."""
        shared = self._shared if self._generation == _generation else self._bind()
        if not shared.rlock.acquire(blocking, timeout):
            return False
        if shared.depth == 0:
            try:
                if blocking and timeout < 0:
                    _lock_ex(shared.fd)
                elif not self._lock(shared.fd, blocking, timeout):
                    shared.rlock.release()
                    return False
            except BaseException:
                shared.rlock.release()
                raise
        shared.depth += 1
        return True

    @staticmethod
    def _lock(fd: int, blocking: bool, timeout: float) -> bool:
        deadline = time.monotonic() + (timeout if blocking else 0)
        while not try_lock(fd):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def release(self) -> None:
        shared = self._shared
        if shared.depth <= 0:
            raise RuntimeError(f"lock of {self.name!r} released but not held")
        shared.depth -= 1
        if shared.depth == 0:
            unlock(shared.fd)
            if shared.refs <= 0:  # closed while held: the description goes now
                os.close(shared.fd)
        shared.rlock.release()

    def __enter__(self) -> "SegmentLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Forget the segment; the shared description closes with its last user here."""
        if self._path is None:
            return
        self._path = None
        bound, self._generation = self._generation == _generation, 0
        if not bound:
            return
        shared = self._shared
        with _registry_lock:
            shared.refs -= 1
            if shared.refs <= 0 and _registry.get(self._key) is shared:
                del _registry[self._key]
                if shared.depth == 0:
                    os.close(shared.fd)

    def __repr__(self) -> str:
        return f"SegmentLock({self.name!r})"


class BufferLock:
    """A buffer's ``lock``: the caller's lock (if any), then the segment's.

    Parameters
    ----------
    segment_lock : SegmentLock
        The buffer's own lock.
    outer : lock, optional
        The caller's lock for this buffer (``locks[name]`` of the reference API), taken first.
    repair : callable, optional
        Run after taking the SegmentLock when this process did not already hold it and
        ``dirty`` says so: a buffer rolls back there a change left half-done by a holder that
        died. A bound method is held weakly (the buffer holds its lock; no reference cycle).
    dirty : (memoryview, int), optional
        The shared word whose low bit marks a change in progress; without it, ``repair`` runs
        on every first acquisition.
    """

    __slots__ = ("_dirty", "_outer", "_repair", "segment_lock")

    def __init__(
        self,
        segment_lock: SegmentLock,
        outer: Any = None,
        repair: Callable[[], None] | None = None,
        dirty: tuple[memoryview, int] | None = None,
    ) -> None:
        self.segment_lock = segment_lock
        self._outer = outer
        self._dirty = dirty
        self._repair: Callable[[], Callable[[], None] | None] | None = None
        if repair is not None:
            self._repair = (
                weakref.WeakMethod(repair) if hasattr(repair, "__self__") else lambda: repair
            )

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        outer = self._outer
        if outer is not None:
            got = outer.acquire(blocking) if timeout is None else outer.acquire(blocking, timeout)
            if not got:
                return False
        seg = self.segment_lock
        try:
            if not seg.acquire(blocking, -1 if timeout is None else timeout):
                if outer is not None:
                    outer.release()
                return False
        except BaseException:
            if outer is not None:
                outer.release()
            raise
        if self._repair is not None and seg._shared.depth == 1:
            dirty = self._dirty
            if dirty is None or dirty[0][dirty[1]] & 1:
                try:
                    repair = self._repair()
                    if repair is not None:
                        repair()
                except BaseException:
                    self.release()
                    raise
        return True

    def release(self) -> None:
        self.segment_lock.release()
        if self._outer is not None:
            self._outer.release()

    def __enter__(self) -> "BufferLock":
        # acquire(), inlined: this runs on every consumer section
        outer = self._outer
        if outer is not None:
            _acquire_spinning(outer)
        seg = self.segment_lock
        try:
            shared = seg._shared if seg._generation == _generation else seg._bind()
            shared.rlock.acquire()
            if shared.depth:
                shared.depth += 1
                return self
            try:
                _lock_ex(shared.fd)
            except BaseException:
                shared.rlock.release()
                raise
            shared.depth = 1
        except BaseException:
            if outer is not None:
                outer.release()
            raise
        dirty = self._dirty
        if self._repair is not None and (dirty is None or dirty[0][dirty[1]] & 1):
            try:
                repair = self._repair()
                if repair is not None:
                    repair()
            except BaseException:
                self.release()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        shared = self.segment_lock._shared
        if shared.depth == 1:
            shared.depth = 0
            unlock(shared.fd)
            if shared.refs <= 0:  # closed while held: the description goes now
                os.close(shared.fd)
        elif shared.depth > 1:
            shared.depth -= 1
        else:
            raise RuntimeError(f"lock of {self.segment_lock.name!r} released but not held")
        shared.rlock.release()
        if self._outer is not None:
            self._outer.release()

    def detach(self) -> None:
        """Drop the views into the segment (before it is unmapped) and close the SegmentLock."""
        self._dirty = None
        self._repair = None
        self.segment_lock.close()

    def __repr__(self) -> str:
        outer = "" if self._outer is None else f", outer={self._outer!r}"
        return f"BufferLock({self.segment_lock.name!r}{outer})"


def make_buffer_lock(
    locks: dict[str, Any] | None,
    name: str,
    path: Path,
    repair: Callable[[], None] | None = None,
    dirty: tuple[memoryview, int] | None = None,
) -> BufferLock:
    """The ``lock`` of buffer ``name`` whose segment's lock file is ``path``."""
    outer = None if locks is None else locks.get(name)
    return BufferLock(SegmentLock(path, name), outer, repair, dirty)
