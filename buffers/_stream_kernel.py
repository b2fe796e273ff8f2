"""The numba kernel of :mod:`buffers._stream` (a module of its own: numba is slow to import)."""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._fence_kernel import fence_seq_cst

_VEC = ir.VectorType(ir.IntType(64), 2)  # 16 bytes: SSE2 movntdq, on every x86-64


@intrinsic
def _store16(typingctx, dst, src, offset):
    """``dst[offset:offset+16] = src[offset:offset+16]``, the store non-temporal."""

    def codegen(context, builder, signature, args):
        d, s, off = args
        dptr = context.make_array(signature.args[0])(context, builder, d).data
        sptr = context.make_array(signature.args[1])(context, builder, s).data
        value = builder.load(builder.bitcast(builder.gep(sptr, [off]), _VEC.as_pointer()), align=1)
        store = builder.store(
            value, builder.bitcast(builder.gep(dptr, [off]), _VEC.as_pointer()), align=16
        )
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return types.void(dst, src, offset), codegen


@njit(cache=True, nogil=True)
def stream(dst, src):
    """Copy uint8 array ``src`` to ``dst`` (same size, ``dst`` 16-byte aligned), streaming."""
    n = dst.size
    i = 0
    while i + 64 <= n:  # a cache line per turn
        _store16(dst, src, i)
        _store16(dst, src, i + 16)
        _store16(dst, src, i + 32)
        _store16(dst, src, i + 48)
        i += 64
    while i + 16 <= n:
        _store16(dst, src, i)
        i += 16
    while i < n:
        dst[i] = src[i]
        i += 1
    fence_seq_cst()  # the streaming stores are globally visible after it


_probe = np.zeros(16, np.uint8)
stream(_probe, _probe)  # load the (cached) machine code now, not on the first frame
_probe_ro = np.zeros(16, np.uint8)
_probe_ro.flags.writeable = False
stream(_probe, _probe_ro)  # and that of read-only frames (``bytes``, a numba type of its own)
