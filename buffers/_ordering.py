"""Memory fences from Python, for the buffers' lock-free hand-offs.

- :func:`release_fence`: every load and store before it happens before every store after it. A
  writer calls it between filling a slot (or marking a seqlock odd) and the store that
  publishes (the slot's sequence word, the frame total, the seqlock's even value).
- :func:`acquire_fence`: every load before it happens before every load and store after it. A
  reader calls it between loading a published word (a frame total, a sequence counter) and
  reading what it guards, and between that reading and re-checking the counter.
- :func:`full_fence`: also orders a store before a later load: two processes that each store
  a word and then load the other's (a producer publishing a frame, then looking for waiters; a
  waiter registering, then looking for frames) need it, or each may miss the other.

How, by CPU (chosen once, logged):

- x86-64 (Linux, Windows, Intel Macs): stores stay in order and loads stay in order (TSO), so
  release and acquire need no instruction, only program order, which CPython keeps (each
  access to shared memory is a call of its own). Only a store-load needs a fence: any locked
  instruction is one, and an uncontended ``threading.Lock`` round trip executes one (a CAS on
  its word), for about 0.1 us.
- every other CPU (arm64: Apple Silicon, Windows on Arm, Linux aarch64), and x86-64 with
  ``MAGACQ_PORTABLE=1``: a real fence instruction for all three (numba's ``fence seq_cst``,
  :mod:`buffers._fence_kernel`: ``dmb ish`` on arm64), about 0.2 us a call. A lock round trip
  is not one on arm64: its acquire and release let a later load pass an earlier store.
"""

import logging
import platform
import threading
from collections.abc import Callable

from ._platform import after_fork_in_child, choose

_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
_lock = threading.Lock()
_log = logging.getLogger("buffers")


def _lock_round_trip() -> None:
    _lock.acquire()
    _lock.release()


def _nothing() -> None:
    pass


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


after_fork_in_child(_after_fork_in_child)


def _fences(x86_64: bool) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """(release, acquire, full) for a CPU that is x86-64 or not.

    Raises ImportError off x86-64 without numba: no fence would be correct there.
    """
    tso = _nothing, _nothing, _lock_round_trip
    if choose("memory fences", x86_64, "x86-64 store order + locked instruction", "fence"):
        return tso
    try:
        from ._fence_kernel import fence
    except ImportError as e:
        if not x86_64:
            raise ImportError(f"buffers needs numba for memory fences on this CPU: {e}") from e
        _log.info("memory fences: numba not importable; x86-64 store order instead")
        return tso
    return fence, fence, fence


release_fence, acquire_fence, full_fence = _fences(_X86_64)
