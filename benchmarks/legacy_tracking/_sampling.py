"""Bilinear polar sampling of one ROI into quadrant radial profiles."""

import numpy as np
from numba import njit

# Fast-math without the no-NaN/no-Inf assumptions: NaN checks stay valid.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


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
) -> int:
    """Sum bilinear samples at ``(cx + dx, cy + dy)`` per bin into ``sums`` and ``counts``.

    Bin ``b`` owns samples ``starts[b]:starts[b + 1]``, all within ``reach[b]`` pixels of the
    centre. ``img`` is float64 (rows = y, columns = x, pixel centres at integers). Samples
    outside the image are skipped; returns how many were.
    """
    h, w = img.shape
    xmax = w - 1.0
    ymax = h - 1.0
    skipped = 0
    for b in range(starts.shape[0] - 1):
        s0 = starts[b]
        s1 = starts[b + 1]
        acc = 0.0
        rr = reach[b]
        inside = cx - rr >= 0.0 and cy - rr >= 0.0 and cx + rr < xmax and cy + rr < ymax
        if inside:
            for s in range(s0, s1):
                x = cx + dx[s]
                y = cy + dy[s]
                i = int(x)
                j = int(y)
                fx = x - i
                fy = y - j
                top = img[j, i] + fx * (img[j, i + 1] - img[j, i])
                bot = img[j + 1, i] + fx * (img[j + 1, i + 1] - img[j + 1, i])
                acc += top + fy * (bot - top)
            sums[b] = acc
            counts[b] = s1 - s0
            continue
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
