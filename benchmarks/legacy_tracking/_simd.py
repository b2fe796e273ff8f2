"""Vector instructions LLVM does not choose by itself for scattered look-ups; aligned scratch.

LLVM leaves scattered loads scalar on CPUs whose gathers are slow (AMD Zen among them). Two
ways around that: a table of 32 floats fits in two AVX-512 registers, and one ``vpermi2ps``
looks up 16 entries at once (:func:`take`; 16 scalar loads where the compile target lacks
AVX-512); and two neighbouring floats come in one 8-byte load (:func:`load_pair`).

numba's arrays start 32 bytes past a 64-byte line: every 64-byte vector load of them spans
two cache lines (template_fit: 3.4 against 2.4 us). :func:`aligned_empty` starts on a line.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: Bytes of a cache line, and of an AVX-512 vector.
ALIGN = 64
#: Entries of a table :func:`take` looks up by permutes.
TABLE = 32
#: Look-ups per permute: scratch lengths are multiples of this.
LANES = 16

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_VF = ir.VectorType(_F32, LANES)
_VI = ir.VectorType(_I32, LANES)


def _has_avx512(context) -> bool:
    """Whether numba compiles for a CPU with AVX-512 (its target machine's feature string)."""
    features = getattr(context.codegen(), "_tm_features", "")  # numba's; none: scalar loads
    return "+avx512f" in features.split(",")


@intrinsic
def _take16(typingctx, table, idx, out, start):
    """``out[start + l] = table[idx[start + l]]`` for 16 lanes ``l``; ``table`` of 32 float32."""
    sig = types.void(table, idx, out, start)

    def codegen(context, builder, signature, args):
        tab, ix, dst = (
            context.make_array(t)(context, builder, a)
            for t, a in zip(signature.args[:3], args[:3], strict=True)
        )
        st = args[3]
        src = builder.gep(ix.data, [st])
        res = builder.gep(dst.data, [st])
        if _has_avx512(context):
            tp = builder.bitcast(tab.data, _VF.as_pointer())
            lo = builder.load(tp, align=4)
            hi = builder.load(builder.gep(tp, [ir.Constant(_I32, 1)]), align=4)
            iv = builder.load(builder.bitcast(src, _VI.as_pointer()), align=4)
            fn = builder.module.declare_intrinsic(
                "llvm.x86.avx512.vpermi2var.ps.512", fnty=ir.FunctionType(_VF, [_VF, _VI, _VF])
            )
            builder.store(
                builder.call(fn, [lo, iv, hi]), builder.bitcast(res, _VF.as_pointer()), align=4
            )
        else:
            for lane in range(LANES):
                k = builder.load(builder.gep(src, [ir.Constant(_I32, lane)]))
                v = builder.load(builder.gep(tab.data, [k]))
                builder.store(v, builder.gep(res, [ir.Constant(_I32, lane)]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def load_pair(typingctx, arr, k):
    """``(arr[k], arr[k + 1])`` of a 1-d float32 array in one 8-byte load (unaligned)."""
    sig = types.UniTuple(types.float32, 2)(arr, k)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        vp = builder.bitcast(builder.gep(a.data, [args[1]]), ir.VectorType(_F32, 2).as_pointer())
        v = builder.load(vp, align=4)
        pair = [builder.extract_element(v, ir.Constant(_I32, lane)) for lane in range(2)]
        return context.make_tuple(builder, signature.return_type, pair)

    return sig, codegen


@njit(cache=True)
def take(table: np.ndarray, idx: np.ndarray, out: np.ndarray, m: int) -> None:
    """``out[q] = table[idx[q]]`` for ``q < m``, whole blocks of ``LANES`` at a time.

    ``table`` float32 of ``TABLE`` entries (any other length: scalar loads), ``idx`` int32 in
    range, ``out`` float32; ``idx`` and ``out`` hold at least ``m`` rounded up to ``LANES``,
    ``idx`` valid there too.
    """
    if table.shape[0] == TABLE:
        for s in range(0, m, LANES):
            _take16(table, idx, out, s)
    else:
        for q in range(m):
            out[q] = table[idx[q]]


@njit(cache=True)
def aligned_empty(n: int, dtype) -> np.ndarray:
    """An uninitialised 1-d array of ``n`` elements of ``dtype`` that starts on a cache line."""
    item = np.empty(1, dtype).itemsize
    buf = np.empty(n + ALIGN // item, dtype)
    off = (-buf.ctypes.data % ALIGN) // item
    return buf[off : off + n]


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` that starts on a cache line."""
    out = aligned_empty(a.size, a.dtype.type).reshape(a.shape)
    out[...] = a
    return out
