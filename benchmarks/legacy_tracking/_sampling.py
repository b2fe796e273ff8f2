"""Bilinear polar sampling of one ROI into quadrant radial profiles."""

import numpy as np
from numba import njit

from ._simd import load_pair

# Fast-math without the no-NaN/no-Inf assumptions: NaN checks stay valid.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, fastmath=FASTMATH)
def _bilinear_all(
    img: np.ndarray,
    cx: float,
    cy: float,
    dx: np.ndarray,
    dy: np.ndarray,
    vals: np.ndarray,
    fx: np.ndarray,
    fy: np.ndarray,
    idx: np.ndarray,
) -> None:
    """``vals[s]`` = bilinear sample of ``img`` at ``(cx + dx[s], cy + dy[s])``, all inside.

    Pixel indices and weights in a loop that vectorizes (float32), then the
    four look-ups per sample, two 8-byte loads (gathers, which LLVM leaves scalar on this CPU
    family), and the interpolation. ``fx``, ``fy`` float32, ``idx`` uint64 scratch.
    """
    w = img.shape[1]
    flat = img.reshape(img.size)
    n = dx.shape[0]
    x0 = np.float32(cx)
    y0 = np.float32(cy)
    wu = np.uint64(w)
    for s in range(n):
        x = x0 + dx[s]
        y = y0 + dy[s]
        ix = np.floor(x)
        iy = np.floor(y)
        idx[s] = np.uint64(iy) * wu + np.uint64(ix)  # all >= 0
        fx[s] = x - ix
        fy[s] = y - iy
    for s in range(n):  # unsigned indices: no negative-index wrap-around test
        k = idx[s]
        a, b = load_pair(flat, k)  # each pair of neighbours in one load
        c, d = load_pair(flat, k + wu)
        top = a + fx[s] * (b - a)
        vals[s] = top + fy[s] * (c + fx[s] * (d - c) - top)


@njit(cache=True, fastmath=FASTMATH)
def sample_quadrants(
    img: np.ndarray,
    cx: float,
    cy: float,
    dx: np.ndarray,
    dy: np.ndarray,
    starts: np.ndarray,
    reach: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    vals: np.ndarray,
    fx: np.ndarray,
    fy: np.ndarray,
    idx: np.ndarray,
) -> int:
    """Sum bilinear samples at ``(cx + dx, cy + dy)`` per bin into ``sums`` and ``counts``.

    Bin ``b`` owns samples ``starts[b]:starts[b + 1]``, all within ``reach[b]`` pixels of the
    centre. ``img`` is float32 (rows = y, columns = x, pixel centres at integers), ``dx``,
    ``dy`` float32; scratch of ``len(dx)``: ``vals``, ``fx``, ``fy`` float32, ``idx``
    uint64. Samples outside the image are skipped; returns how many were.
    """
    h, w = img.shape
    xmax = w - 1.0
    ymax = h - 1.0
    rr = reach.max()
    n_bins = starts.shape[0] - 1
    if cx - rr >= 0.0 and cy - rr >= 0.0 and cx + rr < xmax and cy + rr < ymax:
        _bilinear_all(img, cx, cy, dx, dy, vals, fx, fy, idx)
        for b in range(n_bins):
            seg = vals[starts[b] : starts[b + 1]]  # a view: indices known >= 0, so it vectorizes
            acc = np.float32(0.0)
            for s in range(seg.shape[0]):
                acc += seg[s]
            sums[b] = acc
            counts[b] = seg.shape[0]
        return 0
    skipped = 0
    for b in range(n_bins):
        s0 = starts[b]
        s1 = starts[b + 1]
        acc = 0.0
        n = 0
        for s in range(s0, s1):
            x = cx + dx[s]
            y = cy + dy[s]
            if not (x >= 0.0 and y >= 0.0 and x <= xmax and y <= ymax):
                continue
            i = min(int(x), w - 2)
            j = min(int(y), h - 2)
            fx = x - i
            fy = y - j
            top = img[j, i] + fx * (img[j, i + 1] - img[j, i])
            bot = img[j + 1, i] + fx * (img[j + 1, i + 1] - img[j + 1, i])
            acc += top + fy * (bot - top)
            n += 1
        sums[b] = acc
        counts[b] = n
        skipped += s1 - s0 - n
    return skipped
