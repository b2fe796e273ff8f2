"""A sequence counter in a shared header word, so that lock-free readers never keep a torn copy.

Writers exclude each other with the buffer's lock (:mod:`buffers._lock`). A writer makes the
counter odd before it changes anything and even again after; a lock-free reader copies, and
keeps the copy only if the counter was even and unchanged across it. Readers that hold the lock
never retry: under the lock the counter is even, because taking the lock rolls back a change
that a dead writer left half-done (its counter stays odd). A lock-free reader that keeps finding
the counter odd therefore takes the lock once, which repairs, and copies under it. Writers fence
(release) after making it odd and before making it even; readers fence (acquire) around their
copy (:mod:`buffers._ordering`).
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ._ordering import acquire_fence

T = TypeVar("T")

#: Failed lock-free attempts before a reader falls back to taking the lock.
LOCK_FREE_TRIES = 200


def consistent_copy(
    words: Any, index: int, copy: Callable[[], T], lock: AbstractContextManager[Any]
) -> T:
    """Run ``copy`` until it ran entirely between two changes; return its result.

    Lock-free first; after :data:`LOCK_FREE_TRIES` failed attempts (a busy or dead writer),
    under ``lock`` (which repairs a dead writer's change first).
    """
    for _ in range(LOCK_FREE_TRIES):
        before = words[index]
        if not before & 1:
            acquire_fence()
            result = copy()
            acquire_fence()
            if words[index] == before:
                return result
    with lock:
        return copy()
