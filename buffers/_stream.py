"""Copy frames into shared memory with non-temporal ("streaming") stores.

A frame of hundreds of KiB that goes to a ring larger than the caches is read next by another
process, on another core: loading its destination lines into this core's cache first, as a
plain ``memcpy`` does (read for ownership), only costs memory bandwidth. Non-temporal stores
write whole lines straight to memory, which moves a 512x512 uint16 frame into shared memory
up to 2x as fast as ``np.copyto`` when other processes keep the caches and memory busy. On a
quiet machine whose last-level cache holds much of the ring, plain stores win instead (0.6x
for streaming, measured on a 2-core EPYC VM with 32 MiB of L3). :class:`CopyChooser` therefore
times the copies and takes the faster way as the machine changes. A fence ends a streamed copy,
so the stores are visible before anything the caller publishes after it.

The kernel (:mod:`buffers._stream_kernel`) is compiled by numba once, cached on disk, and
imported on the first streamed copy (numba takes ~0.5 s to import); numba stays optional for
``buffers``, which copies plainly without it. It is used only on x86-64,
for slots of at least :data:`STREAM_MIN_BYTES` at 16-byte aligned addresses; everything else
goes through ``np.copyto``.
"""

import logging
import platform
import time
from collections.abc import Callable

import numpy as np

#: Smaller frames stay in the cache for the consumer, which then reads them faster.
STREAM_MIN_BYTES = 256 * 1024
_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
_log = logging.getLogger("buffers")
_kernel: Callable[[np.ndarray, np.ndarray], None] | None = None


def slots_stream(slots_u8: np.ndarray) -> bool:
    """Whether copies into the rows of ``slots_u8`` (n_slots, slot_bytes) should stream."""
    n_bytes = slots_u8.shape[1]
    return (
        _X86_64
        and n_bytes >= STREAM_MIN_BYTES
        and n_bytes % 16 == 0
        and slots_u8.ctypes.data % 16 == 0
        and slots_u8.flags.c_contiguous
    )


def stream_copy(dst_u8: np.ndarray, src_u8: np.ndarray) -> None:
    """Copy 1-D uint8 ``src_u8`` into ``dst_u8`` (same size, 16-byte aligned) with streaming
    stores, then fence."""
    global _kernel
    if _kernel is None:
        try:
            from ._stream_kernel import stream as _kernel
        except ImportError:  # buffers needs only numpy: without numba, a plain copy
            _log.warning("buffers: numba not importable; frames are copied without streaming")
            _kernel = np.copyto
    _kernel(dst_u8, src_u8)


#: One copy in this many goes the way not chosen, to keep measuring it.
EXPLORE_EVERY = 32
#: Once plain copies win, one in this many is timed (the others: :meth:`CopyChooser.untimed`).
TIME_EVERY = 8


class CopyChooser:
    """Copies frames into slots that :func:`slots_stream` accepts, streamed or plainly,
    whichever has lately been faster.

    Each copy is timed (two clock reads); a running mean per way (a spike, such as a
    preemption, counts at most twice the mean) decides the next copies, and one copy in
    :data:`EXPLORE_EVERY` goes the other way. Streaming first: it needs no warm-up.
    """

    __slots__ = ("_cost", "_n", "_stream", "_untimed")

    def __init__(self) -> None:
        self._cost = [0.0, 0.0]  # plain, streamed: seconds per copy
        self._n = 0
        self._stream = True
        self._untimed = 0

    def untimed(self) -> bool:
        """True when the next copy should be a plain one the caller makes itself, untimed:
        plain is the faster way, and this is not one of the copies that keep it measured."""
        if self._stream:
            return False
        self._untimed += 1
        return self._untimed % TIME_EVERY != 0

    @property
    def streaming(self) -> bool:
        """The way the next copies go (apart from the exploring ones)."""
        return self._stream

    def copy(self, dst_u8: np.ndarray, src_u8: np.ndarray) -> None:
        """Copy 1-D uint8 ``src_u8`` into ``dst_u8`` (same size, 16-byte aligned)."""
        self._n += 1
        stream = self._stream != (self._n % EXPLORE_EVERY == 0)
        t = time.perf_counter()
        if stream:
            stream_copy(dst_u8, src_u8)
        else:
            np.copyto(dst_u8, src_u8)
        dt = time.perf_counter() - t
        cost, k = self._cost, int(stream)
        cost[k] = dt if not cost[k] else cost[k] + (min(dt, 2 * cost[k]) - cost[k]) / 8
        if cost[0] and cost[1]:
            self._stream = cost[1] < cost[0]
