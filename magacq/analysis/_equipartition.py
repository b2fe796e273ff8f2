"""The plain equipartition force ``F = kT (l + R) / <dx^2>``, for comparison with the fits.

It takes the frames' variance at face value: motion blur lowers it (the force comes out high at
high force and long exposure) and a trace of few correlation times scatters it. Its standard
error uses the effective number of independent frames ``N (1 - rho) / (1 + rho)`` (``rho``: the
lag-1 autocorrelation), the variance's relative error being ``sqrt(2 / N_eff)``.
"""

from dataclasses import dataclass

import numpy as np

from magacq.analysis._stats import correlated_mean

__all__ = ["EquipartitionForce", "equipartition_force"]


@dataclass(frozen=True)
class EquipartitionForce:
    """``force_pn`` and its standard error from the variance ``var_nm2`` of ``n_frames``."""

    force_pn: float
    force_err_pn: float
    var_nm2: float
    n_frames: int


def equipartition_force(
    x: np.ndarray, length_nm: float, *, kt: float = 4.086
) -> EquipartitionForce:
    """``kT * length_nm / var(x)`` (``length_nm = l + R``) with its standard error."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 3 or not np.all(np.isfinite(x)):
        raise ValueError("need a finite 1-D trace of at least 3 frames")
    _, sem, var = correlated_mean(x)
    if var <= 0:
        raise ValueError("the trace does not move (zero variance)")
    n_eff = var / sem**2
    force = kt * length_nm / var
    return EquipartitionForce(float(force), float(force * np.sqrt(2 / n_eff)), var, len(x))
