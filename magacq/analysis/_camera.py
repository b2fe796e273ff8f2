"""The camera's view of a trapped bead: an Ornstein-Uhlenbeck coordinate, blurred, sampled.

A bead's coordinate in a harmonic trap is an OU process of variance ``var = kT / k`` and
correlation time ``tau = gamma / k``. A camera reports, every ``dt = 1 / frame_rate``, its mean
over an exposure ``W <= dt``. That sequence is stationary with covariance, exactly,

- lag 0: ``c0 = var * 2 / a**2 * (a - 1 + exp(-a))`` with ``a = W / tau`` (blur lowers it),
- lag ``m >= 1``: ``amp * r**m`` with ``r = exp(-dt / tau)`` and
  ``amp = var * 2 * (cosh(a) - 1) / a**2``

(Wong & Halvorsen 2006; ``W = 0`` gives ``c0 = amp = var``). Its spectrum and Allan variance
follow in closed form (:mod:`._spectrum`, :mod:`._allan`): they contain aliasing and motion blur
with no truncated sums, which is what the fits of te Velthuis et al. (2010) approximate.
"""

import numpy as np

__all__ = ["camera_covariance"]

#: exposures over this many correlation times: the samples are uncorrelated (r = 0 to float
#: precision, as exp(-dt / tau) <= exp(-a)), and cosh(a) would overflow
MAX_A = 700.0


def camera_covariance(
    var: float, tau: float, frame_rate: float, exposure_s: float
) -> tuple[float, float, float]:
    """``(c0, amp, r)``: the covariance of the camera's samples (lag 0; ``amp * r**m`` at m).

    Parameters
    ----------
    var : float
        Variance of the bead's coordinate, ``kT / k`` (nm^2).
    tau : float
        Correlation time ``gamma / k`` (s).
    frame_rate : float
        Frames per second.
    exposure_s : float
        Exposure time, at most ``1 / frame_rate``.
    """
    a = exposure_s / tau
    r = float(np.exp(-1.0 / (frame_rate * tau)))
    if a < 1e-6:  # series of the expressions below, exact to float precision
        c0 = var * (1 - a / 3)
        amp = var * (1 + a * a / 12)
    else:
        c0 = var * 2 * (a + np.expm1(-a)) / (a * a)
        # amp * r**m, m >= 1, is below var * exp((W - dt) / tau): 0 where cosh(a) would overflow
        amp = var * 2 * (np.cosh(a) - 1) / (a * a) if a < MAX_A else 0.0
    return float(c0), float(amp), r
