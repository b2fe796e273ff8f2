"""Worm-like chain: the Marko-Siggia interpolation and its fit to a force-extension table.

``F P / kT = 1 / (4 (1 - l / L)^2) - 1 / 4 + l / L`` (Marko & Siggia 1995): within ~10 % of the
exact WLC, the same formula the simulator uses (a lab wanting the exact chain would fit
Bouchiat's polynomial instead). The fit is of force against extension, weighted by each force's
standard error, so the errors of ``L`` and ``P`` are those the forces' uncertainties give.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

__all__ = ["WLCFit", "fit_wlc", "wlc_force"]


def wlc_force(extension_nm: np.ndarray, contour_nm: float, persistence_nm: float,
              kt: float = 4.086) -> np.ndarray:  # fmt: skip
    """Marko-Siggia force (pN) at ``extension_nm`` (below ``contour_nm``)."""
    x = np.asarray(extension_nm, dtype=np.float64) / contour_nm
    return kt / persistence_nm * (0.25 / (1 - x) ** 2 - 0.25 + x)


@dataclass(frozen=True)
class WLCFit:
    """Contour and persistence length (nm) with standard errors; chi-square of the fit."""

    contour_nm: float
    contour_err_nm: float
    persistence_nm: float
    persistence_err_nm: float
    chi2: float
    dof: int
    kt: float

    def force(self, extension_nm: np.ndarray) -> np.ndarray:
        """The fitted curve (pN)."""
        return wlc_force(extension_nm, self.contour_nm, self.persistence_nm, self.kt)


def fit_wlc(
    extension_nm: np.ndarray,
    force_pn: np.ndarray,
    force_err_pn: np.ndarray,
    *,
    kt: float = 4.086,
) -> WLCFit:
    """Fit the Marko-Siggia WLC to plateaus of ``(extension, force +- force_err)``.

    Raises
    ------
    ValueError
        Fewer than three finite plateaus, or errors that are not positive.
    """
    ext, force, err = (np.asarray(a, dtype=np.float64) for a in (extension_nm, force_pn,
                                                                  force_err_pn))  # fmt: skip
    ok = np.isfinite(ext) & np.isfinite(force) & np.isfinite(err)
    ext, force, err = ext[ok], force[ok], err[ok]
    if len(ext) < 3:
        raise ValueError(f"a WLC fit needs at least 3 plateaus, got {len(ext)}")
    if np.any(err <= 0):
        raise ValueError("force errors must be positive")
    lmax = float(ext.max())

    def model(e: np.ndarray, contour: float, persistence: float) -> np.ndarray:
        return wlc_force(e, contour, persistence, kt)

    p0 = (lmax * 1.1, 50.0)
    popt, pcov = curve_fit(model, ext, force, p0=p0, sigma=err, absolute_sigma=True,
                           bounds=([lmax * (1 + 1e-6), 0.1], [np.inf, np.inf]))  # fmt: skip
    resid = (force - model(ext, *popt)) / err
    perr = np.sqrt(np.diag(pcov))
    return WLCFit(float(popt[0]), float(perr[0]), float(popt[1]), float(perr[1]),
                  float(resid @ resid), len(ext) - 2, kt)  # fmt: skip
