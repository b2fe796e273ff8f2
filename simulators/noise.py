"""Camera noise: relative intensity to digital counts with shot noise, read noise and saturation.

A pixel at relative intensity ``I`` (background 1.0) collects on average
``m = I * photons_background`` photoelectrons (quantum efficiency folded into the budget; gain
1 count per electron). The count is ``N + read_noise_e * G + offset_adu``, rounded, clipped to
``[0, 2**bit_depth - 1]`` (saturation), where ``N ~ Poisson(m)`` and ``G ~ Normal(0, 1)``.

Two samplers:

* ``exact=True`` (default): ``N`` drawn by numpy's Poisson sampler: exact, ~60 ns a pixel.
* ``exact=False``: ``N + read_noise_e * G`` drawn as one ``Normal(m, m + read_noise_e**2)``
  (the Gaussian approximation to Poisson: same mean and variance; it lacks the skewness
  ``m**-0.5``, 1.6 % at 4000 photons, which moves the z-sigma quantile by ``(z**2 - 1) / 6``
  counts, e.g. 1.3 counts at 3 sigma); pixels with ``m < 30`` still get an exact Poisson draw
  (inversion) plus a Gaussian read noise.

  One numba pass over blocks of 2048 pixels (everything stays in L1 cache), writing straight
  into ``out``: random bits, normals, then scale, background, offset, round, clip and store.

  - Random bits: 16 interleaved xoshiro128+ generators (Blackman & Vigna; 32-bit words, so the
    16 lanes run as AVX2 vectors), seeded afresh from ``rng`` on every call (64 words of
    numpy's PCG64): every frame gets new noise, reproducibly from a seeded ``rng``; no pools.
    Only the upper bits of each word are used as numbers (the lowest bits of the ``+`` variant
    are its weak ones).
  - Normals: Box-Muller, exact in distribution up to float32 arithmetic. Radius
    ``sqrt(-2 ln u)`` with ``u = (k + 1/2) / 2**31`` from 31 bits (the tail is cut at
    6.66 sigma: probability 3e-11 a draw) and ``ln`` by Cephes' float32 polynomial (< 2 ulp);
    angle: three bits choose the octant (swap of cos/sin, two signs), 24 bits a phase uniform
    on ``[0, pi/4)``, whose cos and sin come from Cephes' float32 minimax polynomials (< 1e-7).
    Both normals of a pair are used (independent by construction).
  - Arithmetic is float32: exact integer counts up to ``2**24`` (for ``bit_depth > 24`` the
    counts, and the saturation level, are float32-rounded).
  - Rare pixels with ``m < 30`` get the exact Poisson from a scalar splitmix64 stream, seeded
    from ``rng`` as well.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["count_dtype", "to_counts"]

#: Below this mean the fast sampler draws an exact Poisson count.
POISSON_EXACT_BELOW = 30.0


def count_dtype(bit_depth: int) -> np.dtype:
    """Smallest unsigned dtype holding ``bit_depth`` bits."""
    if not 1 <= bit_depth <= 32:
        raise ValueError(f"bit_depth must be 1..32, got {bit_depth}")
    return np.dtype(np.uint8 if bit_depth <= 8 else np.uint16 if bit_depth <= 16 else np.uint32)


def to_counts(
    intensity: np.ndarray,
    photons_background: float,
    read_noise_e: float,
    bit_depth: int,
    rng: np.random.Generator,
    out: np.ndarray | None = None,
    *,
    offset_adu: float = 0.0,
    exact: bool = True,
) -> np.ndarray:
    """Turn relative intensity into noisy camera counts.

    Parameters
    ----------
    intensity : numpy.ndarray
        Relative intensity, background 1.0 (negative values are treated as 0).
    photons_background : float
        Mean photoelectrons per pixel at intensity 1.0.
    read_noise_e : float
        Read noise, electrons rms.
    bit_depth : int
        Counts saturate at ``2**bit_depth - 1``.
    rng : numpy.random.Generator
        Source of randomness (the fast sampler draws its seed from it).
    out : numpy.ndarray, optional
        Unsigned-integer array of ``intensity``'s shape to write into.
    offset_adu : float
        Camera offset (bias) added before rounding.
    exact : bool
        Exact Poisson (True) or the fast Gaussian approximation (False), see the module doc.

    Returns
    -------
    numpy.ndarray
        ``out``, or a new array of :func:`count_dtype` ``(bit_depth)``.
    """
    if photons_background < 0 or read_noise_e < 0:
        raise ValueError("photons_background and read_noise_e must be >= 0")
    max_count = 2**bit_depth - 1
    if out is None:
        out = np.empty(np.shape(intensity), dtype=count_dtype(bit_depth))
    elif out.shape != np.shape(intensity) or out.dtype.kind != "u":
        raise ValueError("out must be an unsigned-integer array of intensity's shape")
    if max_count > np.iinfo(out.dtype).max:
        raise ValueError(f"{out.dtype} cannot hold {bit_depth}-bit counts")
    if exact:
        mean = np.clip(intensity, 0.0, None) * photons_background
        electrons = rng.poisson(mean).astype(np.float64)
        if read_noise_e > 0:
            electrons += read_noise_e * rng.standard_normal(electrons.shape)
        np.rint(electrons + offset_adu, out=electrons)
        np.clip(electrons, 0, max_count, out=electrons)
        out[...] = electrons
        return out
    src = np.ascontiguousarray(intensity)
    dst = out if out.flags.c_contiguous else np.empty_like(out)
    top = float(max_count)
    if np.float32(top) > top:  # the float32 clamp must not round above max_count
        top = float(np.nextafter(np.float32(top), np.float32(0.0)))
    state, seed = _seed_state(rng)
    _fast_counts(
        src.reshape(-1),
        dst.reshape(-1),
        float(photons_background),
        float(read_noise_e) ** 2,
        float(offset_adu),
        top,
        state,
        seed,
    )
    if dst is not out:
        out[...] = dst
    return out


# The generator state is a scalar threaded through the calls: passing arrays between jitted
# functions costs reference-count updates that would dominate a ~3 ns draw.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True)
def _next64(s):  # pragma: no cover - numba
    """splitmix64: returns (new state, 64 random bits)."""
    s = s + _GOLDEN
    z = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return s, z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _uniform(s):  # pragma: no cover - numba
    """Returns (new state, uniform on (0, 1])."""
    s, z = _next64(s)
    return s, ((z >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _poisson_small(s, lam):  # pragma: no cover - numba
    """Exact Poisson by inversion (lam < POISSON_EXACT_BELOW): returns (new state, count)."""
    s, u = _uniform(s)
    k = 0
    p = np.exp(-lam)
    c = p
    while u > c and k < 1000:
        k += 1
        p *= lam / k
        c += p
    return s, float(k)


# --- the fast sampler ---------------------------------------------------------------------------
#: Interleaved xoshiro128+ generators (two AVX2 vectors of 32-bit lanes).
LANES = 16
#: Pixels a block (random words, normals and the block's pixels stay in L1).
BLOCK = 2048


def _seed_state(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fresh xoshiro128+ states ``(4, LANES)`` and a splitmix64 seed, from ``rng``'s raw bits."""
    raw = rng.bit_generator.random_raw(2 * LANES + 1)
    state = raw[: 2 * LANES].view(np.uint32).reshape(4, LANES)  # fresh array: writable
    state[0, ~state.any(axis=0)] = 1  # all-zero is xoshiro's fixed point (odds 2**-128)
    return state, raw[2 * LANES :]


@intrinsic
def _f32_bits(typingctx, x):  # pragma: no cover - numba
    """float32 to its bits as int32 (no conversion)."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):  # pragma: no cover - numba
    """int32 bits to the float32 they encode."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@numba.njit(cache=True, nogil=True, fastmath=True)
def _xoshiro_fill(s, words):  # pragma: no cover - numba
    """Fill ``words`` (a multiple of LANES) from LANES xoshiro128+ states ``s`` (4, LANES)."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    for b in range(words.size // LANES):
        for lane in range(LANES):
            a, c, d, e = s0[lane], s1[lane], s2[lane], s3[lane]
            words[b * LANES + lane] = a + e
            t = c << np.uint32(9)
            d ^= a
            e ^= c
            c ^= d
            a ^= e
            d ^= t
            s0[lane], s1[lane], s2[lane] = a, c, d
            s3[lane] = (e << np.uint32(11)) | (e >> np.uint32(21))


_F1 = np.float32(1.0)
_LN2 = np.float32(0.6931471805599453)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _box_muller(words, g):  # pragma: no cover - numba
    """Standard normals ``g`` from random ``words`` (same size, even), a pair per two words."""
    half = words.size // 2
    for j in range(half):
        w1 = words[j]
        w2 = words[half + j]
        # ln u, u = (k + 1/2) / 2**31 from the top 31 bits: exponent and mantissa of k + 1/2,
        # the mantissa in [sqrt(1/2), sqrt(2)), then Cephes' logf polynomial.
        x = np.float32(np.int32(w1 >> np.uint32(1))) + np.float32(0.5)
        ix = _f32_bits(x)
        e = np.float32((ix >> 23) - 127)
        m = _bits_f32((ix & np.int32(0x7FFFFF)) | np.int32(0x3F800000))
        big = m > np.float32(1.4142135623730951)
        m = np.float32(0.5) * m if big else m
        e = e + _F1 if big else e
        f = m - _F1
        z = f * f
        p = np.float32(7.0376836292e-2)
        p = p * f - np.float32(1.1514610310e-1)
        p = p * f + np.float32(1.1676998740e-1)
        p = p * f - np.float32(1.2420140846e-1)
        p = p * f + np.float32(1.4249322787e-1)
        p = p * f - np.float32(1.6668057665e-1)
        p = p * f + np.float32(2.0000714765e-1)
        p = p * f - np.float32(2.4999993993e-1)
        p = p * f + np.float32(3.3333331174e-1)
        ln_u = f + (f * z * p - np.float32(0.5) * z) + (e - np.float32(31.0)) * _LN2
        r = np.sqrt(max(np.float32(-2.0) * ln_u, np.float32(0.0)))
        # angle: phase uniform on [0, pi/4) from bits 5..28; bits 29, 30, 31 pick the octant
        ph = np.float32(np.int32((w2 >> np.uint32(5)) & np.uint32(0xFFFFFF)))
        ph = ph * np.float32(np.pi / 4 / 16777216.0)
        p2 = ph * ph
        sn = np.float32(-1.9515295891e-4) * p2 + np.float32(8.3321608736e-3)
        sn = ph + ph * p2 * (sn * p2 - np.float32(1.6666654611e-1))
        cs = np.float32(2.443315711809948e-5) * p2 - np.float32(1.388731625493765e-3)
        cs = _F1 - np.float32(0.5) * p2 + p2 * p2 * (cs * p2 + np.float32(4.166664568298827e-2))
        swap = (w2 >> np.uint32(29)) & np.uint32(1) != 0
        ra = r - np.float32(2.0) * r * np.float32(np.int32((w2 >> np.uint32(30)) & np.uint32(1)))
        rb = r - np.float32(2.0) * r * np.float32(np.int32(w2 >> np.uint32(31)))
        g[j] = ra * (sn if swap else cs)
        g[half + j] = rb * (cs if swap else sn)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _fast_counts(src, dst, photons, read_var, offset, top, state, seed):
    # pragma: no cover - numba
    n = src.size
    words = np.empty(BLOCK, dtype=np.uint32)
    g = np.empty(BLOCK, dtype=np.float32)
    off = np.float32(offset + 0.5)  # clamp, then truncate: rounds to nearest
    rv = np.float32(read_var)
    ph = np.float32(photons)
    top32 = np.float32(top)
    read_sd = np.sqrt(read_var)
    s2 = seed[0]
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        _xoshiro_fill(state, words)
        _box_muller(words, g)
        sb, db = src[start:stop], dst[start:stop]  # views, unsigned k: no negative-index code
        dim = 0  # an integer count vectorizes; a float minimum here costs a third more
        for k in range(np.uint64(stop - start)):
            m = max(np.float32(sb[k]), np.float32(0.0)) * ph
            dim += np.int32(m < np.float32(POISSON_EXACT_BELOW))
            v = m + np.sqrt(m + rv) * g[k] + off
            db[k] = min(max(v, np.float32(0.0)), top32)
        if dim > 0:
            for k in range(stop - start):
                m = max(float(sb[k]), 0.0) * photons
                if m < POISSON_EXACT_BELOW:
                    s2, v = _poisson_small(s2, m)
                    v += read_sd * g[k] + offset + 0.5
                    db[k] = min(max(v, 0.0), top)
    seed[0] = s2
