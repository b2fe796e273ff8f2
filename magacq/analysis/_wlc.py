"""Worm-like chain: the Marko-Siggia interpolation and its fit to a force-extension table.

``F P / kT = 1 / (4 (1 - l / L)^2) - 1 / 4 + l / L`` (Marko & Siggia 1995): within ~10 % of the
exact WLC, the same formula the simulator uses (a lab wanting the exact chain would fit
Bouchiat's polynomial instead).

The fit is of force against extension, and both are uncertain. Each plateau's force has its
standard error, and its extension the standard error of its mean z (a bead at 0.1 pN wanders
~300 nm in z with a correlation time of ~1 s: a 10 s mean is known to ~100 nm). The extension's
error enters as an effective force error ``dF/dl * sigma_l`` (the effective-variance method,
iterated). Every extension of a bead is also measured from one zero (the surface step, or the
plateau of known extension), whose own error is common to them all: it is a fitted offset
``delta`` of the extensions, ``F_i = WLC(l_i + delta)``, with the zero's error as a Gaussian
prior. The errors of ``L`` and ``P`` are then those of forces, extensions and zero together.
"""

from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["WLCFit", "fit_wlc", "wlc_force"]

_ITERATIONS = 4  # effective-variance passes (the weights depend on the fitted curve's slope)


def wlc_force(extension_nm: np.ndarray, contour_nm: float, persistence_nm: float,
              kt: float = 4.086) -> np.ndarray:  # fmt: skip
    """Marko-Siggia force (pN) at ``extension_nm`` (below ``contour_nm``)."""
    x = np.asarray(extension_nm, dtype=np.float64) / contour_nm
    return kt / persistence_nm * (0.25 / (1 - x) ** 2 - 0.25 + x)


def _wlc_slope(extension_nm: np.ndarray, contour_nm: float, persistence_nm: float,
               kt: float) -> np.ndarray:  # fmt: skip
    """``dF/dl`` (pN/nm) of the Marko-Siggia force."""
    x = np.asarray(extension_nm, dtype=np.float64) / contour_nm
    return kt / (persistence_nm * contour_nm) * (0.5 / (1 - x) ** 3 + 1)


@dataclass(frozen=True)
class WLCFit:
    """Contour and persistence length (nm) with standard errors; chi-square of the fit;
    ``offset_nm`` (with its error) the fitted correction of the extensions' common zero."""

    contour_nm: float
    contour_err_nm: float
    persistence_nm: float
    persistence_err_nm: float
    chi2: float
    dof: int
    kt: float
    offset_nm: float = 0.0
    offset_err_nm: float = 0.0

    def force(self, extension_nm: np.ndarray) -> np.ndarray:
        """The fitted curve (pN) at the measured extensions."""
        e = np.asarray(extension_nm, dtype=np.float64) + self.offset_nm
        return wlc_force(e, self.contour_nm, self.persistence_nm, self.kt)


def fit_wlc(
    extension_nm: ArrayLike,
    force_pn: ArrayLike,
    force_err_pn: ArrayLike,
    *,
    extension_err_nm: ArrayLike | None = None,
    zero_err_nm: float = 0.0,
    zero_plateau: int | None = None,
    kt: float = 4.086,
) -> WLCFit:
    """Fit the Marko-Siggia WLC to plateaus of ``(extension, force +- force_err)``.

    Parameters
    ----------
    extension_err_nm : array, optional
        Each extension's own standard error (default: exact extensions).
    zero_err_nm : float
        Standard error of the zero all the extensions are measured from (0: exact; no
        offset is fitted).
    zero_plateau : int, optional
        The plateau whose extension is known (the zero was taken on it): not offset.

    Raises
    ------
    ValueError
        Fewer than three finite plateaus, or errors that are not positive.
    """
    ext, force, err = (np.asarray(a, dtype=np.float64) for a in (extension_nm, force_pn,
                                                                  force_err_pn))  # fmt: skip
    ext_err = (np.zeros_like(ext) if extension_err_nm is None
               else np.asarray(extension_err_nm, dtype=np.float64))  # fmt: skip
    shifted = np.ones(len(ext))
    if zero_plateau is not None:
        shifted[zero_plateau] = 0.0
    ok = np.isfinite(ext) & np.isfinite(force) & np.isfinite(err) & np.isfinite(ext_err)
    ext, force, err, ext_err, shifted = ext[ok], force[ok], err[ok], ext_err[ok], shifted[ok]
    if len(ext) < 3:
        raise ValueError(f"a WLC fit needs at least 3 plateaus, got {len(ext)}")
    if np.any(err <= 0):
        raise ValueError("force errors must be positive")
    lmax = float(ext.max())
    offset = zero_err_nm > 0

    def unpack(p: np.ndarray) -> tuple[float, float, float]:
        return p[0], p[1], p[2] if offset else 0.0

    from scipy.optimize import least_squares  # here: scipy.optimize costs every run's start-up

    def residuals(p: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        contour, persistence, delta = unpack(p)
        e = np.minimum(ext + delta * shifted, contour * (1 - 1e-9))  # beyond L: a wall
        r = (force - wlc_force(e, contour, persistence, kt)) / sigma
        return np.append(r, delta / zero_err_nm) if offset else r

    p = np.array([lmax * 1.1, 50.0, 0.0][: 3 if offset else 2])
    lower = [lmax * (1 + 1e-6), 0.1, -np.inf][: len(p)]
    sigma = err
    for i in range(_ITERATIONS):
        fit = least_squares(residuals, p, args=(sigma,), bounds=(lower, np.inf), x_scale="jac")
        p = fit.x
        if i < _ITERATIONS - 1 and ext_err.any():
            contour, persistence, delta = unpack(p)
            e = np.minimum(ext + delta * shifted, contour * (1 - 1e-6))
            sigma = np.hypot(err, _wlc_slope(e, contour, persistence, kt) * ext_err)
        elif not ext_err.any():
            break
    jac = cast(np.ndarray, fit.jac)  # dense: the fit is given no jac_sparsity
    cov = np.linalg.pinv(jac.T @ jac)
    perr = np.sqrt(np.diag(cov))
    resid = fit.fun
    contour, persistence, delta = unpack(p)
    return WLCFit(float(contour), float(perr[0]), float(persistence), float(perr[1]),
                  float(resid @ resid), len(ext) - 2, kt, float(delta),
                  float(perr[2]) if offset else 0.0)  # fmt: skip
