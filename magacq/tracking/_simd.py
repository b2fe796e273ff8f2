"""Vector instructions LLVM does not choose by itself; aligned scratch.

LLVM leaves scattered loads scalar on CPUs whose gathers are slow (AMD Zen among them; its
AVX-512 gathers measured slower than scalar loads there). Ways around that: a table of 32
floats fits in two AVX-512 registers, and one ``vpermi2ps`` looks up 16 entries at once
(:mod:`._fitpass`); and an image whose rows are interleaved in pairs (:func:`interleave_rows`)
holds a pixel's 2x2 neighbourhood in 4 contiguous elements, which :func:`copy_quad` moves in
one load and one store (bilinear sampling: one load per sample instead of two loads of
neighbours). Nor does LLVM keep a loop's vector accumulators in registers when they live in an
array: :func:`dot_rows` does. A short sum (a radial bin's samples) is left mostly to a scalar
remainder loop, a chain of dependent adds: :func:`segment_sum` masks its last vector instead.
LLVM sums each row of an image across its lanes on its own (4 levels of permutes a row):
:func:`tile_sums` sums 16 rows' vectors together. numba's ``np.argmax`` is scalar:
:func:`argmax` is two vector passes.

numba's arrays start 32 bytes past a 64-byte line: every 64-byte vector load of them spans
two cache lines (template_fit: 3.4 against 2.4 us). :func:`aligned_empty` starts on a line.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import RequireLiteralValue
from numba.extending import intrinsic

#: Bytes of a cache line, and of an AVX-512 vector.
ALIGN = 64
#: Entries of a table looked up by permutes (:mod:`._fitpass`).
TABLE = 32
#: float32 lanes of a vector: scratch lengths are multiples of this.
LANES = 16

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VF = ir.VectorType(_F32, LANES)
_VI = ir.VectorType(_I32, LANES)
_VB = ir.VectorType(ir.IntType(1), LANES)
#: The first and second halves of two vectors' lanes interleaved (each one ``vpermt2ps``).
_ZIP_LO, _ZIP_HI = (
    ir.Constant(_VI, [v for lane in range(h, h + LANES // 2) for v in (lane, lane + LANES)])
    for h in (0, LANES // 2)
)


def _has_feature(context, name: str) -> bool:
    """Whether numba compiles for a CPU with feature ``name`` (LLVM's: "avx512f", "avx2")."""
    features = getattr(context.codegen(), "_tm_features", "")  # numba's; none: scalar loads
    return f"+{name}" in features.split(",")


def _has_avx512(context) -> bool:
    """Whether numba compiles for a CPU with AVX-512."""
    return _has_feature(context, "avx512f")


def _splat(builder, x, vt):
    """Vector type ``vt`` with scalar ``x`` in every lane."""
    v = builder.insert_element(ir.Constant(vt, None), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(
        v, ir.Constant(vt, None), ir.Constant(ir.VectorType(_I32, vt.count), [0] * vt.count)
    )


@intrinsic
def _zip16(typingctx, src, k, w, dst):
    """``dst[2 (k + l)] = src[k + l]``, ``dst[2 (k + l) + 1] = src[k + w + l]``, 16 lanes ``l``
    (any element type, the same in both arrays)."""
    sig = types.void(src, k, w, dst)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        d = context.make_array(signature.args[3])(context, builder, args[3])
        vec = ir.VectorType(context.get_data_type(signature.args[0].dtype), LANES).as_pointer()
        k, w = args[1], args[2]
        lo = builder.load(builder.bitcast(builder.gep(a.data, [k]), vec), align=1)
        hi = builder.load(builder.bitcast(builder.gep(a.data, [builder.add(k, w)]), vec), align=1)
        out = builder.bitcast(builder.gep(d.data, [builder.add(k, k)]), vec)
        builder.store(builder.shuffle_vector(lo, hi, _ZIP_LO), out, align=1)
        second = builder.gep(out, [ir.Constant(_I32, 1)])
        builder.store(builder.shuffle_vector(lo, hi, _ZIP_HI), second, align=1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def interleave_rows(img: np.ndarray, pairs: np.ndarray) -> None:
    """``pairs[2 k] = img.flat[k]``, ``pairs[2 k + 1] = img.flat[k + w]`` for the first
    ``h - 1`` rows: pixel ``(j, i)`` and the three to its right and below it lie at
    ``pairs[2 (j w + i)]`` .. ``+ 3``, ordered ``(j, i), (j + 1, i), (j, i + 1), (j + 1, i + 1)``.

    ``img`` ``(h, w)``, C-contiguous; ``pairs`` of its type, at least ``2 h w`` long.
    """
    h, w = img.shape
    flat = img.reshape(img.size)
    n = (h - 1) * w
    full = n - n % LANES
    for k in range(0, full, LANES):
        _zip16(flat, k, w, pairs)
    for k in range(full, n):
        pairs[2 * k] = flat[k]
        pairs[2 * k + 1] = flat[k + w]


@intrinsic
def copy_quad(typingctx, src, k, dst, j):
    """``dst[j : j + 4] = src[k : k + 4]`` in one load and one store (any element type, the
    same in both arrays)."""
    sig = types.void(src, k, dst, j)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        d = context.make_array(signature.args[2])(context, builder, args[2])
        vec = ir.VectorType(context.get_data_type(signature.args[0].dtype), 4).as_pointer()
        v = builder.load(builder.bitcast(builder.gep(a.data, [args[1]]), vec), align=1)
        builder.store(v, builder.bitcast(builder.gep(d.data, [args[3]]), vec), align=1)
        return context.get_dummy_value()

    return sig, codegen


def _dot_rows_codegen(n_in: int):
    """Code of :func:`dot_rows` (``n_in = 1``) and :func:`dot_rows2` (``n_in = 2``): args are
    the ``n_in`` weightings, the table, the column, the ``n_in`` outputs, the blocks."""

    def codegen(context, builder, signature, args):
        ins = [context.make_array(t)(context, builder, v)
               for t, v in zip(signature.args[:n_in], args[:n_in], strict=True)]  # fmt: skip
        tv = context.make_array(signature.args[n_in])(context, builder, args[n_in])
        outs = [context.make_array(t)(context, builder, v) for t, v in
                zip(signature.args[n_in + 2 : 2 * n_in + 2], args[n_in + 2 : 2 * n_in + 2],
                    strict=True)]  # fmt: skip
        nb = signature.args[-1].literal_value
        rows, stride = cgutils.unpack_tuple(builder, tv.shape, 2)
        start = builder.gep(tv.data, [args[n_in + 1]])
        fnty = ir.FunctionType(_VF, [_VF] * 3)
        fma = builder.module.declare_intrinsic("llvm.fma.v16f32", fnty=fnty)
        # AVX-512 holds every accumulator in a register; AVX2, with 16 registers of half the
        # lanes, spills them: there the blocks take passes of 4 registers of sums each
        per_pass = nb if _has_avx512(context) else max(1, 2 // n_in)
        for first in range(0, nb, per_pass):
            blocks = range(first, min(nb, first + per_pass))
            accs = [[cgutils.alloca_once_value(builder, ir.Constant(_VF, [0.0] * LANES))
                     for _ in blocks] for _ in ins]  # fmt: skip
            with cgutils.for_range(builder, rows) as loop:
                r = loop.index
                row = builder.gep(start, [builder.mul(r, stride)])
                vs = [
                    builder.load(builder.bitcast(builder.gep(row, [ir.Constant(_I32, j * LANES)]),
                                                 _VF.as_pointer()), align=4)
                    for j in blocks
                ]  # fmt: skip
                for av, acc in zip(ins, accs, strict=True):
                    x = builder.load(builder.gep(av.data, [r]))
                    bx = _splat(builder, x, _VF)
                    for v, a in zip(vs, acc, strict=True):
                        builder.store(builder.call(fma, [bx, v, builder.load(a)]), a)
            for ov, acc in zip(outs, accs, strict=True):
                for j, a in zip(blocks, acc, strict=True):
                    dst = builder.gep(ov.data, [ir.Constant(_I32, j * LANES)])
                    builder.store(builder.load(a), builder.bitcast(dst, _VF.as_pointer()), align=4)
        return context.get_dummy_value()

    return codegen


@intrinsic
def dot_rows(typingctx, a, tab, col, out, blocks):
    """``out[l] = sum_r a[r] * tab[r, col + l]`` for ``l < 16 * blocks`` (``blocks`` a constant).

    The rows' weighted sum of a column window, in ``blocks`` vector accumulators that stay in
    registers (a loop over rows with one multiply-add per block: no reduction across lanes, and
    LLVM would keep such accumulators in memory). ``a`` float32 of ``tab.shape[0]``, ``tab``
    float32 C-contiguous, its window within each row; ``out`` float32.
    """
    if not isinstance(blocks, types.IntegerLiteral):
        raise RequireLiteralValue("blocks must be a constant")
    return types.void(a, tab, col, out, blocks), _dot_rows_codegen(1)


@intrinsic
def dot_rows2(typingctx, a, b, tab, col, out_a, out_b, blocks):
    """:func:`dot_rows` of two weightings of the same table in one pass: ``out_a`` from ``a``,
    ``out_b`` from ``b``, each summed in the same order as ``dot_rows`` would. The table's
    window is read once, and the two sets of accumulators are independent chains of
    multiply-adds (one set alone waits on the multiply-add's latency)."""
    if not isinstance(blocks, types.IntegerLiteral):
        raise RequireLiteralValue("blocks must be a constant")
    return types.void(a, b, tab, col, out_a, out_b, blocks), _dot_rows_codegen(2)


@intrinsic
def segment_sum(typingctx, a, start, stop):
    """``a[start:stop].sum()`` of float32 ``a`` (``0 <= start <= stop <= len(a)``), in any order:
    whole vectors, then the rest in one masked load (lanes past ``stop`` are not read)."""
    sig = types.float32(a, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        start, stop = args[1], args[2]
        n = builder.sub(stop, start)
        full = builder.lshr(n, ir.Constant(_I64, 4))
        base = builder.gep(arr.data, [start])
        zero = ir.Constant(_VF, [0.0] * LANES)
        acc = cgutils.alloca_once_value(builder, zero)
        with cgutils.for_range(builder, full) as loop:
            src = builder.gep(base, [builder.shl(loop.index, ir.Constant(_I64, 4))])
            v = builder.load(builder.bitcast(src, _VF.as_pointer()), align=4)
            builder.store(builder.fadd(builder.load(acc), v), acc)
        rest = builder.trunc(builder.and_(n, ir.Constant(_I64, LANES - 1)), _I32)
        # lanes below ``rest``: a vector compare (AVX2 has no mask registers to load bits in)
        mask = builder.icmp_unsigned("<", ir.Constant(_VI, list(range(LANES))),
                                     _splat(builder, rest, _VI))  # fmt: skip
        tail = builder.gep(base, [builder.shl(full, ir.Constant(_I64, 4))])
        load_ty = ir.FunctionType(_VF, [_VF.as_pointer(), _I32, _VB, _VF])
        masked_load = builder.module.declare_intrinsic("llvm.masked.load.v16f32.p0", fnty=load_ty)
        last = builder.call(
            masked_load, [builder.bitcast(tail, _VF.as_pointer()), ir.Constant(_I32, 4), mask, zero]
        )
        total = builder.fadd(builder.load(acc), last)
        sum_ty = ir.FunctionType(_F32, [_F32, _VF])
        reduce = builder.module.declare_intrinsic("llvm.vector.reduce.fadd.v16f32", fnty=sum_ty)
        return builder.call(reduce, [ir.Constant(_F32, -0.0), total], fastmath=("reassoc",))

    return sig, codegen


def _lane_sums(builder, vecs):
    """One vector whose lane ``r`` is the sum of the lanes of ``vecs[r]`` (as many vectors as
    lanes): pairs of vectors halved and added, log2(lanes) levels of 2 permutes and an add per
    pair (a reduction across one vector's lanes takes as many levels of its own)."""
    n = len(vecs)
    vi = ir.VectorType(_I32, n)
    groups = [(v, [r]) for r, v in enumerate(vecs)]  # vectors of len(rows) groups of lanes
    while len(groups) > 1:
        nxt = []
        for (a, ra), (b, rb) in zip(groups[::2], groups[1::2], strict=True):
            g = len(ra)
            size = n // g
            half = size // 2
            lo = [src + q * size + e for src, m in ((0, g), (n, g)) for q in range(m)
                  for e in range(half)]  # fmt: skip
            hi = [i + half for i in lo]
            pair = builder.fadd(builder.shuffle_vector(a, b, ir.Constant(vi, lo)),
                                builder.shuffle_vector(a, b, ir.Constant(vi, hi)))  # fmt: skip
            nxt.append((pair, ra + rb))
        groups = nxt
    v, rows = groups[0]
    order = [rows.index(r) for r in range(n)]
    return builder.shuffle_vector(v, v, ir.Constant(vi, order))


@intrinsic
def tile_sums(typingctx, img, j0, whole, px, py):
    """Rows ``j0 .. j0 + 15`` of ``img`` over its first ``whole`` columns (whole vectors):
    ``py[j0 + r]`` = the sum of row ``r``; ``px[i] +=`` the sum of column ``i``.

    Each row's partial sums stay in a vector of its own across the columns (16 registers) and
    are summed across lanes together at the end (:func:`_lane_sums`); each column's sum over
    the 16 rows goes to ``px`` once. Without AVX-512, twice 8 rows in 8-lane vectors: the 16
    registers of AVX2 hold 8 rows' sums, not 16 (those spilled 46 of 180 instructions).
    ``img`` float32 C-contiguous, ``px``, ``py`` float32.
    """
    sig = types.void(img, j0, whole, px, py)

    def codegen(context, builder, signature, args):
        im, xv, yv = (context.make_array(signature.args[i])(context, builder, args[i])
                      for i in (0, 3, 4))  # fmt: skip
        j0, whole = args[1], args[2]
        _, stride = cgutils.unpack_tuple(builder, im.shape, 2)
        n = LANES if _has_avx512(context) else LANES // 2
        vf = ir.VectorType(_F32, n)
        zero = ir.Constant(vf, [0.0] * n)

        def vec(ptr):
            return builder.bitcast(ptr, vf.as_pointer())

        for first in range(0, LANES, n):  # the tile's rows, n at a time
            row0 = builder.add(j0, ir.Constant(j0.type, first))
            base = builder.gep(im.data, [builder.mul(row0, stride)])
            rows = [cgutils.alloca_once_value(builder, zero) for _ in range(n)]  # zeroed here
            lanes = ir.Constant(whole.type, n)
            with cgutils.for_range(builder, builder.sdiv(whole, lanes)) as loop:
                off = builder.mul(loop.index, lanes)
                col = []
                for r, acc in enumerate(rows):
                    at = builder.add(builder.mul(ir.Constant(stride.type, r), stride), off)
                    v = builder.load(vec(builder.gep(base, [at])), align=4)
                    builder.store(builder.fadd(builder.load(acc), v), acc)
                    col.append(v)
                while len(col) > 1:  # the column's sum pairwise: log2(n) additions deep, not n
                    col = [builder.fadd(a, b) for a, b in zip(col[::2], col[1::2], strict=True)]
                dst = vec(builder.gep(xv.data, [off]))
                builder.store(builder.fadd(builder.load(dst, align=4), col[0]), dst, align=4)
            sums = _lane_sums(builder, [builder.load(acc) for acc in rows])
            builder.store(sums, vec(builder.gep(yv.data, [row0])), align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def argmax(v: np.ndarray) -> int:
    """``np.argmax(v)`` of finite float32 ``v`` in two vector passes (numba's is scalar): each
    float's bits as an integer, those of negative floats flipped, order as the floats do."""
    keys = v.view(np.int32)
    best = -(2**31)
    for i in range(v.shape[0]):
        k = keys[i]
        best = max(best, k ^ ((k >> 31) & 0x7FFFFFFF))
    first = v.shape[0]
    for i in range(v.shape[0]):
        k = keys[i]
        first = min(first, i if k ^ ((k >> 31) & 0x7FFFFFFF) == best else v.shape[0])
    return first


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
