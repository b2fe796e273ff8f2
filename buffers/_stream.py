"""Copy frames into shared memory with non-temporal ("streaming") stores.

A frame of hundreds of KiB that goes to a ring larger than the caches is read next by another
process, on another core: loading its destination lines into this core's cache first, as a
plain ``memcpy`` does (read for ownership), only costs memory bandwidth. Non-temporal stores
write whole lines straight to memory, which moves a 512x512 uint16 frame into shared memory
about 1.4x as fast as ``np.copyto`` on the x86 machines we measured
(``benchmarks/bench_videobuffer.py``). A fence ends the copy, so the stores are visible before
anything the caller publishes after it.

The kernel (:mod:`buffers._stream_kernel`) is compiled by numba once, cached on disk, and
imported on the first streamed copy (numba takes ~0.5 s to import); numba stays optional for
``buffers``, which copies plainly without it. It is used only on x86-64,
for slots of at least :data:`STREAM_MIN_BYTES` at 16-byte aligned addresses; everything else
goes through ``np.copyto``.
"""

import logging
import platform
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
