"""Camera-sampled Brownian motion of a trapped bead: exact, with exposure blur and aliasing.

A bead's lateral coordinate in a magnetic trap of stiffness ``k`` with drag ``gamma`` is an
Ornstein-Uhlenbeck process of variance ``kT / k`` and correlation time ``tau = gamma / k``. A
camera does not sample it: each frame averages it over the exposure ``W`` (motion blur) and
frames come every ``1 / frame_rate`` (aliasing). :func:`camera_trace` draws that exact sequence:
for each frame, the position at the start of the exposure, the time average over ``[0, W]``
and the position at ``W`` are jointly Gaussian given the previous state, with the covariances of
the integrated OU process (Wong & Halvorsen 2006), and the position then relaxes over the gap
``1 / frame_rate - W`` with the exact OU update. No time step is involved, so the output's
statistics are those of the continuous process seen by the camera, at any frame rate.

:func:`trap` gives ``(k, gamma)`` of the lateral trap from :class:`simulators.motion.MotionParams`
(force, tether, bead): ``k = F / (l + R)``, the long pendulum (fluctuations perpendicular to the
magnetic field), ``gamma = 6 pi eta R``.
"""

import numpy as np
from scipy.signal import lfilter

from simulators.motion import MotionParams

__all__ = ["camera_trace", "trap"]


def trap(params: MotionParams) -> tuple[float, float]:
    """``(k_xy pN/nm, gamma pN s/nm)`` of the lateral trap of a bead with ``params``."""
    return params.stiffness[0], params.drag


def camera_trace(
    n_frames: int,
    frame_rate: float,
    stiffness: float | np.ndarray,
    drag: float | np.ndarray,
    *,
    exposure_s: float = 0.0,
    kt: float = MotionParams().kt,
    rng: np.random.Generator,
) -> np.ndarray:
    """Frames of a trapped bead's coordinate (nm), blurred over the exposure and sampled.

    Parameters
    ----------
    n_frames : int
    frame_rate : float
        Frames per second.
    stiffness, drag : float or (n_beads,) array
        Trap stiffness (pN/nm) and drag (pN s/nm), one per bead.
    exposure_s : float
        Exposure time, ``0 <= exposure_s <= 1 / frame_rate``; 0 samples instantaneously.
    kt : float
        Thermal energy, pN nm.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(n_beads, n_frames)`` (``(n_frames,)`` for scalar stiffness and drag): each frame's
        mean position over its exposure, about the trap's centre.
    """
    scalar = np.ndim(stiffness) == 0 and np.ndim(drag) == 0
    k, g = np.broadcast_arrays(np.atleast_1d(stiffness), np.atleast_1d(drag))
    dt = 1.0 / frame_rate
    if not 0.0 <= exposure_s <= dt * (1 + 1e-9):
        raise ValueError(f"exposure {exposure_s} s outside [0, frame period {dt} s]")
    w = min(exposure_s, dt)
    var = (kt / k)[:, None]
    tau = (g / k)[:, None]
    a = np.exp(-w / tau)  # relaxation over the exposure
    # (eta1, eta2): noise of x(W) and of the integral over [0, W], given x(0)
    v11 = var * -np.expm1(-2 * w / tau)
    v12 = var * tau * (1 - a) ** 2
    v22 = 2 * var * tau * (w - 2 * tau * (1 - a) + 0.5 * tau * (1 - a * a))
    z = rng.standard_normal((3, len(k), n_frames))
    eta1 = np.sqrt(v11) * z[0]
    safe = np.where(v11 > 0, v11, 1.0)
    cond = np.clip(v22 - v12**2 / safe, 0.0, None)  # variance of eta2 given eta1
    eta2 = np.where(v11 > 0, v12 / np.sqrt(safe), 0.0) * z[0] + np.sqrt(cond) * z[1]
    gap = np.exp(-(dt - w) / tau)
    innovation = gap * eta1 + np.sqrt(var * -np.expm1(-2 * (dt - w) / tau)) * z[2]
    # x at the start of each exposure: AR(1) with coefficient exp(-dt/tau), started stationary
    r = np.exp(-dt / tau[:, 0])
    start = np.empty((len(k), n_frames))
    x0 = np.sqrt(var[:, 0]) * rng.standard_normal(len(k))
    for i in range(len(k)):
        start[i, 0] = x0[i]
        start[i, 1:] = lfilter([1.0], [1.0, -r[i]], innovation[i, :-1], zi=[r[i] * x0[i]])[0]
    if w == 0:
        frames = start
    else:
        frames = (start * tau * (1 - a) + eta2) / w
    return frames[0] if scalar else frames
