"""A full memory fence from Python, for the buffers' lock-free hand-offs.

Two processes that each store a word and then load the other's (a producer publishing a frame,
then looking for waiters; a waiter registering, then looking for frames) need a store-load
fence between the two, or each may miss the other (x86 keeps stores in order and loads in
order, but lets a load pass an earlier store). On x86 every locked instruction is a full fence,
and an uncontended ``threading.Lock`` round trip executes one (CPython's lock is a CAS on its
word: ``sem_trywait`` / ``sem_post`` or ``PyMutex``), for about 0.1 us.
"""

import os
import threading

_lock = threading.Lock()


def full_fence() -> None:
    """Order every store before this call before every load after it (on x86)."""
    _lock.acquire()
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
