"""XY estimators of one ROI: centre of mass, symmetric auto-convolution, quadrant interpolation."""

import numpy as np
from numba import njit

from ._fitpass import N_PARAMS, N_SUMS, fit_runs
from ._sampling import FASTMATH
from ._simd import LANES, TABLE, aligned_empty, argmax, dot_rows2, tile_sums

# A quadrant's radial profile moves by mean(cos) over +-45 degrees of the true shift.
QI_GAIN = 2.0 * np.sqrt(2.0) / np.pi


#: A bead is there when the ROI's variance exceeds its noise variance by this many times the
#: noise variance (pure noise: 0 +- 0.02 at 64 px, +- 0.1 at 16 px; beads 3 to 900).
MIN_EXCESS_VARIANCE = 1.0
#: Noise variance gain of the fourth difference (1, -4, 6, -4, 1): sum of its squared weights. It
#: passes white noise and suppresses the smooth rings (power gain (2 sin(pi f))^8: 3.6 at 0.2
#: cycles/px, the NA's limit at 100 nm/px, 0.02 at 0.1, against 70 on average for noise).
_D4_GAIN = 70.0
#: How far (pixels) from the centre-of-mass guess the self-convolution's peak is looked for: the
#: guess can be that far off when the ROI cuts a large bead's rings, and a global search could
#: lock onto the mirror symmetry of rings the ROI's edge cut.
AUTOCONV_REACH_PX = 16


@njit(cache=True, fastmath=FASTMATH)
def load_roi(
    roi: np.ndarray, img: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[float, float, float, float]:
    """Copy ``roi`` into float32 ``img``; its background, noise, contrast and column/row sums.

    Returns ``(bg, noise, excess,
    peak)``: ``bg`` the mean of the one-pixel border; ``noise`` the pixel noise's standard
    deviation, from the fourth differences along (at least 16 of) the rows, which the smooth
    rings barely reach (unlike the border's spread, which the rings dominate once they reach
    the edge); ``excess`` the ROI's variance above that noise, in units of the noise variance
    (> ``MIN_EXCESS_VARIANCE``: a bead is there; ``inf`` for a noiseless image with contrast);
    ``peak`` the largest ``|img - bg|``. ``px``, ``py`` (float32: sums of up to 256 rows of
    16-bit pixels are exact, and the self-convolution works in float32) receive the column and
    row sums of ``img - bg`` (the profiles of :func:`auto_convolution`).
    """
    h, w = roi.shape
    n = h * w
    src = roi.reshape(n)
    flat = img.reshape(n)
    ref = np.float32(src[0])  # sums of squares relative to a pixel: no cancellation
    zero = np.float32(0.0)
    s2 = zero
    # Min/max on the source's own type: float min/max, NaN-aware without fastmath's nnan, stay
    # scalar. One pass, vectorized.
    lo_src = src[0]
    hi_src = src[0]
    for k in range(n):
        v = np.float32(src[k])
        flat[k] = v
        d = v - ref
        s2 += d * d
        lo_src = min(lo_src, src[k])
        hi_src = max(hi_src, src[k])
    lo = np.float32(lo_src)
    hi = np.float32(hi_src)
    # Row and column sums: whole tiles of 16 rows by whole vectors (_simd.tile_sums), the rest
    # (the last columns and rows) here.
    px[:w] = zero
    whole = w - w % LANES
    tiles = h - h % LANES
    for j0 in range(0, tiles, LANES):
        tile_sums(img, j0, whole, px, py)
    for j in range(h):
        i0 = whole if j < tiles else 0
        if i0 < w:
            r0 = py[j] if j < tiles else zero
            for i in range(i0, w):
                r0 += img[j, i]
                px[i] += img[j, i]
            py[j] = r0
    total = 0.0
    for j in range(h):
        total += py[j]
    s1 = total - n * float(ref)
    # The border: the first and last rows and columns, less the corners counted twice.
    border = float(py[0]) + float(py[h - 1]) + float(px[0]) + float(px[w - 1])
    border -= float(img[0, 0]) + float(img[0, w - 1]) + float(img[h - 1, 0])
    border -= float(img[h - 1, w - 1])
    bg = border / (2 * (w + h) - 4)
    for i in range(w):
        px[i] -= h * bg
    for j in range(h):
        py[j] -= w * bg
    var = max(s2 / n - (s1 / n) ** 2, 0.0)
    d2 = 0.0
    nd = 0
    row_step = max(1, h // 16)
    for j in range(0, h, row_step):
        r2 = np.float32(0.0)
        for i in range(w - 4):
            d = (
                img[j, i] - np.float32(4.0) * img[j, i + 1] + np.float32(6.0) * img[j, i + 2]
                - np.float32(4.0) * img[j, i + 3] + img[j, i + 4]
            )  # fmt: skip
            r2 += d * d
        d2 += r2
        nd += w - 4
    noise2 = d2 / (nd * _D4_GAIN)
    if noise2 > 0.0:
        excess = var / noise2 - 1.0
    else:
        excess = np.inf if var > 0.0 else 0.0
    return bg, np.sqrt(noise2), excess, max(hi - bg, bg - lo)


@njit(cache=True, fastmath=FASTMATH)
def center_of_mass(
    img: np.ndarray, bg: float, threshold: float, cols: np.ndarray, step: int = 1
) -> tuple[float, float]:
    """Centre of mass of ``|img - bg|`` above ``threshold``, over every ``step``-th row; NaN if
    nothing rises above.

    Per column, the weights' sum and their sum times the row (``cols``: float32 scratch of
    ``2 * w``), accumulated four rows at a time in vectors: no reduction across a row's lanes.
    """
    h, w = img.shape
    b = np.float32(bg)
    t = np.float32(threshold)
    zero = np.float32(0.0)
    cw = cols[:w]
    cy = cols[w : 2 * w]
    cw[:] = zero
    cy[:] = zero
    rows = -(-h // step)  # rows j * step
    for k in range(0, rows - 3, 4):  # four rows at a time: a quarter of the columns' loads, stores
        j0, j1, j2, j3 = k * step, (k + 1) * step, (k + 2) * step, (k + 3) * step
        f0, f1, f2, f3 = np.float32(j0), np.float32(j1), np.float32(j2), np.float32(j3)
        for i in range(w):  # branch-free: vectorizes
            v0 = max(abs(img[j0, i] - b) - t, zero)
            v1 = max(abs(img[j1, i] - b) - t, zero)
            v2 = max(abs(img[j2, i] - b) - t, zero)
            v3 = max(abs(img[j3, i] - b) - t, zero)
            cw[i] += (v0 + v1) + (v2 + v3)
            cy[i] += (v0 * f0 + v1 * f1) + (v2 * f2 + v3 * f3)
    for k in range(rows - rows % 4, rows):
        j = k * step
        fj = np.float32(j)
        for i in range(w):
            v = max(abs(img[j, i] - b) - t, zero)
            cw[i] += v
            cy[i] += v * fj
    sw = 0.0
    sx = 0.0
    sy = 0.0
    for i in range(w):
        sw += cw[i]
        sx += cw[i] * i
        sy += cy[i]
    if not (sw > 0.0):
        return np.nan, np.nan
    return sx / sw, sy / sw


#: Whole vectors of lags the self-convolution's scan computes: all of ``+-AUTOCONV_REACH_PX`` px.
SCAN_BLOCKS = -(-(4 * AUTOCONV_REACH_PX + 1) // LANES)
#: Columns of the DFT table per :func:`._simd.dot_rows` call: 4 vectors of frequencies.
_DFT_BLOCKS = 4


def autoconv_tables(n: int, max_freq: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """The self-convolution's tables for ``n``-pixel profiles: ``dft`` and ``scan``, float32.

    Only frequencies ``k`` up to ``max_freq`` cycles/pixel are kept (of the profile zero-padded
    to ``m = 2n``): bead images carry nothing above (a bright-field bead's rings lie below 0.25
    at 100 nm pixels), so the rest is noise. ``dft`` ``(n, 2K)``: at pixel ``i``,
    ``cos(2 pi k i / m)`` for ``k = 1 .. K`` then the sines (zero beyond the last frequency; K
    whole blocks of vectors). ``scan`` ``(2 n_freq, SCAN_BLOCKS * LANES)``: at lag ``u`` of
    the scan's window, the cosines of ``k = 0 .. n_freq - 1`` then their sines. Both for
    :func:`._simd.dot_rows`: sums over the rows, lanes along a row.
    """
    m = 2 * n
    n_f = int(max_freq * m) + 1
    kk = np.arange(1, n_f)
    blocks = -(-(n_f - 1) // (LANES * _DFT_BLOCKS // 2)) * (LANES * _DFT_BLOCKS // 2)
    dft = np.zeros((n, 2 * blocks))
    ang = 2.0 * np.pi * np.arange(n)[:, None] * kk[None, :] / m
    dft[:, : n_f - 1] = np.cos(ang)
    dft[:, blocks : blocks + n_f - 1] = np.sin(ang)
    ang = 2.0 * np.pi * np.arange(n_f)[:, None] * np.arange(SCAN_BLOCKS * LANES)[None, :] / m
    scan = np.vstack([np.cos(ang), np.sin(ang)])
    return dft.astype(np.float32), scan.astype(np.float32)


@njit(cache=True)
def _padded(n: int) -> int:
    """``n`` rounded up to whole vectors."""
    return -(-n // LANES) * LANES


@njit(cache=True)
def autoconv_scratch(
    dft: np.ndarray, scan: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scratch ``pr, pi`` (float64) and ``conv`` (float32, on a cache line) of
    :func:`auto_convolution` with these tables: each axis's half of them."""
    n_f = scan.shape[0] // 2
    size = dft.shape[1] + _padded(2 * n_f) + SCAN_BLOCKS * LANES
    return np.empty(4 * n_f), np.empty(4 * n_f), aligned_empty(2 * size, np.float32)


#: Powers of a rotation computed one after the other before the rest go 8 at a time (one
#: float64 AVX-512 vector).
_ROT = 8


@njit(cache=True, fastmath=FASTMATH)
def _rotations(angle: float, er: np.ndarray, ei: np.ndarray) -> None:
    """``er[k] + i ei[k] = exp(i k angle)`` for every ``k`` of ``er``."""
    n_f = er.shape[0]
    cw = np.cos(angle)
    sw = np.sin(angle)
    # The first 8 powers by one rotation each, then 8 at a time (independent: vectorizes).
    er[0] = 1.0
    ei[0] = 0.0
    for k in range(1, min(_ROT, n_f)):
        er[k] = er[k - 1] * cw - ei[k - 1] * sw
        ei[k] = er[k - 1] * sw + ei[k - 1] * cw
    if n_f > _ROT:
        c8 = er[_ROT - 1] * cw - ei[_ROT - 1] * sw
        s8 = er[_ROT - 1] * sw + ei[_ROT - 1] * cw
        for k in range(_ROT, n_f):
            er[k] = er[k - _ROT] * c8 - ei[k - _ROT] * s8
            ei[k] = er[k - _ROT] * s8 + ei[k - _ROT] * c8


@njit(cache=True, fastmath=FASTMATH)
def _scan_weights(
    p: np.ndarray, ft: np.ndarray, guess: float, pr: np.ndarray, pi: np.ndarray, wt: np.ndarray
) -> int:
    """The scan's weights ``wt`` from profile ``p`` and its DFT ``ft``; the scan's first lag.

    ``pr, pi`` (Re, Im) receive ``c_k P_k^2`` of the real profile in their first ``n_f``
    entries; ``c_k = 1`` for ``k = 0`` (the plain sum), else 2. The scan's lags ``lo + u``:
    ``C(lo + u) = sum_k Re (c_k P_k^2 exp(i k w0 lo)) cos(k w0 u) - Im (..) sin(k w0 u)``.
    """
    n = p.shape[0]
    n_f = pr.shape[0] // 2
    nk = ft.shape[0] // 2
    s0 = np.float32(0.0)
    for i in range(n):
        s0 += p[i]
    pr[0] = float(s0) ** 2
    pi[0] = 0.0
    for k in range(1, n_f):
        re = float(ft[k - 1])
        im = float(ft[nk + k - 1])
        pr[k] = 2.0 * (re * re - im * im)
        pi[k] = -4.0 * re * im
    m = 2 * n
    reach = 2 * AUTOCONV_REACH_PX
    lo = min(max(int(2.0 * guess) - reach, 0), m - 2)
    er = pr[n_f:]
    ei = pi[n_f:]
    _rotations(2.0 * np.pi / m * lo, er, ei)
    for k in range(n_f):
        wt[k] = pr[k] * er[k] - pi[k] * ei[k]
        wt[n_f + k] = -(pr[k] * ei[k] + pi[k] * er[k])
    return lo


@njit(cache=True, fastmath=FASTMATH)
def _scan_peak(
    cv: np.ndarray, guess: float, lo: int, m: int, pr: np.ndarray, pi: np.ndarray
) -> float:
    """Half the lag that maximises the self-convolution, from the scan ``cv`` of lags ``lo +
    u``: the best whole lag within ``AUTOCONV_REACH_PX`` of ``2 * guess``, a parabola through
    it and its neighbours, then Newton steps on the trigonometric polynomial (float64; ``pr,
    pi`` from :func:`_scan_weights`)."""
    n_f = pr.shape[0] // 2
    hi = max(min(int(2.0 * guess) + 2 * AUTOCONV_REACH_PX + 1, m - 1), lo + 1)
    b = argmax(cv[: hi - lo])
    t = float(lo + b)
    if 0 < b < hi - lo - 1:  # the parabola through the best lag and its neighbours: Newton's start
        den = cv[b - 1] - 2.0 * cv[b] + cv[b + 1]
        if den < 0.0:
            t += min(max(0.5 * (cv[b - 1] - cv[b + 1]) / den, -0.5), 0.5)
    w0 = 2.0 * np.pi / m
    er = pr[n_f:]  # exp(i k w0 t) of each frequency
    ei = pi[n_f:]
    for _ in range(5):
        _rotations(w0 * t, er, ei)
        d1 = 0.0
        d2 = 0.0
        for k in range(n_f):
            re = pr[k] * er[k] - pi[k] * ei[k]
            im = pr[k] * ei[k] + pi[k] * er[k]
            d1 -= k * im
            d2 -= (k * k) * re
        d1 *= w0
        d2 *= w0 * w0
        if not (d2 < 0.0):
            break
        step = -d1 / d2
        step = min(max(step, -0.5), 0.5)
        t += step
        if abs(step) < 1e-4:  # converging quadratically: the next step would be ~1e-8
            break
    return 0.5 * t


@njit(cache=True, fastmath=FASTMATH)
def auto_convolution(
    px: np.ndarray,
    py: np.ndarray,
    x0: float,
    y0: float,
    dft: np.ndarray,
    scan: np.ndarray,
    pr: np.ndarray,
    pi: np.ndarray,
    conv: np.ndarray,
) -> tuple[float, float]:
    """Refine ``(x0, y0)`` by the symmetric self-convolution of the column and row sums.

    A radially symmetric bead projects onto each axis as a profile symmetric about the centre
    (``px``, ``py``: the column and row sums of the ROI minus its background, from
    :func:`load_roi`); its self-convolution (the profile times its mirror image, at every shift)
    peaks at twice the centre. That self-convolution of the zero-padded profile is a
    trigonometric polynomial in the lag, ``C(t) = Re sum_k c_k P_k^2 exp(2 pi i k t / m)``, so
    its maximum is found without interpolating the image: the DFT ``P_k`` (float32 sums over
    pixels, all frequencies at once), a scan of the whole lags near twice the guess (float32:
    it only picks the lag), then Newton steps (:func:`_scan_peak`). Both axes share the tables:
    their DFTs, then their scans, in one pass each (:func:`._simd.dot_rows2`). Square ROIs only
    (tables from ``autoconv_tables(roi)``, scratch from :func:`autoconv_scratch`).
    """
    n_f = scan.shape[0] // 2
    nk2 = dft.shape[1]
    n_w = _padded(2 * n_f)
    n_s = SCAN_BLOCKS * LANES
    size = nk2 + n_w + n_s
    cx = conv[:size]
    cy = conv[size : 2 * size]
    ftx, fty = cx[:nk2], cy[:nk2]  # the DFT at k >= 1: Re, then Im
    for c in range(0, nk2, _DFT_BLOCKS * LANES):
        dot_rows2(px, py, dft, c, ftx[c:], fty[c:], _DFT_BLOCKS)
    wx, wy = cx[nk2 : nk2 + 2 * n_f], cy[nk2 : nk2 + 2 * n_f]  # the scan's weights
    lo_x = _scan_weights(px, ftx, x0, pr[: 2 * n_f], pi[: 2 * n_f], wx)
    lo_y = _scan_weights(py, fty, y0, pr[2 * n_f :], pi[2 * n_f :], wy)
    cvx, cvy = cx[nk2 + n_w :], cy[nk2 + n_w :]
    dot_rows2(wx, wy, scan, 0, cvx, cvy, SCAN_BLOCKS)  # all the lags of both scans at once
    m = 2 * px.shape[0]
    return (
        _scan_peak(cvx, x0, lo_x, m, pr[: 2 * n_f], pi[: 2 * n_f]),
        _scan_peak(cvy, y0, lo_y, m, pr[2 * n_f :], pi[2 * n_f :]),
    )


#: Lags of the QI self-correlation scanned on each side of zero, in bins (2 x the shift).
QI_LAGS = 4


#: LLVM vectorizes a float64 loop 32 elements at a time (4 vectors of 8) and leaves the rest to
#: scalar code: the QI profiles are zero-padded to whole blocks of it.
_QI_BLOCK = 32


@njit(cache=True)
def _qi_padded(n_r: int) -> int:
    """Length of a QI axis profile (``2 n_r``) padded to whole blocks of ``_QI_BLOCK``."""
    return -(-2 * n_r // _QI_BLOCK) * _QI_BLOCK


@njit(cache=True)
def qi_scratch_size(n_r: int) -> int:
    """Length of the float64 scratch :func:`qi_shift` needs."""
    return 2 * (_qi_padded(n_r) + 2 * QI_LAGS) + 2 * QI_LAGS + 1


@njit(cache=True, fastmath=FASTMATH)
def bin_means(sums: np.ndarray, counts: np.ndarray, means: np.ndarray) -> None:
    """``means[b] = sums[b] / counts[b]``, NaN where a bin had no sample (one vector pass):
    the quadrant profiles of :func:`qi_shift` and :func:`asymmetry`."""
    for b in range(sums.shape[0]):
        c = counts[b]
        means[b] = sums[b] / c if c > 0 else np.nan


@njit(cache=True, fastmath=FASTMATH)
def _qi_axis(means: np.ndarray, q_neg: int, q_pos: int, n_r: int, work: np.ndarray) -> float:
    """Shift, in radial steps, along one axis from the mirrored quadrant profiles.

    ``p`` is the profile along the axis through the centre (quadrant ``q_neg`` mirrored, then
    ``q_pos``), less its mean, empty bins 0; its self-correlation ``C(t) = sum_j p[j] p[m - 1 -
    j + t]`` peaks at ``t = 2 * shift``. ``rev`` holds ``p`` reversed with ``QI_LAGS`` zeros on
    each side, so that every lag is one dot product over the whole profile (vectorized: both
    zero-padded to whole blocks of ``_QI_BLOCK``).
    """
    m = 2 * n_r
    mp = _qi_padded(n_r)
    t_max = QI_LAGS
    p = work[:mp]
    rev = work[mp : 2 * mp + 2 * t_max]
    vals = work[2 * mp + 2 * t_max : 2 * mp + 4 * t_max + 1]
    tot = 0.0
    for k in range(n_r):
        a = means[q_neg * n_r + k]
        b = means[q_pos * n_r + k]
        p[n_r - 1 - k] = a
        p[n_r + k] = b
        tot += a + b
    if tot == tot:  # no empty (NaN) bin: the common case, without a test per bin
        mean = tot / m
        for j in range(m):
            p[j] -= mean
    else:
        tot = 0.0
        nv = 0
        for j in range(m):
            ok = not np.isnan(p[j])
            tot += p[j] if ok else 0.0
            nv += 1 if ok else 0
        mean = tot / max(nv, 1)
        for j in range(m):
            p[j] = 0.0 if np.isnan(p[j]) else p[j] - mean
    p[m:] = 0.0
    rev[:t_max] = 0.0
    rev[t_max + m :] = 0.0
    for j in range(m):
        rev[t_max + j] = p[m - 1 - j]
    best = -np.inf
    bi = t_max
    for ti in range(2 * t_max + 1):  # lag t = ti - t_max: p[m - 1 - j + t] = rev[t_max + j - t]
        r = rev[2 * t_max - ti : 2 * t_max - ti + mp]
        c = 0.0
        for j in range(mp):
            c += p[j] * r[j]
        vals[ti] = c
        if c > best:
            best = c
            bi = ti
    if bi == 0 or bi == 2 * t_max:
        return 0.5 * (bi - t_max)
    den = vals[bi - 1] - 2.0 * vals[bi] + vals[bi + 1]
    off = 0.0 if den >= 0.0 else 0.5 * (vals[bi - 1] - vals[bi + 1]) / den
    return 0.5 * (bi - t_max + off)


@njit(cache=True, fastmath=FASTMATH)
def qi_shift(
    means: np.ndarray, n_r: int, radial_step: float, work: np.ndarray
) -> tuple[float, float]:
    """Quadrant-interpolation correction ``(dx, dy)`` in pixels from the quadrant profiles.

    Quadrants are +x, +y, -x, -y (``means[q * n_r + k]``, of :func:`bin_means`), sampled around
    the current centre. ``work``: float64 scratch of ``qi_scratch_size(n_r)``.
    """
    sx = _qi_axis(means, 2, 0, n_r, work)
    sy = _qi_axis(means, 3, 1, n_r, work)
    return sx * radial_step / QI_GAIN, sy * radial_step / QI_GAIN


#: Largest asymmetry (see :func:`asymmetry`) of the rings about a bead's centre. Measured on
#: both optical models of the tests, +-5 um, 300-4000 photons/px, 32-64 px ROIs: at most 0.017
#: about the true centre, 0.08-0.5 about a centre found inside the ROI for a bead outside it.
MAX_ASYMMETRY = 0.05


@njit(cache=True, fastmath=FASTMATH)
def asymmetry(means: np.ndarray, counts: np.ndarray, n_r: int) -> float:
    """How much the opposite quadrants' profiles differ, relative to how much they vary.

    ``sum (a - b)^2 / sum ((a - m)^2 + (b - m)^2)`` over the bins ``k`` that both quadrants
    ``a`` (+x, +y) and ``b`` (-x, -y) sampled, ``m`` their mean: 0 for rings symmetric about
    the centre, ~1 for unrelated profiles. NaN if no bin was sampled on both sides. ``means``
    of :func:`bin_means`, ``counts`` the samples of each bin.
    """
    m = 0.0
    nm = 0
    for b in range(4 * n_r):
        ok = counts[b] > 0
        m += means[b] if ok else 0.0
        nm += 1 if ok else 0
    if nm == 0:
        return np.nan
    m /= nm
    num = 0.0
    den = 0.0
    half = 2 * n_r  # quadrants +x, +y against -x, -y: bin b against bin b + 2 n_r
    for b in range(half):
        ok = counts[b] > 0 and counts[b + half] > 0
        a = means[b]
        c = means[b + half]
        num += (a - c) ** 2 if ok else 0.0
        den += (a - m) ** 2 + (c - m) ** 2 if ok else 0.0
    return num / den if den > 0.0 else np.nan


@njit(cache=True, fastmath=FASTMATH)
def _spline_coefficients(prof: np.ndarray, coef: np.ndarray) -> None:
    """Catmull-Rom cubic of the profile between bins k and k + 1 into ``coef[:, k + 1]``.

    Row 0 covers r < half a step (u in [-1, 0)): the profile is even in r, so bin -1 is bin 0
    mirrored and bin -2 is bin 1.
    """
    n_r = prof.shape[0]
    for k in range(-1, n_r - 2):
        p0 = prof[k - 1] if k >= 1 else prof[-k]
        p1 = prof[k] if k >= 0 else prof[0]
        p2 = prof[k + 1]
        p3 = prof[k + 2]
        coef[0, k + 1] = p1
        coef[1, k + 1] = 0.5 * (p2 - p0)
        coef[2, k + 1] = p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3
        coef[3, k + 1] = 0.5 * (p3 - p0) + 1.5 * (p1 - p2)


#: Image rows per block of :func:`template_fit`: float32 sums within a block, float64 across.
FIT_ROWS = 8


@njit(cache=True)
def fit_scratch(n_r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scratch ``coef, row, runs`` of :func:`template_fit` for ``n_r`` bins.

    ``coef`` (4, n_r - 1) spline coefficients, padded to the permute table's 32 entries and
    zeroed; ``row`` float32 of the pass's sums, parameters and runs' offsets; both on cache
    lines; ``runs`` int64, the runs' starts and lengths.
    """
    coef = aligned_empty(4 * max(TABLE, n_r - 1), np.float32)
    coef[:] = 0.0
    row = aligned_empty((N_SUMS + 1) * LANES + 2 * FIT_ROWS, np.float32)
    return coef.reshape((4, -1)), row, np.empty(2 * FIT_ROWS, np.int64)


@njit(cache=True, fastmath=FASTMATH)
def _lane_sum(v: np.ndarray, j: int) -> float:
    """The sum of the ``j``-th vector of ``v``'s lanes (float32)."""
    f = np.float32(0.0)
    for lane in range(LANES):
        f += v[j * LANES + lane]
    return float(f)


@njit(cache=True, fastmath=FASTMATH)
def template_fit(
    img: np.ndarray,
    cx: float,
    cy: float,
    prof: np.ndarray,
    radial_step: float,
    coef: np.ndarray,
    row: np.ndarray,
    runs: np.ndarray,
) -> tuple[float, float]:
    """One Gauss-Newton step fitting ``img`` by its own radial profile ``prof`` about ``(cx, cy)``.

    The model ``prof(|p - c|)`` (Catmull-Rom in r) is symmetric about ``c`` by construction and
    evaluated at pixel centres, so, unlike interpolating the image, it favours no sub-pixel
    phase. Pixels are weighted by a taper that falls smoothly to zero at the last whole bin
    (zero beyond it): only each row's run of pixels within that disc is visited
    (:func:`._fitpass.fit_runs`: float32 per pixel), float64 sums per block of ``FIT_ROWS``
    rows. ``img`` float32; scratch ``coef, row, runs`` from :func:`fit_scratch`.
    """
    h, w = img.shape
    n_r = prof.shape[0]
    _spline_coefficients(prof, coef)
    f32 = np.float32
    r_max = (n_r - 1.5) * radial_step
    flat = img.reshape(img.size)
    sums = row[: N_SUMS * LANES]
    par = row[N_SUMS * LANES : N_SUMS * LANES + N_PARAMS]
    offsets = row[(N_SUMS + 1) * LANES : (N_SUMS + 1) * LANES + 2 * FIT_ROWS]
    par[0] = r_max
    par[1] = 1.0 / (4.0 * radial_step)  # the taper spans the last 4 bins
    par[2] = 1.0 / radial_step
    par[3] = n_r - 1.5  # u stays inside the last coefficient row
    par[4] = 1e-12  # r > 0 at the centre pixel
    jxx = 0.0
    jxy = 0.0
    jyy = 0.0
    gx = 0.0
    gy = 0.0
    j_lo = max(0, int(cy - r_max))
    j_hi = min(h - 1, int(cy + r_max) + 1) + 1
    reach2 = r_max**2  # a pixel beyond r_max has weight 0: only the disc is fitted
    for jb in range(j_lo, j_hi, FIT_ROWS):
        sums[:] = 0.0
        n_runs = 0
        for j in range(jb, min(jb + FIT_ROWS, j_hi)):
            half = np.sqrt(max(reach2 - (j - cy) ** 2, 0.0))
            i0 = max(0, int(np.ceil(cx - half)))
            i1 = min(w, int(np.floor(cx + half)) + 1)
            if i1 > i0:
                runs[2 * n_runs] = j * w + i0
                runs[2 * n_runs + 1] = i1 - i0
                offsets[2 * n_runs] = f32(i0) - f32(cx)
                offsets[2 * n_runs + 1] = f32(j) - f32(cy)
                n_runs += 1
        fit_runs(flat, runs, offsets, n_runs, coef, par, sums)
        jxx += _lane_sum(sums, 0)
        jxy += _lane_sum(sums, 1)
        jyy += _lane_sum(sums, 2)
        gx += _lane_sum(sums, 3)
        gy += _lane_sum(sums, 4)
    det = jxx * jyy - jxy * jxy
    if not (det > 0.0):
        return cx, cy
    return cx + (jyy * gx - jxy * gy) / det, cy + (jxx * gy - jxy * gx) / det
