"""Rotation ("hat") curves: extension against turns, the buckling point, the post-buckling slope.

On each side of the curve's top (positive and negative turns) the extension is fitted with a
hinge: flat up to the buckling turns ``n_b``, then falling linearly at ``slope`` nm per turn
(the plectoneme takes up a fixed length per turn). The hinge is located by a search over the
measured turns, then refined with its errors by least squares (scipy ``curve_fit``).

Each side is then told apart: ``buckling`` when the hinge's slope is real (at least
``MIN_SLOPE_NM`` nm per turn and ``MIN_SIGMAS`` of its error, with points past it); else the
side stays flat, ``denaturing`` when it is the negative side and it reaches about as many
turns as the positive side's buckling point (``DENATURE_REACH``; DNA under more than
~0.5 pN melts there instead of buckling), ``neither`` otherwise (not twisted far enough).
"""

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["BucklingFit", "RotationFit", "fit_rotation_curve"]

#: points a side needs past its top for a hinge fit
MIN_SIDE_POINTS = 4
#: a buckling side loses at least this many nm per turn (plectonemes: ~30-150 nm at 0.2-5 pN)
MIN_SLOPE_NM = 10.0
#: ... and its slope is this many times its error
MIN_SIGMAS = 3.0
#: a flat negative side reaching this fraction of the positive side's buckling turns denatures
#: (turns from 0, the relaxed tether: a top found from a flat side is not better placed)
DENATURE_REACH = 0.8
BUCKLING, DENATURING, NEITHER = "buckling", "denaturing", "neither"


@dataclass(frozen=True)
class BucklingFit:
    """One side of a rotation curve: the buckling turns and the post-buckling slope (nm/turn).

    ``slope_nm_per_turn`` is the extension lost per turn away from the top (positive when the
    extension falls); ``plateau_nm`` the extension before buckling.
    """

    buckling_turns: float
    buckling_err_turns: float
    slope_nm_per_turn: float
    slope_err_nm_per_turn: float
    plateau_nm: float


@dataclass(frozen=True)
class RotationFit:
    """Both sides of a rotation curve (None: that side does not buckle or has too few points),
    and what each side does: ``"buckling"``, ``"denaturing"`` or ``"neither"``."""

    centre_turns: float
    positive: BucklingFit | None
    negative: BucklingFit | None
    positive_kind: str = NEITHER
    negative_kind: str = NEITHER


def _hinge(n: np.ndarray, plateau: float, n_b: float, slope: float) -> np.ndarray:
    return plateau - slope * np.clip(n - n_b, 0.0, None)


def _fit_side(n: np.ndarray, z: np.ndarray, centre: float, sign: int) -> BucklingFit | None:
    """Hinge fit of ``z`` against ``n >= 0`` (turns away from the top at ``centre``, on the
    side ``sign``); the buckling point is given in absolute turns."""
    from scipy.optimize import OptimizeWarning, curve_fit  # here: costs every run's start-up

    if len(n) < MIN_SIDE_POINTS:
        return None
    best = None
    for n_b in np.unique(n)[:-2]:
        after = n > n_b
        a = np.column_stack([np.ones_like(n), -np.clip(n - n_b, 0, None)])
        coef, *_ = np.linalg.lstsq(a, z, rcond=None)
        cost = float(np.sum((a @ coef - z) ** 2))
        if after.sum() >= 2 and (best is None or cost < best[0]):
            best = (cost, coef[0], n_b, coef[1])
    if best is None or best[3] <= 0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)  # no covariance: a flat side
            popt, pcov = curve_fit(_hinge, n, z, p0=best[1:])
    except (RuntimeError, OptimizeWarning):
        return None
    err = np.sqrt(np.diag(pcov))
    if not np.all(np.isfinite(err)) or popt[2] < max(MIN_SLOPE_NM, MIN_SIGMAS * err[2]):
        return None
    if (n > popt[1]).sum() < 2:
        return None
    return BucklingFit(float(centre + sign * popt[1]), float(err[1]), float(popt[2]),
                       float(err[2]), float(popt[0]))  # fmt: skip


def fit_rotation_curve(turns: ArrayLike, extension_nm: ArrayLike) -> RotationFit:
    """Buckling point and post-buckling slope on both sides of a rotation curve.

    Parameters
    ----------
    turns : (n,) array
        Magnet rotation of each plateau (turns).
    extension_nm : (n,) array
        The bead's mean extension on each plateau (nm).
    """
    n = np.asarray(turns, dtype=np.float64)
    z = np.asarray(extension_nm, dtype=np.float64)
    ok = np.isfinite(n) & np.isfinite(z)
    n, z = n[ok], z[ok]
    if len(n) < MIN_SIDE_POINTS:
        raise ValueError(f"a rotation curve needs at least {MIN_SIDE_POINTS} plateaus")
    top = z >= z.max() - 0.1 * (z.max() - z.min())  # points near the maximum extension
    centre = float(np.mean(n[top]))
    pos, neg = n >= centre, n <= centre
    positive = _fit_side(n[pos] - centre, z[pos], centre, 1)
    negative = _fit_side(centre - n[neg], z[neg], centre, -1)
    negative_kind = BUCKLING if negative is not None else NEITHER
    if negative is None and positive is not None and neg.any():
        if -n[neg].min() >= DENATURE_REACH * positive.buckling_turns:
            negative_kind = DENATURING
    return RotationFit(centre, positive, negative,
                       BUCKLING if positive is not None else NEITHER, negative_kind)  # fmt: skip
