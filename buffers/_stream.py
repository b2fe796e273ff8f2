"""Copy a frame into shared memory with non-temporal ("streaming") stores.

A frame of hundreds of KiB that goes to a ring larger than the caches is read next by another
process, on another core: loading its destination lines into this core's cache first, as a
plain ``memcpy`` does (read for ownership), only costs memory bandwidth. Non-temporal stores
write whole lines straight to memory, which moves a 512x512 uint16 frame into shared memory
about 1.5x as fast as ``np.copyto`` on the x86 machines we measured
(``benchmarks/bench_videobuffer.py``). A fence ends the copy, so the stores are visible before
anything the caller publishes after it.

The kernel is compiled by numba on first use (cached on disk). It is used only on x86-64, for
frames of at least :data:`STREAM_MIN_BYTES` at a 16-byte aligned destination; everything else
goes through ``np.copyto``.
"""

import platform

import numpy as np

#: Smaller frames stay in the cache for the consumer, which then reads them faster.
STREAM_MIN_BYTES = 256 * 1024
_X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def copy_frame(dst: np.ndarray, src: np.ndarray) -> None:
    """``np.copyto(dst, src, casting="no")`` into a C-contiguous ``dst``, streamed when that is
    faster (large frame, aligned destination, x86-64, ``src`` of the same layout)."""
    if not (
        _X86_64
        and dst.nbytes >= STREAM_MIN_BYTES
        and dst.ctypes.data % 16 == 0
        and src.flags.c_contiguous
        and src.dtype == dst.dtype
        and src.shape == dst.shape
    ):
        np.copyto(dst, src, casting="no")
        return
    from ._stream_kernel import stream  # first call: numba import, cached kernel

    stream(dst.reshape(-1).view(np.uint8), src.reshape(-1).view(np.uint8))
