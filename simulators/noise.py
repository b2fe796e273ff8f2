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
  counts, e.g. 1.3 counts at 3 sigma); pixels with ``m < 30`` still get an exact Poisson draw.
  The normals come from a numba ziggurat (Marsaglia & Tsang, 256 layers)
  fed by splitmix64 used as a counter-based generator (draws ``2j`` and ``2j + 1`` of a call
  are the halves of the hash of ``seed + j``, so the loop vectorizes), with a fresh 63-bit
  seed taken from ``rng`` on every call: no noise pools, no repeating frames (two calls overlap
  only if their seeds fall within a frame's length of each other on the splitmix sequence,
  odds ~1e-13). Faster than numpy's ``standard_normal`` alone (benchmarks/bench_sim_camera.py).
"""

import numba
import numpy as np

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
    seed = np.array([rng.integers(0, 2**63, dtype=np.int64)], dtype=np.uint64)
    _fast_counts(
        src.reshape(-1),
        dst.reshape(-1),
        float(photons_background),
        float(read_noise_e) ** 2,
        float(offset_adu),
        float(max_count),
        seed,
        _ZIG_K,
        _ZIG_W,
        _ZIG_F,
    )
    if dst is not out:
        out[...] = dst
    return out


# --- ziggurat tables (Marsaglia & Tsang 2000, 256 layers as numpy uses) -----------------------
_LAYERS = 256
_ZIG_R = 3.6541528853610088  # start of the tail
_ZIG_V = 4.92867323399e-3  # area of each layer


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m1 = 2147483648.0
    dn = tn = _ZIG_R
    vn = _ZIG_V
    last = _LAYERS - 1
    kn = np.zeros(_LAYERS, np.int64)
    wn = np.zeros(_LAYERS, np.float64)
    fn = np.zeros(_LAYERS, np.float64)
    q = vn / np.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[last] = dn / m1
    fn[0] = 1.0
    fn[last] = np.exp(-0.5 * dn * dn)
    for i in range(last - 1, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat_tables()


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


@numba.njit(cache=True, inline="always")
def _hash(s):  # pragma: no cover - numba
    """splitmix64's output function."""
    z = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _split(z):  # pragma: no cover - numba
    """64 bits to the ziggurat's signed 32-bit value and its 8-bit layer (independent bits)."""
    return np.int64(np.int32(np.uint32(z >> np.uint64(32)))), np.int64(z & np.uint64(255))


@numba.njit(cache=True, inline="always")
def _normal_slow(s, hz, iz, kn, wn, fn):  # pragma: no cover - numba
    """The ziggurat's rare path (~1.5 % of draws): wedges and the tail."""
    while True:
        x = hz * wn[iz]
        if iz == 0:
            while True:
                s, u1 = _uniform(s)
                s, u2 = _uniform(s)
                xx = -np.log(u1) / _ZIG_R
                if -2.0 * np.log(u2) >= xx * xx:
                    break
            return s, (_ZIG_R + xx if hz > 0 else -_ZIG_R - xx)
        s, u = _uniform(s)
        if fn[iz] + u * (fn[iz - 1] - fn[iz]) < np.exp(-0.5 * x * x):
            return s, x
        s, z = _next64(s)
        hz, iz = _split(z)
        if abs(hz) < kn[iz]:
            return s, hz * wn[iz]


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


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SLOW = np.float32(1e30)  # marks a draw for the ziggurat's slow path (fastmath: no NaN tests)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _fast_counts(src, dst, photons, read_var, offset, max_count, seed, kn, wn, fn):
    # pragma: no cover - numba
    # Pass 1 (vectorized): draws 2j, 2j+1 are the two halves of splitmix64's output j (a
    # counter-based stream), through the ziggurat's fast path. Pass 2: the ~1.5 % of draws that
    # need the slow path, from a second stream. Pass 3 (vectorized): scale, offset, clamp,
    # store. Pass 4: exact Poisson for the rare dim pixels.
    s0 = seed[0]
    n = src.size
    g = np.empty(n + 1, dtype=np.float32)
    for j in range((n + 1) // 2):  # one 64-bit hash gives two 32-bit draws
        z = _hash(s0 + np.uint64(j + 1) * _GOLDEN)
        hz = np.int64(np.int32(np.uint32(z >> np.uint64(32))))
        iz = hz & 255  # the layer from the draw's low bits, as Marsaglia & Tsang do
        g[2 * j] = hz * wn[iz] if abs(hz) < kn[iz] else _SLOW
        hz = np.int64(np.int32(np.uint32(z & np.uint64(0xFFFFFFFF))))
        iz = hz & 255
        g[2 * j + 1] = hz * wn[iz] if abs(hz) < kn[iz] else _SLOW
    s2 = (s0 + np.uint64(n + 3) * _GOLDEN) ^ np.uint64(0x5DEECE66D5DEECE6)  # slow-path stream
    for i in range(n):
        if g[i] > np.float32(1e29):
            z = _hash(s0 + np.uint64(i // 2 + 1) * _GOLDEN)
            half = z >> np.uint64(32) if i % 2 == 0 else z & np.uint64(0xFFFFFFFF)
            hz = np.int64(np.int32(np.uint32(half)))
            s2, gv = _normal_slow(s2, hz, hz & 255, kn, wn, fn)
            g[i] = gv
    off = np.float32(offset + 0.5)  # clamp, then truncate: rounds to nearest
    rv = np.float32(read_var)
    ph = np.float32(photons)
    top = np.float32(max_count)
    m_min = np.float32(np.inf)
    for i in range(n):
        m = max(np.float32(src[i]), np.float32(0.0)) * ph
        m_min = min(m_min, m)
        v = m + np.sqrt(m + rv) * g[i] + off
        dst[i] = min(max(v, np.float32(0.0)), top)
    if m_min < POISSON_EXACT_BELOW:
        read_sd = np.sqrt(read_var)
        for i in range(n):
            m = max(float(src[i]), 0.0) * photons
            if m < POISSON_EXACT_BELOW:
                s2, v = _poisson_small(s2, m)
                v += read_sd * g[i] + offset + 0.5
                dst[i] = min(max(v, 0.0), max_count)
    seed[0] = s2
