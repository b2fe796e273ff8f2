"""The mean of a correlated trace and its standard error."""

import numpy as np

__all__ = ["correlated_mean"]


def correlated_mean(x: np.ndarray) -> tuple[float, float, float]:
    """``(mean, standard error, variance)`` of ``x``, taken as an AR(1) sequence.

    The error uses the effective number of independent samples ``N (1 - rho) / (1 + rho)``
    (``rho``: the lag-1 autocorrelation, clipped to ``[0, 1)``).
    """
    x = np.asarray(x, dtype=np.float64)
    mean = float(np.mean(x))
    d = x - mean
    var = float(np.mean(d * d))
    rho = float(np.mean(d[1:] * d[:-1]) / var) if var > 0 and len(x) > 1 else 0.0
    rho = min(max(rho, 0.0), 1 - 1e-9)
    n_eff = len(x) * (1 - rho) / (1 + rho)
    return mean, float(np.sqrt(var / n_eff)), var
