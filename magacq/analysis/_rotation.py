"""Rotation ("hat") curves: extension against turns, the buckling point, the post-buckling slope.

On each side of the curve's top (positive and negative turns) the extension is fitted with a
hinge: flat up to the buckling turns ``n_b``, then falling linearly at ``slope`` nm per turn
(the plectoneme takes up a fixed length per turn). The hinge is located by a search over the
measured turns, then refined with its errors by least squares (scipy ``curve_fit``).
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import curve_fit

__all__ = ["BucklingFit", "RotationFit", "fit_rotation_curve"]

#: points a side needs past its top for a hinge fit
MIN_SIDE_POINTS = 4


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
    """Both sides of a rotation curve (None: that side does not buckle or has too few points)."""

    centre_turns: float
    positive: BucklingFit | None
    negative: BucklingFit | None


def _hinge(n: np.ndarray, plateau: float, n_b: float, slope: float) -> np.ndarray:
    return plateau - slope * np.clip(n - n_b, 0.0, None)


def _fit_side(n: np.ndarray, z: np.ndarray, centre: float, sign: int) -> BucklingFit | None:
    """Hinge fit of ``z`` against ``n >= 0`` (turns away from the top at ``centre``, on the
    side ``sign``); the buckling point is given in absolute turns."""
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
        popt, pcov = curve_fit(_hinge, n, z, p0=best[1:])
    except RuntimeError:
        return None
    err = np.sqrt(np.diag(pcov))
    if not np.all(np.isfinite(err)) or popt[2] <= 0:
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
    return RotationFit(
        centre,
        _fit_side(n[pos] - centre, z[pos], centre, 1),
        _fit_side(centre - n[neg], z[neg], centre, -1),
    )
