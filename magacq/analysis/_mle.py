"""Maximum-likelihood fit of a positive model to estimates that are gamma distributed about it.

Averaged periodogram ordinates and Allan-variance estimates are, to a good approximation,
independent and gamma distributed with a known shape ``n`` about their expectation ``M(theta)``
(Lansdorp & Saleh 2012). The negative log-likelihood is then, up to a constant,
``sum n (d / M + ln M)``. It is minimised by Fisher scoring (the models take ``theta`` in log
form, so positivity is free): ``theta += I^-1 s`` with the score ``s = sum n (d / M - 1) g``
and the Fisher information ``I = sum n g g^T``, ``g = d ln M / d theta``, with step halving;
Nelder-Mead takes over if scoring fails. ``I^-1`` at the optimum is the parameters' covariance
when the estimates are independent; :func:`sandwich_cov` gives it when they are correlated.
Weighted least squares on the same data is biased by 10-20 % (Lansdorp & Saleh); this is not.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["GammaFit", "fit_gamma", "sandwich_cov", "undetermined"]

_STEP = 1e-6  # for d ln M / d theta (theta in natural-log units)
_TOL = 1e-6  # converged when a step changes theta (log units) by less than this
_MAX_ITER = 100
#: a relative force error over this (a factor e) is no measurement
MAX_ERR_LN_VAR = 1.0


@dataclass(frozen=True)
class GammaFit:
    """Parameters, their covariance, the minimised negative log-likelihood, convergence, and
    ``grad``: ``d ln M / d theta`` at the optimum (None where the model failed there)."""

    theta: np.ndarray
    cov: np.ndarray
    nll: float
    converged: bool
    grad: np.ndarray | None = None


def _log_model(model: Callable[[np.ndarray], np.ndarray], theta: np.ndarray) -> np.ndarray | None:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # None: out of range
        m = model(theta)
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        return None
    return np.log(m)


def _gradient(model: Callable, theta: np.ndarray, base: np.ndarray) -> np.ndarray | None:
    """``d ln M / d theta``, ``(len(theta), len(M))``, by forward differences."""
    rows = []
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = _STEP
        shifted = _log_model(model, theta + step)
        if shifted is None:
            return None
        rows.append((shifted - base) / _STEP)
    return np.array(rows)


def fit_gamma(
    data: np.ndarray,
    shape: np.ndarray | float,
    model: Callable[[np.ndarray], np.ndarray],
    theta0: np.ndarray,
) -> GammaFit:
    """Fit ``model(theta)`` to ``data`` (gamma distributed with ``shape`` about the model)."""
    n = np.broadcast_to(np.asarray(shape, dtype=np.float64), data.shape)

    def nll_of(log_m: np.ndarray | None) -> float:
        if log_m is None:
            return np.inf
        return float(np.sum(n * (data * np.exp(-log_m) + log_m)))

    theta = np.asarray(theta0, dtype=np.float64)
    log_m = _log_model(model, theta)
    nll = nll_of(log_m)
    converged = False
    for _ in range(_MAX_ITER):
        if log_m is None:
            break
        g = _gradient(model, theta, log_m)
        if g is None:
            break
        score = g @ (n * (data * np.exp(-log_m) - 1))
        try:
            step = np.linalg.solve((g * n) @ g.T, score)
        except np.linalg.LinAlgError:
            break
        for _ in range(30):  # halve the step until the likelihood improves
            trial = theta + step
            trial_log = _log_model(model, trial)
            trial_nll = nll_of(trial_log)
            if trial_nll <= nll:
                break
            step = step / 2
        else:  # no step improves: at the optimum to float precision, or stuck
            converged = bool(np.max(np.abs(step)) < _TOL)
            break
        theta, log_m, nll = trial, trial_log, trial_nll
        if np.max(np.abs(step)) < _TOL:
            converged = True
            break
    if not converged:  # scoring failed (a bad start far out): the simplex, slower but sure
        from scipy.optimize import minimize  # here: scipy.optimize costs every run's start-up

        def objective(t: np.ndarray) -> float:  # a lambda matches none of scipy's typings
            return nll_of(_log_model(model, t))

        best = minimize(objective, theta if np.isfinite(nll)
                        else np.asarray(theta0, dtype=np.float64), method="Nelder-Mead",
                        options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 2000})  # fmt: skip
        theta, nll, converged = best.x, float(best.fun), bool(best.success)
        log_m = _log_model(model, theta)
    g = _gradient(model, theta, log_m) if log_m is not None else None
    cov = np.full((len(theta), len(theta)), np.inf)
    if g is not None:
        try:
            cov = np.linalg.inv((g * n) @ g.T)
        except np.linalg.LinAlgError:
            pass
    return GammaFit(theta, cov, nll, converged, g)


def undetermined(err_ln_var: float) -> str | None:
    """Why a force of this relative error (of ``ln var``) is no result, or None.

    Where the corner is far above Nyquist the samples are almost uncorrelated: only
    ``var * tau`` shows, and the fit can slide along it (the error grows without bound)."""
    if np.isfinite(err_ln_var) and err_ln_var <= MAX_ERR_LN_VAR:
        return None
    return (
        "force undetermined: the fit cannot tell the variance from the correlation time "
        "(a corner far above Nyquist?): raise the frame rate or shorten the exposure"
    )


def sandwich_cov(fit: GammaFit, shape: np.ndarray, data_cov_rel: np.ndarray) -> np.ndarray:
    """The covariance of ``fit``'s parameters when its estimates are correlated.

    The gamma score ``s = g n (d / M - 1)`` has the covariance ``B = (g n) C (g n)^T``, with
    ``C`` (``data_cov_rel``) the covariance of ``d / M``; the parameters' covariance is then
    ``I^-1 B I^-1`` (Huber's sandwich; ``I^-1`` when ``C = diag(1 / n)``)."""
    if fit.grad is None or not np.all(np.isfinite(fit.cov)):
        return fit.cov
    gn = fit.grad * np.asarray(shape, dtype=np.float64)
    return fit.cov @ (gn @ data_cov_rel @ gn.T) @ fit.cov
