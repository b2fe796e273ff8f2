"""XY estimators of one ROI: centre of mass, symmetric auto-convolution, quadrant interpolation."""

import numpy as np
from numba import njit

from ._sampling import FASTMATH

# A quadrant's radial profile moves by mean(cos) over +-45 degrees of the true shift.
QI_GAIN = 2.0 * np.sqrt(2.0) / np.pi


@njit(cache=True, fastmath=FASTMATH)
def background(img: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the ROI's one-pixel border."""
    h, w = img.shape
    s = 0.0
    s2 = 0.0
    n = 0
    for i in range(w):
        for j in (0, h - 1):
            v = img[j, i]
            s += v
            s2 += v * v
            n += 1
    for j in range(1, h - 1):
        for i in (0, w - 1):
            v = img[j, i]
            s += v
            s2 += v * v
            n += 1
    mean = s / n
    var = s2 / n - mean * mean
    return mean, np.sqrt(max(var, 0.0))


@njit(cache=True, fastmath=FASTMATH)
def center_of_mass(img: np.ndarray, bg: float, noise: float) -> tuple[float, float]:
    """Centre of mass of ``|img - bg|`` above three noise sigmas.

    NaN when fewer than 2 % of the pixels rise above (pure noise: 0.3 %): no bead here.
    """
    h, w = img.shape
    thr = 3.0 * noise
    sw = 0.0
    sx = 0.0
    sy = 0.0
    n = 0.0
    for j in range(h):
        rw = 0.0
        for i in range(w):  # branch-free: vectorizes
            v = max(abs(img[j, i] - bg) - thr, 0.0)
            rw += v
            sx += v * i
            n += 1.0 if v > 0.0 else 0.0
        sw += rw
        sy += rw * j
    if sw <= 0.0 or n < 0.02 * h * w:
        return np.nan, np.nan
    return sx / sw, sy / sw


def autoconv_tables(n: int, max_freq: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Cosine and sine tables ``(n_freq, n)`` of the DFT of an ``n``-pixel profile padded to 2n.

    Only frequencies up to ``max_freq`` cycles/pixel are kept: bead images carry nothing above
    (a bright-field bead's rings lie below 0.25 at 100 nm pixels), so the rest is noise.
    """
    m = 2 * n
    k = np.arange(int(max_freq * m) + 1)[:, None]
    ang = 2.0 * np.pi * k * np.arange(n)[None, :] / m
    return np.cos(ang), np.sin(ang)


@njit(cache=True, fastmath=FASTMATH)
def _autoconv_peak(
    p: np.ndarray,
    guess: float,
    cos_t: np.ndarray,
    sin_t: np.ndarray,
    pr: np.ndarray,
    pi: np.ndarray,
) -> float:
    """Centre of symmetry of profile ``p``: half the lag that maximises its self-convolution.

    The self-convolution of the zero-padded profile is a trigonometric polynomial in the lag,
    ``C(t) = Re sum_k c_k P_k^2 exp(2 pi i k t / m)``, so its maximum is found without
    interpolating the image: a coarse scan around ``2 * guess`` then Newton steps.
    """
    n_f, n = cos_t.shape
    m = 2 * n
    # P_k^2 of the real profile, stored as (pr, pi); c_k = 1 for k = 0, else 2.
    for k in range(n_f):
        re = 0.0
        im = 0.0
        for i in range(n):
            re += p[i] * cos_t[k, i]
            im -= p[i] * sin_t[k, i]
        c = 1.0 if k == 0 else 2.0
        pr[k] = c * (re * re - im * im)
        pi[k] = c * 2.0 * re * im
    w0 = 2.0 * np.pi / m
    best_t = 2.0 * guess
    best = -np.inf
    for s in range(-8, 9):
        t = 2.0 * guess + s
        if t < 0.0 or t > 2.0 * (n - 1):
            continue
        cw = np.cos(w0 * t)
        sw = np.sin(w0 * t)
        er = 1.0
        ei = 0.0
        c = 0.0
        for k in range(n_f):
            c += pr[k] * er - pi[k] * ei
            er, ei = er * cw - ei * sw, er * sw + ei * cw
        if c > best:
            best = c
            best_t = t
    t = best_t
    for _ in range(5):
        cw = np.cos(w0 * t)
        sw = np.sin(w0 * t)
        er = 1.0
        ei = 0.0
        d1 = 0.0
        d2 = 0.0
        for k in range(n_f):
            re = pr[k] * er - pi[k] * ei
            im = pr[k] * ei + pi[k] * er
            d1 -= w0 * k * im
            d2 -= (w0 * k) ** 2 * re
            er, ei = er * cw - ei * sw, er * sw + ei * cw
        if not (d2 < 0.0):
            break
        step = -d1 / d2
        step = min(max(step, -0.5), 0.5)
        t += step
        if abs(step) < 1e-7:
            break
    return 0.5 * t


@njit(cache=True, fastmath=FASTMATH)
def auto_convolution(
    img: np.ndarray,
    bg: float,
    x0: float,
    y0: float,
    cos_t: np.ndarray,
    sin_t: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pr: np.ndarray,
    pi: np.ndarray,
) -> tuple[float, float]:
    """Refine ``(x0, y0)`` by the symmetric self-convolution of the column and row sums.

    A radially symmetric bead projects onto each axis as a profile symmetric about the centre;
    its self-convolution (the profile times its mirror image, at every shift) peaks at twice the
    centre. Square ROIs only (``cos_t``, ``sin_t`` from ``autoconv_tables(roi)``).
    """
    h, w = img.shape
    px[:] = 0.0
    py[:] = 0.0
    for j in range(h):
        rs = 0.0
        for i in range(w):
            v = img[j, i] - bg
            px[i] += v
            rs += v
        py[j] = rs
    return (
        _autoconv_peak(px, x0, cos_t, sin_t, pr, pi),
        _autoconv_peak(py, y0, cos_t, sin_t, pr, pi),
    )


@njit(cache=True, fastmath=FASTMATH)
def _qi_axis(
    sums: np.ndarray, counts: np.ndarray, q_neg: int, q_pos: int, n_r: int, prof: np.ndarray
) -> float:
    """Shift, in radial steps, along one axis from the mirrored quadrant profiles."""
    m = 2 * n_r
    tot = 0.0
    nv = 0
    for k in range(n_r):
        c = counts[q_neg * n_r + k]
        v = sums[q_neg * n_r + k] / c if c > 0 else np.nan
        prof[n_r - 1 - k] = v
        c = counts[q_pos * n_r + k]
        u = sums[q_pos * n_r + k] / c if c > 0 else np.nan
        prof[n_r + k] = u
    for j in range(m):
        if not np.isnan(prof[j]):
            tot += prof[j]
            nv += 1
    mean = tot / max(nv, 1)
    for j in range(m):
        prof[j] = 0.0 if np.isnan(prof[j]) else prof[j] - mean
    # C(t) = sum_j P[j] * P[m - 1 - j + t] peaks at t = 2 * shift / radial_step.
    t_max = 4
    vals = np.empty(2 * t_max + 1)
    best = -np.inf
    bi = t_max
    for ti in range(2 * t_max + 1):
        t = ti - t_max
        c = 0.0
        for j in range(max(0, t), min(m, m + t)):
            c += prof[j] * prof[m - 1 - j + t]
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
    sums: np.ndarray, counts: np.ndarray, n_r: int, radial_step: float, prof: np.ndarray
) -> tuple[float, float]:
    """Quadrant-interpolation correction ``(dx, dy)`` in pixels from quadrant sample sums.

    Quadrants are +x, +y, -x, -y (``sums[q * n_r + k]``), sampled around the current centre.
    """
    sx = _qi_axis(sums, counts, 2, 0, n_r, prof)
    sy = _qi_axis(sums, counts, 3, 1, n_r, prof)
    return sx * radial_step / QI_GAIN, sy * radial_step / QI_GAIN


@njit(cache=True, fastmath=FASTMATH)
def _spline_coefficients(prof: np.ndarray, coef: np.ndarray) -> None:
    """Catmull-Rom cubic of the profile between bins k and k + 1 into ``coef[k + 1]``.

    Row 0 covers r < half a step (u in [-1, 0)): the profile is even in r, so bin -1 is bin 0
    mirrored and bin -2 is bin 1.
    """
    n_r = prof.shape[0]
    for k in range(-1, n_r - 2):
        p0 = prof[k - 1] if k >= 1 else prof[-k]
        p1 = prof[k] if k >= 0 else prof[0]
        p2 = prof[k + 1]
        p3 = prof[k + 2]
        coef[k + 1, 0] = p1
        coef[k + 1, 1] = 0.5 * (p2 - p0)
        coef[k + 1, 2] = p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3
        coef[k + 1, 3] = 0.5 * (p3 - p0) + 1.5 * (p1 - p2)


@njit(cache=True, fastmath=FASTMATH)
def template_fit(
    img: np.ndarray, cx: float, cy: float, prof: np.ndarray, radial_step: float, coef: np.ndarray
) -> tuple[float, float]:
    """One Gauss-Newton step fitting ``img`` by its own radial profile ``prof`` about ``(cx, cy)``.

    The model ``prof(|p - c|)`` (Catmull-Rom in r) is symmetric about ``c`` by construction and
    evaluated at pixel centres, so, unlike interpolating the image, it favours no sub-pixel
    phase. Pixels are weighted by a taper that falls smoothly to zero at the last whole bin.
    ``coef`` is scratch of shape (n_r - 1, 4).
    """
    h, w = img.shape
    n_r = prof.shape[0]
    _spline_coefficients(prof, coef)
    inv = 1.0 / radial_step
    r_max = (n_r - 1.5) * radial_step
    r_taper = r_max - 4.0 * radial_step
    inv_taper = 1.0 / (r_max - r_taper)
    r_max2 = r_max * r_max
    k_top = n_r - 1.5  # u stays inside the last coefficient row
    jxx = 0.0
    jxy = 0.0
    jyy = 0.0
    gx = 0.0
    gy = 0.0
    rb = np.empty(w)
    ib = np.empty(w)
    for j in range(max(0, int(cy - r_max)), min(h - 1, int(cy + r_max) + 1) + 1):
        ddy = j - cy
        half2 = r_max2 - ddy * ddy
        if half2 <= 0.0:
            continue
        half = np.sqrt(half2)
        i0 = max(0, int(np.ceil(cx - half)))
        m = min(w - 1, int(cx + half)) - i0 + 1
        # Radii first, in a loop without branches or gathers so that it vectorizes.
        # (Kept as two single-output loops: LLVM vectorizes those, not a fused one.)
        for q in range(m):
            ddx = i0 + q - cx
            rb[q] = np.sqrt(ddx * ddx + ddy * ddy + 1e-18)  # > 0 at the centre pixel
        for q in range(m):
            ib[q] = inv / rb[q]
        for q in range(m):
            r = rb[q]
            u = min(r * inv + 0.5, k_top)  # = (r / step - 0.5) + 1: coefficient row + fraction
            k = int(u)
            t = u - k
            c1 = coef[k, 1]
            c2 = coef[k, 2]
            c3 = coef[k, 3]
            val = coef[k, 0] + t * (c1 + t * (c2 + t * c3))
            slope = c1 + t * (2.0 * c2 + 3.0 * t * c3)
            # d model / d (cx, cy) = a * (ddx, ddy); weighted by the taper near r_max.
            a = -slope * ib[q]
            wa = a
            if r > r_taper:
                s = (r_max - r) * inv_taper
                wa *= s * s * (3.0 - 2.0 * s)
            ddx = i0 + q - cx
            q2 = wa * a
            we = wa * (img[j, i0 + q] - val)
            jxx += q2 * ddx * ddx
            jxy += q2 * ddx * ddy
            jyy += q2 * ddy * ddy
            gx += we * ddx
            gy += we * ddy
    det = jxx * jyy - jxy * jxy
    if not (det > 0.0):
        return cx, cy
    return cx + (jyy * gx - jxy * gy) / det, cy + (jxx * gy - jxy * gx) / det
