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

The kernel (:mod:`buffers._stream_kernel`) is compiled by numba once and cached on disk.
Numba takes ~0.4 s to import, which a camera's first frame must not wait for: the first copy
starts loading it in a thread of its own (:func:`load_kernel`, 20 ms later) and is plain, as are
the copies until it is loaded (a frame written meanwhile may wait some ms for the interpreter;
a ``fork`` meanwhile waits for the thread: a child must not inherit a half-done import). Numba
stays optional for ``buffers``, which copies plainly without it. It is used only on x86-64, for
slots of at least :data:`STREAM_MIN_BYTES` at 16-byte aligned addresses; everything else goes
through ``np.copyto``.
"""

import _thread
import atexit
import logging
import platform
import threading
import time
from collections.abc import Callable

import numpy as np

from ._platform import before_fork

#: Smaller frames stay in the cache for the consumer, which then reads them faster.
STREAM_MIN_BYTES = 256 * 1024
_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
_log = logging.getLogger("buffers")
#: The streaming kernel once loaded (``np.copyto`` where numba is missing); None until then.
_kernel: Callable[[np.ndarray, np.ndarray], None] | None = None
_loading: threading.Event | None = None  # set once the loading thread is done
_loader_ident = 0
_LOAD_DELAY_S = 0.02


def _load(delay: float = 0.0) -> None:
    global _kernel
    time.sleep(delay)
    try:
        from ._stream_kernel import stream as kernel
    except ImportError:  # buffers needs only numpy: without numba, a plain copy
        _log.warning("buffers: numba not importable; frames are copied without streaming")
        kernel = np.copyto  # type: ignore[assignment]
    _kernel = kernel


def _load_then_signal(done: threading.Event) -> None:
    global _loader_ident
    _loader_ident = threading.get_ident()
    try:
        # the import holds the interpreter for tens of ms at a time: not before the first
        # copy's write has returned
        _load(_LOAD_DELAY_S)
    finally:
        done.set()


def load_kernel() -> None:
    """Start loading the streaming kernel in a thread, once per process; return at once.

    A low-level thread: ``threading.Thread.start`` waits until the thread runs, milliseconds
    on a busy machine. Forks and the interpreter's exit wait for it (:func:`wait_for_kernel`).
    """
    global _loading
    if _kernel is None and _loading is None:
        _loading = threading.Event()
        _thread.start_new_thread(_load_then_signal, (_loading,))


def wait_for_kernel() -> None:
    """Wait until the loading thread, if one was started, is done (not in that thread: a fork
    there, had the import one, would wait for itself)."""
    if _loading is not None and threading.get_ident() != _loader_ident:
        _loading.wait()


before_fork(wait_for_kernel)
atexit.register(wait_for_kernel)


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
    stores, then fence; the kernel is loaded first if need be (waiting for it)."""
    if _kernel is None:
        _load()
    _kernel(dst_u8, src_u8)  # type: ignore[misc]


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
        kernel = _kernel
        if kernel is None:  # still loading: a plain copy, untimed
            np.copyto(dst_u8, src_u8)  # (may release the GIL: not to a thread just started)
            load_kernel()
            return
        self._n += 1
        stream = self._stream != (self._n % EXPLORE_EVERY == 0)
        t = time.perf_counter()
        if stream:
            kernel(dst_u8, src_u8)
        else:
            np.copyto(dst_u8, src_u8)
        dt = time.perf_counter() - t
        cost, k = self._cost, int(stream)
        cost[k] = dt if not cost[k] else cost[k] + (min(dt, 2 * cost[k]) - cost[k]) / 8
        if cost[0] and cost[1]:
            self._stream = cost[1] < cost[0]
