"""Bilinear polar sampling of one ROI into quadrant radial profiles."""

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._simd import copy_quad, segment_sum

# Fast-math without the no-NaN/no-Inf assumptions: NaN checks stay valid.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


#: Samples per block of the look-ups: a block's 2x2 neighbourhoods stay in the L1 cache.
SAMPLE_BLOCK = 512


def _interpolate(quads: np.ndarray, fx: np.ndarray, fy: np.ndarray, vals: np.ndarray) -> None:
    """``vals[s]`` = the bilinear interpolation at ``(fx[s], fy[s])`` of ``quads[4 s : 4 s + 4]``:
    pixels ``(j, i), (j + 1, i), (j, i + 1), (j + 1, i + 1)``, for every ``s < len(vals)``."""


@njit(fastmath=FASTMATH)
def _lerp2(a, c, b, d, fx, fy):
    top = a + fx * (b - a)
    return top + fy * (c + fx * (d - c) - top)


def _interpolate_elements(quads, fx, fy, vals):
    for s in range(vals.shape[0]):
        vals[s] = _lerp2(
            np.float32(quads[4 * s]), np.float32(quads[4 * s + 1]),
            np.float32(quads[4 * s + 2]), np.float32(quads[4 * s + 3]), fx[s], fy[s],
        )  # fmt: skip


def _interpolate_words(quads, fx, fy, vals):
    # uint16 read as two 32-bit words a sample (little-endian: the first pixel low): LLVM
    # vectorizes their shifts and masks, not a stride-4 uint16 load (scalar on AVX2: 2.4
    # against 1.0 us a ROI)
    words = quads.view(np.uint32)
    low = np.uint32(0xFFFF)
    high = np.uint32(16)
    for s in range(vals.shape[0]):
        w0 = words[2 * s]
        w1 = words[2 * s + 1]
        vals[s] = _lerp2(
            np.float32(np.int32(w0 & low)), np.float32(np.int32(w0 >> high)),
            np.float32(np.int32(w1 & low)), np.float32(np.int32(w1 >> high)), fx[s], fy[s],
        )  # fmt: skip


@overload(_interpolate, jit_options={"fastmath": FASTMATH})
def _interpolate_typed(quads, fx, fy, vals):
    return _interpolate_words if quads.dtype == types.uint16 else _interpolate_elements


@njit(cache=True, fastmath=FASTMATH)
def _bilinear_all(
    pairs: np.ndarray,
    w: int,
    cx: float,
    cy: float,
    dx: np.ndarray,
    dy: np.ndarray,
    vals: np.ndarray,
    fx: np.ndarray,
    fy: np.ndarray,
    idx: np.ndarray,
    quads: np.ndarray,
) -> None:
    """``vals[s]`` = bilinear sample of the image at ``(cx + dx[s], cy + dy[s])``, all inside.

    ``pairs``: the image's rows interleaved in pairs (:func:`._simd.interleave_rows`), ``w``
    pixels wide, of the camera's type (uint16: half the bytes of float32) or float32. A block
    of samples at a time (its scratch stays in the L1 cache): pixel indices and weights in a
    loop that vectorizes (float32); each sample's 2x2 neighbourhood in one copy into ``quads``
    (scalar: gathers are slower on this CPU family); the interpolation in a loop that
    vectorizes. Scratch of ``SAMPLE_BLOCK``: ``fx``, ``fy`` float32,
    ``idx`` uint32; ``quads`` of ``pairs``' type, ``4 * SAMPLE_BLOCK``.
    """
    n = dx.shape[0]
    x0 = np.float32(cx)
    y0 = np.float32(cy)
    wi = np.int32(w)
    for b0 in range(0, n, SAMPLE_BLOCK):
        m = min(SAMPLE_BLOCK, n - b0)
        dxb = dx[b0 : b0 + m]  # views: indices the compiler knows are >= 0
        dyb = dy[b0 : b0 + m]
        ib = idx[:m]  # the block's scratch
        fxb = fx[:m]
        fyb = fy[:m]
        vb = vals[b0 : b0 + m]
        for s in range(m):
            x = x0 + dxb[s]
            y = y0 + dyb[s]
            ix = np.floor(x)
            iy = np.floor(y)
            # int32: AVX2 converts float32 to int32 in one instruction, to uint32 in several
            ib[s] = np.uint32(2 * (np.int32(iy) * wi + np.int32(ix)))  # all >= 0
            fxb[s] = x - ix
            fyb[s] = y - iy
        for s in range(m):  # unsigned indices: no negative-index wrap-around test
            copy_quad(pairs, ib[s], quads, np.uint64(4 * s))
        _interpolate(quads, fxb, fyb, vb)


@njit(cache=True, fastmath=FASTMATH)
def sample_quadrants(
    img: np.ndarray,
    pairs: np.ndarray,
    cx: float,
    cy: float,
    dx: np.ndarray,
    dy: np.ndarray,
    starts: np.ndarray,
    reach: float,
    sums: np.ndarray,
    counts: np.ndarray,
    vals: np.ndarray,
    fx: np.ndarray,
    fy: np.ndarray,
    idx: np.ndarray,
    quads: np.ndarray,
) -> int:
    """Sum bilinear samples at ``(cx + dx, cy + dy)`` per bin into ``sums`` and ``counts``.

    Bin ``b`` owns samples ``starts[b]:starts[b + 1]``; every sample lies within ``reach``
    pixels of the centre. ``img`` is float32 (rows = y, columns = x, pixel centres at integers),
    ``pairs`` its rows interleaved (:func:`._simd.interleave_rows`: of ``img`` itself or of the
    ROI it was converted from), ``dx``, ``dy`` float32; scratch: ``vals`` float32 of
    ``len(dx)``; ``fx``, ``fy`` float32 and ``idx`` uint32 of ``SAMPLE_BLOCK``; ``quads`` of
    ``pairs``' type, ``4 * SAMPLE_BLOCK``. Samples outside the image are skipped; returns how
    many were.
    """
    h, w = img.shape
    xmax = w - 1.0
    ymax = h - 1.0
    n_bins = starts.shape[0] - 1
    if cx - reach >= 0.0 and cy - reach >= 0.0 and cx + reach < xmax and cy + reach < ymax:
        _bilinear_all(pairs, w, cx, cy, dx, dy, vals, fx, fy, idx, quads)
        for b in range(n_bins):
            sums[b] = segment_sum(vals, starts[b], starts[b + 1])
            counts[b] = starts[b + 1] - starts[b]
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
