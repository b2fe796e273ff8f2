"""The magnets' force against their height: a smooth law fitted to calibrated forces.

Permanent magnets' force on a bead falls about exponentially with their height, faster close
to them (two exponentials, roughly): ``ln F`` is fitted with a cubic in the height (a quadratic
with 4 heights, a line with fewer), by weighted least squares on ``ln F`` (each force's relative
error its weight); a cubic holds a double exponential to 3 % over 1-8 mm. A law that does not
fall over the whole range of heights (too few or too noisy points) falls back to a lower
order, down to the plain exponential.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["ForceLaw", "fit_force_law"]

#: the highest order of the polynomial in ``ln F``
ORDER = 3


@dataclass(frozen=True)
class ForceLaw:
    """``ln F = sum_p coef[p] h^p`` (F in pN, h in mm), its parameters' covariance and range.

    Attributes
    ----------
    coef : (4,) array
        The coefficients of ``h^0 .. h^3`` (zero above the order fitted).
    cov : (4, 4) array
        Their covariance (scaled by the reduced chi-square when it is over 1).
    heights_mm : (2,) tuple
        The heights it was fitted over.
    chi2, dof : float, int
    """

    coef: np.ndarray
    cov: np.ndarray
    heights_mm: tuple[float, float]
    chi2: float
    dof: int

    def force(self, height_mm: np.ndarray) -> np.ndarray:
        """The force (pN) at ``height_mm``."""
        h = np.asarray(height_mm, dtype=np.float64)
        return np.exp(np.polynomial.polynomial.polyval(h, self.coef))

    def force_err(self, height_mm: np.ndarray) -> np.ndarray:
        """The standard error of :meth:`force` at ``height_mm`` (pN)."""
        h = np.atleast_1d(np.asarray(height_mm, dtype=np.float64))
        basis = np.stack([h**p for p in range(len(self.coef))])
        var = np.einsum("in,ij,jn->n", basis, self.cov, basis)
        return self.force(h) * np.sqrt(np.maximum(var, 0.0))


def _wls(
    h: np.ndarray, y: np.ndarray, w: np.ndarray, order: int
) -> tuple[np.ndarray, np.ndarray, float]:
    basis = np.stack([h**p for p in range(order + 1)], axis=1)
    a = basis * w[:, None]
    coef, *_ = np.linalg.lstsq(a, y * w, rcond=None)
    cov = np.linalg.pinv(a.T @ a)
    chi2 = float(np.sum(((basis @ coef - y) * w) ** 2))
    return coef, cov, chi2


def fit_force_law(
    height_mm: np.ndarray, force_pn: np.ndarray, force_err_pn: np.ndarray
) -> ForceLaw:
    """Fit the force law to forces measured at magnet heights.

    Parameters
    ----------
    height_mm, force_pn, force_err_pn : (n,) arrays
        Points with a non-finite or non-positive force or error are left out.

    Raises
    ------
    ValueError
        Fewer than 2 distinct heights, or forces that rise with the height.
    """
    h, f, e = (np.asarray(v, dtype=np.float64) for v in (height_mm, force_pn, force_err_pn))
    ok = np.isfinite(h) & np.isfinite(f) & np.isfinite(e) & (f > 0) & (e > 0)
    h, y, w = h[ok], np.log(f[ok]), f[ok] / e[ok]
    if len(np.unique(h)) < 2:
        raise ValueError(f"{len(np.unique(h))} magnet heights with a force: need 2 or more")
    span = (float(h.min()), float(h.max()))
    distinct = len(np.unique(h))
    grid = np.linspace(*span, 50)
    for order in range(min(ORDER, distinct - 2) if distinct > 2 else 1, 0, -1):
        coef, cov, chi2 = _wls(h, y, w, order)
        slope = np.polynomial.polynomial.polyval(grid, np.polynomial.polynomial.polyder(coef))
        if np.all(slope < 0):
            dof = len(h) - order - 1
            scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
            padded = np.zeros((ORDER + 1, ORDER + 1))
            padded[: order + 1, : order + 1] = cov * scale
            return ForceLaw(np.pad(coef, (0, ORDER - order)), padded, span, chi2, dof)
    raise ValueError("the forces do not fall as the magnets rise")
