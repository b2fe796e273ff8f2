"""Force calibration by the exact likelihood of the trace itself (for traces of few corner times).

The camera's samples of a trapped bead (:mod:`._camera`) are a Gaussian ARMA(1, 1) sequence:
filtered by ``w_t = y_t - r y_{t-1}`` their covariance is tridiagonal (``c0`` then
``g0 = c0 (1 + r^2) - 2 r^2 amp`` on the diagonal, ``g1 = r (amp - c0)`` beside it), and the
filter's determinant is one. So the likelihood of the whole trace costs one tridiagonal
factorisation (LAPACK ``dpttrf``), O(n). The trace's mean is unknown: the likelihood is the
restricted one (REML), of the trace's differences from its generalised-least-squares mean. The
covariance is ``var`` times a matrix of ``tau`` alone, so ``var`` is solved for in closed form
and the fit is one-dimensional in ``tau``. Every k-th frame is a camera of ``1 / k`` the frame
rate with the same exposure, so the fit keeps ~10 frames per correlation time (the variance's
information is nearly all there): ~2 ms a fit of the softest trap's 18000 frames.

Why: a trace of few correlation times (a soft trap: 0.05 pN at 10 um has ``tau`` 6 s) gives its
spectrum few ordinates below the corner; the spectral fit then scatters ~1.7x more than this
one and is skewed, and no error computed at its estimate covers the truth 68 % of the time.

The interval is the likelihood's own (where twice the profile log-likelihood in ``var`` drops
by 1), so asymmetric: ``[force_lo_pn, force_hi_pn]``. On 800 traces of tweezepy's simulator
of the softest trap (60 Hz, 300 s) it holds the truth in 67.4 % (binomial sd 1.6 %), ln F
scatters by 0.21 (the spectrum's: 0.34). The estimate of ``var`` is chi-square-like with few
degrees of freedom: its mean is the truth (1.004x there), its median below, so the force's
median is ~3 % high in the softest trap (the force's mean 4 %: ``var`` is the unbiased one).
"""

from dataclasses import dataclass

import numpy as np

from magacq.analysis._camera import camera_covariance
from magacq.analysis._mle import MAX_ERR_LN_VAR
from magacq.analysis._spectrum import checked_trace

__all__ = ["LikelihoodFit", "fit_likelihood"]

#: points of the profile in ``tau`` across its own 68 % interval
_GRID = 12
#: frames per correlation time kept (fewer: slower, no better); frames kept at least
_FRAMES_PER_TAU = 10
_MIN_FRAMES = 256
#: what the search for an end of the interval sees outside it (ln var never gets there)
_OUTSIDE = 1e6
#: how far (in ln tau) the search for ``tau`` goes from the initial guess
_SPAN = 12.0


@dataclass(frozen=True)
class LikelihoodFit:
    """Force calibrated from the trace's exact likelihood.

    Attributes
    ----------
    force_pn : float
        ``kT * length / var`` at the maximum of the likelihood.
    force_lo_pn, force_hi_pn : float
        The likelihood interval (68 %; ``0`` and ``inf`` where it is unbounded).
    force_err_pn : float
        Half its width in ``ln F``, times the force (``inf`` when unbounded).
    var_nm2, tau_s, corner_hz : float
        Fitted variance, correlation time, ``1 / (2 pi tau)``.
    n_frames : int
    warnings : tuple of str
    """

    force_pn: float
    force_lo_pn: float
    force_hi_pn: float
    force_err_pn: float
    var_nm2: float
    tau_s: float
    corner_hz: float
    n_frames: int
    warnings: tuple[str, ...]


class _Trace:
    """The REML likelihood of one trace, ``var`` profiled out, as a function of ``ln tau``."""

    def __init__(self, y: np.ndarray, frame_rate: float, exposure_s: float) -> None:
        self.y, self.fs, self.exposure = y - y.mean(), frame_rate, exposure_s
        self.m = len(y) - 1  # degrees of freedom left by the mean

    def parts(self, ln_tau: float) -> tuple[float, float]:
        """``(Q, D)``: the likelihood is ``(m ln var + Q / var + D) / 2`` at ``var``."""
        from scipy.linalg import lapack  # here: scipy.linalg costs every run's start-up

        c0, amp, r = camera_covariance(1.0, float(np.exp(ln_tau)), self.fs, self.exposure)
        n = len(self.y)
        rhs = np.empty((n, 2))
        rhs[0] = self.y[0], 1.0
        rhs[1:, 0] = self.y[1:] - r * self.y[:-1]
        rhs[1:, 1] = 1.0 - r
        diag = np.full(n, c0 * (1 + r * r) - 2 * r * r * amp)
        diag[0] = c0
        d, e, info = lapack.dpttrf(diag, np.full(n - 1, r * (amp - c0)))
        if info != 0:
            return np.inf, np.inf
        solved, info = lapack.dpttrs(d, e, rhs)
        if info != 0:
            return np.inf, np.inf
        (syy, soy), (_, soo) = rhs.T @ solved
        return float(syy - soy * soy / soo), float(np.sum(np.log(d)) + np.log(soo))

    def profile(self, ln_tau: float) -> float:
        """Twice the negative log-likelihood, ``var`` at its best for this ``tau``."""
        q, d = self.parts(ln_tau)
        if not (np.isfinite(q) and q > 0):
            return np.inf
        return self.m * np.log(q / self.m) + d + self.m


def _var_end(q: float, d: float, m: int, limit: float, upper: bool) -> float:
    """The lower or upper end of the ``ln var`` where ``m ln var + q / var + d <= limit`` (NaN
    where none): ``v + exp(-v) = K`` in ``v = ln var - ln(q / m)``, solved by Lambert's W
    (branch 0 above, -1 below)."""
    from scipy.special import lambertw

    centre = (limit - d) / m
    k = centre - np.log(q / m)
    if not k >= 1:
        return np.nan
    return float(centre + lambertw(-np.exp(-k), 0 if upper else -1).real)


def _profile_end(trace: _Trace, grid: np.ndarray, parts: np.ndarray, limit: float,
                 upper: bool) -> float:  # fmt: skip
    """The end of the profile interval of ``ln var``: the extreme over ``tau`` of
    :func:`_var_end`, first on ``grid`` (where ``parts`` holds ``(Q, D)``) then refined by
    Brent's method (at fixed ``var`` the likelihood is a narrow ridge in ``tau``: a grid alone
    misses its tip)."""
    sign = -1.0 if upper else 1.0

    def end(q: float, d: float) -> float:
        v = _var_end(q, d, trace.m, limit, upper)
        return sign * v if np.isfinite(v) else _OUTSIDE  # finite: Brent's method needs it

    ends = np.array([end(q, d) for q, d in parts])
    i = int(np.argmin(ends))
    if ends[i] == _OUTSIDE:
        return np.nan
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    from scipy.optimize import minimize_scalar  # here: scipy.optimize costs every run's start-up

    res = minimize_scalar(lambda t: end(*trace.parts(t)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-4})  # fmt: skip
    return sign * min(float(res.fun), float(ends[i]))


def _downhill(trace: _Trace, start: float, step: float) -> float:
    """The grid point (``start + j step``) where the ``tau`` profile, walked downhill from
    ``start``, stops falling (within ``_SPAN``)."""
    here = trace.profile(start)
    if not trace.profile(start + step) < here:
        step = -step
    x = start
    while abs(x - start) < _SPAN:
        nxt = trace.profile(x + step)
        if not nxt < here:
            break
        x, here = x + step, nxt
    return x


def _edge(trace: _Trace, best: float, limit: float, step: float) -> float:
    """Where the ``tau`` profile crosses ``limit`` from ``best`` (``+-inf``: never, in reach)."""
    x = best
    while abs(x - best) < _SPAN:
        x += step
        if trace.profile(x) > limit:
            return x
        step *= 1.5
    return np.copysign(np.inf, step)


def fit_likelihood(
    x: np.ndarray,
    frame_rate: float,
    length_nm: float,
    *,
    exposure_s: float = 0.0,
    kt: float = 4.086,
) -> LikelihoodFit:
    """Calibrate the force on a bead from the exact likelihood of its lateral trace.

    Parameters and errors as :func:`~magacq.analysis.fit_spectrum`; returns
    :class:`LikelihoodFit`.
    """
    x, _, tau0 = checked_trace(x, frame_rate, exposure_s)
    # every k-th frame is a camera of frame rate / k with the same exposure: exactly the same
    # model, and at >= _FRAMES_PER_TAU frames per correlation time nearly all the information
    # on var (an OU sampled every d has Var(var) * (d / tau) coth(d / tau): 1 + (d / tau)^2 / 3)
    k = max(1, min(int(tau0 * frame_rate / _FRAMES_PER_TAU), len(x) // _MIN_FRAMES))
    trace = _Trace(x[::k], frame_rate / k, exposure_s)
    # downhill from the guess (the profile can have a second, shallow minimum at long tau),
    # then Brent's method
    t0 = _downhill(trace, float(np.log(tau0)), 0.25)
    if not np.isfinite(trace.profile(t0)):
        raise ValueError("the trace's likelihood is nowhere finite (a degenerate trace)")
    from scipy.optimize import minimize_scalar  # here: scipy.optimize costs every run's start-up

    res = minimize_scalar(trace.profile, bounds=(t0 - 0.25, t0 + 0.25), method="bounded",
                          options={"xatol": 1e-5})  # fmt: skip
    best = float(res.x)
    top = float(res.fun)
    q, d = trace.parts(best)
    var = q / trace.m
    tau = float(np.exp(best))
    force = kt * length_nm / var
    warnings: list[str] = []
    # the tau that can reach the var interval's ends lie in the tau profile's own interval
    lo_t = _edge(trace, best, top + 1, -0.05)
    hi_t = _edge(trace, best, top + 1, 0.05)
    if np.isfinite(lo_t) and np.isfinite(hi_t):
        grid = np.linspace(lo_t, hi_t, _GRID)
        parts = np.array([trace.parts(t) for t in grid])
        ln_lo = _profile_end(trace, grid, parts, top + 1, upper=False)
        ln_hi = _profile_end(trace, grid, parts, top + 1, upper=True)
    else:
        ln_lo = ln_hi = np.nan
    half = (ln_hi - ln_lo) / 2
    if not (np.isfinite(half) and half <= MAX_ERR_LN_VAR):
        warnings.append(
            "force undetermined: the fit cannot tell the variance from the correlation time "
            "(a corner far above Nyquist?): raise the frame rate or shorten the exposure"
        )
        f_lo, f_hi, err = 0.0, np.inf, np.inf
    else:
        f_lo, f_hi = kt * length_nm / np.exp(ln_hi), kt * length_nm / np.exp(ln_lo)
        err = force * half
    return LikelihoodFit(
        force_pn=float(force), force_lo_pn=float(f_lo), force_hi_pn=float(f_hi),
        force_err_pn=float(err), var_nm2=float(var), tau_s=tau,
        corner_hz=float(1 / (2 * np.pi * tau)), n_frames=len(x), warnings=tuple(warnings),
    )  # fmt: skip
