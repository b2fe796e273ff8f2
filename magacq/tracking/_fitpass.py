"""The template fit's per-pixel pass, one loop of float32 vectors (LLVM IR).

Written in numba, the pass took four loops joined by scratch rows: the pixels of the disc packed
one after the other; their radius, taper and spline row; the spline's coefficients looked up
by permutes; the model, its slope and the normal equations' sums. Here each vector of a row's
pixels goes through all of it in registers, 16 lanes (AVX-512) or 8 (one AVX register): the
coefficients of a 32-entry table looked up by ``vpermi2ps`` (AVX-512: the table in registers)
or by four 8-entry ``vpermps`` and three blends (AVX2), else lane by lane; ``1 / r`` from
``vrsqrt14ps`` (AVX-512) or ``vrsqrtps`` (AVX) and one Newton step, else from the classic
bit-level guess and three steps (relative error 3e-2, 2e-3, 5e-6, then float32 rounding).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._simd import LANES, TABLE, _has_avx512, _has_feature, _splat

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_FLAGS = ("nsz", "arcp", "contract", "afn", "reassoc")  # as the kernels' FASTMATH
#: Entries of ``params``: r_max, 1 / taper width, 1 / radial step, last spline row, tiny.
N_PARAMS = 5
#: Sums ``acc`` holds, ``LANES`` lanes each: xx, xy, yy, gx, gy.
N_SUMS = 5
#: Lanes of one AVX register.
_AVX_LANES = 8


class _Vec:
    """Float32 vectors of ``n`` lanes on an IR builder, fast-math flags as the kernels'."""

    def __init__(self, builder, n: int):
        self.b = builder
        self.n = n
        self.f = ir.VectorType(_F32, n)
        self.i = ir.VectorType(_I32, n)
        self.mask = ir.VectorType(ir.IntType(1), n)

    def const(self, x):
        return ir.Constant(self.f, [x] * self.n)

    def iconst(self, x):
        return ir.Constant(self.i, [x] * self.n)

    def splat(self, x):
        return _splat(self.b, x, self.f if x.type == _F32 else self.i)

    def add(self, a, b):
        return self.b.fadd(a, b, flags=_FLAGS)

    def sub(self, a, b):
        return self.b.fsub(a, b, flags=_FLAGS)

    def mul(self, a, b):
        return self.b.fmul(a, b, flags=_FLAGS)

    def min(self, a, b):
        return self.b.select(self.b.fcmp_ordered("<", a, b), a, b)

    def clamp(self, x, lo, hi):
        return self.min(self.b.select(self.b.fcmp_ordered(">", x, lo), x, lo), hi)

    def call(self, name, ret, arg_types, args):
        fn = self.b.module.declare_intrinsic(name, fnty=ir.FunctionType(ret, arg_types))
        return self.b.call(fn, args)

    def load(self, ptr):
        return self.b.load(self.b.bitcast(ptr, self.f.as_pointer()), align=4)

    def store(self, v, ptr):
        self.b.store(v, self.b.bitcast(ptr, self.f.as_pointer()), align=4)


def _rsqrt(v: _Vec, x, avx512: bool, avx: bool):
    """``1 / sqrt(x)`` to float32 precision."""
    if avx512:
        i16 = ir.IntType(16)
        y = v.call(
            "llvm.x86.avx512.rsqrt14.ps.512", v.f, [v.f, v.f, i16],
            [x, v.const(0.0), ir.Constant(i16, -1)],
        )  # fmt: skip
        steps = 1
    elif avx:  # 12 bits, then 23 after one step
        y = v.call("llvm.x86.avx.rsqrt.ps.256", v.f, [v.f], [x])
        steps = 1
    else:
        bits = v.b.lshr(v.b.bitcast(x, v.i), v.iconst(1))
        y = v.b.bitcast(v.b.sub(v.iconst(0x5F3759DF), bits), v.f)
        steps = 3
    hx = v.mul(v.const(0.5), x)
    for _ in range(steps):
        y = v.mul(y, v.sub(v.const(1.5), v.mul(hx, v.mul(y, y))))
    return y


@intrinsic
def fit_runs(typingctx, flat, runs, offsets, n_runs, coef, params, acc):
    """Add the normal equations' terms of :func:`._xy.template_fit` over runs of pixels.

    Run ``k``: ``flat[runs[2 k] : runs[2 k] + runs[2 k + 1]]`` (float32, within one image
    row), at offsets ``offsets[2 k] + i`` along x and ``offsets[2 k + 1]`` along y from the
    centre (float32). ``coef`` the spline's (4, n) float32 coefficients; ``params`` float32
    (see ``N_PARAMS``); ``acc`` float32 ``(N_SUMS * LANES)``: each sum's lanes, added to (the
    first 8 of them only, on a CPU without AVX-512).
    """
    sig = types.void(flat, runs, offsets, n_runs, coef, params, acc)

    def codegen(context, builder, signature, args):
        fa, ra, oa, ca, pa, aa = (
            context.make_array(signature.args[i])(context, builder, args[i])
            for i in (0, 1, 2, 4, 5, 6)
        )
        avx512 = _has_avx512(context)
        avx2 = _has_feature(context, "avx2")
        b = builder
        v = _Vec(b, LANES if avx512 else _AVX_LANES)
        n_lanes = v.n

        def at(ptr, k):
            return b.gep(ptr, [ir.Constant(_I32, k)])

        r_max, inv_taper, inv, k_top, tiny = (v.splat(b.load(at(pa.data, i))) for i in range(5))
        taper_end = v.mul(r_max, inv_taper)  # s = (r_max - r) / width
        n_col = cgutils.unpack_tuple(b, ca.shape, 2)[1]
        rows = [b.gep(ca.data, [b.mul(ir.Constant(n_col.type, j), n_col)]) for j in range(4)]
        accs = [cgutils.alloca_once_value(b, v.load(at(aa.data, j * LANES))) for j in range(5)]
        lanes = ir.Constant(v.i, list(range(n_lanes)))
        float_lanes = ir.Constant(v.f, [float(i) for i in range(n_lanes)])

        def permute_lookup(k):
            return [
                v.call("llvm.x86.avx512.vpermi2var.ps.512", v.f, [v.f, v.i, v.f], [lo, k, hi])
                for lo, hi in tables
            ]

        def permute8_lookup(k):
            bit8, bit16 = (b.icmp_unsigned("!=", b.and_(k, v.iconst(m)), v.iconst(0))
                           for m in (8, 16))  # fmt: skip
            out = []
            for quarters in tables:
                p = [v.call("llvm.x86.avx2.permps", v.f, [v.f, v.i], [t, k]) for t in quarters]
                out.append(b.select(bit16, b.select(bit8, p[3], p[2]), b.select(bit8, p[1], p[0])))
            return out

        def lane_lookup(k):
            out = []
            for row in rows:
                x = ir.Constant(v.f, None)
                for lane in range(n_lanes):
                    idx = b.extract_element(k, ir.Constant(_I32, lane))
                    x = b.insert_element(x, b.load(b.gep(row, [idx])), ir.Constant(_I32, lane))
                out.append(x)
            return out

        def pixels(lookup, x, y, y2, p, live):
            """The five sums' terms of one vector of pixels, added to the accumulators."""
            r2 = v.add(v.mul(x, x), y2)
            ir_ = _rsqrt(v, r2, avx512, avx2)
            r = v.mul(r2, ir_)
            s = v.clamp(v.sub(taper_end, v.mul(r, inv_taper)), v.const(0.0), v.const(1.0))
            w = v.mul(v.mul(s, s), v.sub(v.const(3.0), v.mul(v.const(2.0), s)))
            w = b.select(live, w, v.const(0.0))  # lanes past the run: no weight, no term
            u = v.min(v.add(v.mul(r, inv), v.const(0.5)), k_top)  # row + fraction, r >= 0
            row = v.call(f"llvm.floor.v{n_lanes}f32", v.f, [v.f], [u])
            t = v.sub(u, row)
            a0, a1, a2, a3 = lookup(b.fptosi(row, v.i))
            val = v.add(a0, v.mul(t, v.add(a1, v.mul(t, v.add(a2, v.mul(t, a3))))))
            slope = v.mul(v.const(3.0), v.mul(t, a3))
            slope = v.add(a1, v.mul(t, v.add(v.mul(v.const(2.0), a2), slope)))
            a = v.mul(v.sub(v.const(0.0), slope), v.mul(ir_, inv))
            wa = v.mul(a, w)
            q2 = v.mul(wa, a)
            we = v.mul(wa, v.sub(p, val))
            qx = v.mul(q2, x)
            qy = v.mul(q2, y)
            terms = (v.mul(qx, x), v.mul(qx, y), v.mul(qy, y), v.mul(we, x), v.mul(we, y))
            for acc, term in zip(accs, terms, strict=True):
                b.store(v.add(b.load(acc), term), acc)

        def run(lookup, start, n, x0, y_s):
            y = v.splat(y_s)
            y2 = v.add(v.mul(y, y), tiny)
            # the lanes' x and pixel numbers, carried from one vector to the next
            xs = cgutils.alloca_once_value(b, v.add(v.splat(x0), float_lanes))
            pixel = cgutils.alloca_once_value(b, lanes)
            n_live = v.splat(b.trunc(n, _I32))
            step = ir.Constant(n.type, n_lanes)
            count = b.udiv(b.add(n, ir.Constant(n.type, n_lanes - 1)), step)
            with cgutils.for_range(b, count) as loop:
                q = b.mul(loop.index, ir.Constant(loop.index.type, n_lanes))
                x, k = b.load(xs), b.load(pixel)
                b.store(v.add(x, v.const(float(n_lanes))), xs)
                b.store(b.add(k, v.iconst(n_lanes)), pixel)
                live = b.icmp_signed("<", k, n_live)
                p = v.call(
                    f"llvm.masked.load.v{n_lanes}f32.p0v{n_lanes}f32",
                    v.f,
                    [v.f.as_pointer(), _I32, v.mask, v.f],
                    [b.bitcast(b.gep(fa.data, [b.add(start, q)]), v.f.as_pointer()),
                     ir.Constant(_I32, 4), live, v.const(0.0)],
                )  # fmt: skip
                pixels(lookup, x, y, y2, p, live)

        def all_runs(lookup):
            with cgutils.for_range(b, args[3]) as k:
                i = b.mul(k.index, ir.Constant(k.index.type, 2))
                j = b.add(i, ir.Constant(i.type, 1))
                start, n = b.load(b.gep(ra.data, [i])), b.load(b.gep(ra.data, [j]))
                run(lookup, start, n, b.load(b.gep(oa.data, [i])), b.load(b.gep(oa.data, [j])))

        if avx512 or avx2:
            # the table's 32 entries: two AVX-512 registers a row, or four AVX registers
            tables = [[v.load(at(row, q)) for q in range(0, TABLE, n_lanes)] for row in rows]
            permutes = b.icmp_signed("==", n_col, ir.Constant(n_col.type, TABLE))
            with b.if_else(permutes) as (then, otherwise):
                with then:
                    all_runs(permute_lookup if avx512 else permute8_lookup)
                with otherwise:
                    all_runs(lane_lookup)
        else:
            all_runs(lane_lookup)
        for j, acc in enumerate(accs):
            v.store(b.load(acc), at(aa.data, j * LANES))
        return context.get_dummy_value()

    return sig, codegen
