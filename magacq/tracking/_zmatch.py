"""Z of one radial profile from its bead's Z-LUT planes."""

import numpy as np
from numba import njit

from ._flags import TrackFlag
from ._sampling import FASTMATH
from ._simd import LANES, aligned_copy, dot_rows

_BELOW = int(TrackFlag.Z_BELOW_RANGE)
_ABOVE = int(TrackFlag.Z_ABOVE_RANGE)
_GAP = int(TrackFlag.LUT_GAP)
_POOR = int(TrackFlag.Z_POOR_MATCH)
#: Largest mean (weighted) squared difference per radial bin between a normalised profile and
#: its nearest plane that still counts as a match (see TrackFlag.Z_POOR_MATCH).
POOR_MATCH_MSE = 0.2


@njit(cache=True, fastmath=FASTMATH)
def normalize_profile(prof: np.ndarray, out: np.ndarray) -> bool:
    """Write ``(prof - mean) / rms`` into ``out``; False (``out`` NaN) if NaN or flat."""
    n = prof.shape[0]
    s = 0.0
    for k in range(n):
        s += prof[k]
    mean = s / n
    s2 = 0.0
    for k in range(n):
        d = prof[k] - mean
        s2 += d * d
    if not (s2 > 0.0):  # also catches NaN
        out[:] = np.nan
        return False
    inv = 1.0 / np.sqrt(s2 / n)
    for k in range(n):
        out[k] = (prof[k] - mean) * inv
    return True


#: Planes per :func:`._simd.dot_rows` call of the search: 4 vectors.
_SEARCH_BLOCKS = 4


def search_tables(planes: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest-plane search's tables of Z-LUT ``planes`` (n_luts, n_planes, n_radii).

    ``planes_t`` (n_luts, n_radii, n) float32: the planes transposed, padded with zero planes to
    whole calls of :func:`._simd.dot_rows`; ``norms`` (n_luts, n) float32: each plane's
    ``sum_k w_k P_k^2`` (NaN for a NaN plane and the padding: never nearest). The weighted
    squared error of a profile ``p`` is then ``sum w p^2 - 2 sum (w p) P + norm``: one product
    of the profile with all the planes at once.
    """
    n_luts, n_pl, n_r = planes.shape
    step = _SEARCH_BLOCKS * LANES
    n = -(-n_pl // step) * step
    planes_t = np.zeros((n_luts, n_r, n), np.float32)
    norms = np.full((n_luts, n), np.nan, np.float32)
    ok = ~np.isnan(planes).any(axis=2)
    planes_t[:, :, :n_pl] = np.where(ok[:, :, None], planes, 0.0).transpose(0, 2, 1)
    norms[:, :n_pl] = np.where(ok, (planes**2 * w).sum(axis=2), np.nan)
    return aligned_copy(planes_t), aligned_copy(norms)


@njit(cache=True, fastmath=FASTMATH)
def match_plane(
    p: np.ndarray,
    w: np.ndarray,
    planes: np.ndarray,
    planes_t: np.ndarray,
    norms: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
) -> tuple[float, int]:
    """Fractional plane index of normalised profile ``p`` in ``planes`` (n_planes, n_radii).

    The nearest plane by weighted squared error is found (float32, all planes at once from
    ``planes_t, norms`` of :func:`search_tables`; scratch ``a`` float32 of n_radii, ``d``
    float32 of ``norms``' length), then ``p`` is fitted to the quadratic through that plane and
    its neighbours (interpolating the LUT between planes). Returns ``(index, flags)``; index is
    NaN when flags say out of range, no plane matches well, or a NaN plane was needed.
    """
    n_pl, n_r = planes.shape
    for k in range(n_r):
        a[k] = -2.0 * w[k] * p[k]
    step = _SEARCH_BLOCKS * LANES
    for c in range(0, norms.shape[0], step):
        dot_rows(a, planes_t, c, d[c:], _SEARCH_BLOCKS)
    best = np.inf
    jb = -1
    for j in range(n_pl):
        dj = d[j] + norms[j]  # less sum w p^2, the same for every plane
        if dj < best:  # False for NaN planes
            best = dj
            jb = j
    if jb < 0:
        return np.nan, _GAP
    best = 0.0
    for k in range(n_r):
        e = p[k] - planes[jb, k]
        best += w[k] * e * e
    wsum = 0.0
    for k in range(n_r):
        wsum += w[k]
    if best > POOR_MATCH_MSE * wsum:
        return np.nan, _POOR
    if n_pl < 3:
        return float(jb), 0
    j = min(max(jb, 1), n_pl - 2)
    u = float(jb - j)
    for _ in range(4):
        if np.isnan(planes[j - 1, 0]) or np.isnan(planes[j + 1, 0]):
            return np.nan, _GAP
        # The weighted error E(u) = sum w (r - a u - b u^2)^2 of the quadratic through planes
        # j - 1, j, j + 1 (r = p - plane j) is a quartic in u: its moments, once, then Newton's
        # steps on -E'/2 = g(u) over E''/2 = hh(u) cost a few flops each.
        sra = 0.0
        srb = 0.0
        saa = 0.0
        sab = 0.0
        sbb = 0.0
        for k in range(n_r):
            a = 0.5 * (planes[j + 1, k] - planes[j - 1, k])
            b = 0.5 * (planes[j + 1, k] + planes[j - 1, k]) - planes[j, k]
            wr = w[k] * (p[k] - planes[j, k])
            sra += wr * a
            srb += wr * b
            saa += w[k] * a * a
            sab += w[k] * a * b
            sbb += w[k] * b * b
        for _ in range(6):
            g = sra + ((2.0 * srb - saa) - (3.0 * sab + 2.0 * sbb * u) * u) * u
            hh = saa - 2.0 * srb + 6.0 * (sab + sbb * u) * u
            if not (hh > 0.0):
                break
            step = g / hh
            u += step
            u = min(max(u, -1.5), 1.5)
            if abs(step) < 1e-6:
                break
        jn = j + int(np.round(u))
        jn = min(max(jn, 1), n_pl - 2)
        if jn == j:
            break
        u += j - jn
        j = jn
    pos = j + u
    if pos < 0.0:
        return np.nan, _BELOW
    if pos > n_pl - 1.0:
        return np.nan, _ABOVE
    return pos, 0
