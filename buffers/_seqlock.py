"""A sequence counter in a shared header word, so that readers never keep a torn copy.

Writers already exclude each other with the caller's lock. The counter protects readers that
cannot hold that lock: a process that attached from outside the run (the viewer) has only a
private lock, because a ``multiprocessing`` lock is passed down to children, never looked up.
A writer makes the counter odd before it changes anything and even again after; a reader copies,
and keeps the copy only if the counter was even and unchanged across it. Readers that do hold
the shared lock never retry. (x86 keeps stores in order and loads in order, which is all this
needs; the other buffers rely on the same.)
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Lock
from typing import TypeVar

T = TypeVar("T")

#: How long a reader waits for a writer to finish before concluding it died mid-write.
STUCK_WRITER_S = 2.0


def lock_for(locks: dict[str, Lock], name: str) -> Lock:
    """The lock for buffer ``name`` in ``locks``, with a clear error when it is missing."""
    try:
        return locks[name]
    except KeyError:
        raise KeyError(f"locks has no entry for buffer {name!r}") from None


@contextmanager
def writing(words: memoryview, index: int) -> Iterator[None]:
    """Mark ``words[index]`` odd for the duration of a change (the caller holds the lock)."""
    words[index] += 1
    try:
        yield
    finally:
        words[index] += 1


def consistent_copy(words: memoryview, index: int, copy: Callable[[], T], what: str) -> T:
    """Run ``copy`` until it ran entirely between two changes; return its result.

    Raises
    ------
    TimeoutError
        A writer stayed mid-change for :data:`STUCK_WRITER_S` (it died holding the lock).
    """
    deadline = None
    while True:
        before = words[index]
        if not before & 1:
            result = copy()
            if words[index] == before:
                return result
        if deadline is None:
            deadline = time.monotonic() + STUCK_WRITER_S
        elif time.monotonic() > deadline:
            raise TimeoutError(f"{what}: a writer has been mid-change for {STUCK_WRITER_S} s")
        time.sleep(0)  # let the writer finish
