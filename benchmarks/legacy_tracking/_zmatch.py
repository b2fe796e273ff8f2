"""Z of one radial profile from its bead's Z-LUT planes."""

import numpy as np
from numba import njit

from magacq.tracking import TrackFlag

from ._sampling import FASTMATH

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


@njit(cache=True, fastmath=FASTMATH)
def match_plane(p: np.ndarray, w: np.ndarray, planes: np.ndarray) -> tuple[float, int]:
    """Fractional plane index of normalised profile ``p`` in ``planes`` (n_planes, n_radii).

    The nearest plane by weighted squared error is found, then ``p`` is fitted to the quadratic
    through that plane and its neighbours (interpolating the LUT between planes). Returns
    ``(index, flags)``; index is NaN when flags say out of range, no plane matches well, or a
    NaN plane was needed.
    """
    n_pl, n_r = planes.shape
    best = np.inf
    jb = -1
    for j in range(n_pl):
        d = 0.0
        for k in range(n_r):
            e = p[k] - planes[j, k]
            d += w[k] * e * e
        if d < best:  # False for NaN planes
            best = d
            jb = j
    if jb < 0:
        return np.nan, _GAP
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
        for _ in range(6):
            g = 0.0
            hh = 0.0
            for k in range(n_r):
                a = 0.5 * (planes[j + 1, k] - planes[j - 1, k])
                b = 0.5 * (planes[j + 1, k] + planes[j - 1, k]) - planes[j, k]
                r = p[k] - (planes[j, k] + (a + b * u) * u)
                sl = a + 2.0 * b * u
                g += w[k] * r * sl
                hh += w[k] * (sl * sl - 2.0 * b * r)
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
