"""Allan-variance force calibration, with the camera's blur and aliasing.

The overlapping Allan variance of the frames at ``m`` frames per bin (``tau = m / frame_rate``,
octave-spaced) is fitted by maximum likelihood (:mod:`._mle`, Lansdorp & Saleh 2012) with the
exact Allan variance of the camera-sampled, exposure-blurred OU process of :mod:`._camera`:
with the frames' covariance ``c0`` at lag 0 and ``amp * r**h`` at lag ``h``,
``AV(m) = [m c0 + 2 amp S(m) - amp r (1 - r**m)**2 / (1 - r)**2] / m**2``,
``S(m) = sum_{h<m} (m - h) r**h = r (m (1 - r) - (1 - r**m)) / (1 - r)**2``.
Each estimate is taken as gamma distributed with half its equivalent degrees of freedom, from
the white-noise formula for the overlapping estimator (``3 (N - 1) / (2 m) - 2 (N - 2) / N``
scaled by ``4 m^2 / (4 m^2 + 5)``, Howe et al. 1981). The octave estimates of one trace are
correlated (0.5-0.9 between neighbours): the force's error is the sandwich covariance of that
fit (:func:`._mle.sandwich_cov`) under the estimates' exact covariance at the fitted model
(:func:`allan_covariance`), not the inverse Fisher information, which is 1.5-2x too small.
"""

from dataclasses import dataclass

import numpy as np

from magacq.analysis._camera import camera_covariance
from magacq.analysis._mle import fit_gamma, sandwich_cov, undetermined
from magacq.analysis._spectrum import checked_trace

__all__ = [
    "AllanFit",
    "allan_covariance",
    "allan_variance",
    "camera_allan_variance",
    "fit_allan",
]

#: Frequencies (log-spaced) of the integral in :func:`allan_covariance`.
_COV_POINTS = 1000


def allan_variance(x: np.ndarray, frame_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping Allan variance at octave bin sizes ``m = 1, 2, 4, ... <= n / 4``.

    Returns ``(m, tau_s, avar_nm2)``.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    c = np.concatenate([[0.0], np.cumsum(x - x.mean())])
    ms = 2 ** np.arange(int(np.log2(max(n // 4, 1))) + 1)
    av = np.empty(len(ms))
    for i, m in enumerate(ms):
        means = (c[m:] - c[:-m]) / m  # every bin of m frames, overlapping
        d = means[m:] - means[:-m]
        av[i] = 0.5 * np.mean(d * d)
    return ms, ms / frame_rate, av


def camera_allan_variance(
    m: np.ndarray, var: float, tau: float, frame_rate: float, exposure_s: float
) -> np.ndarray:
    """Exact Allan variance (nm^2) of the camera's samples at ``m`` frames per bin."""
    c0, amp, r = camera_covariance(var, tau, frame_rate, exposure_s)
    m = np.asarray(m, dtype=np.float64)
    one_r = -np.expm1(-1.0 / (frame_rate * tau))
    rm = r**m
    s = r * (m * one_r - (1 - rm)) / one_r**2
    return (m * c0 + 2 * amp * s - amp * r * (1 - rm) ** 2 / one_r**2) / (m * m)


def allan_covariance(
    m: np.ndarray, n: int, var: float, tau: float, frame_rate: float, exposure_s: float
) -> np.ndarray:
    """Covariance (nm^4) of the overlapping Allan variance estimates at ``m`` frames per bin
    of ``n`` camera frames (:func:`allan_variance`).

    For a Gaussian sequence of spectrum ``S(f)`` (``f`` in cycles per frame) the estimates
    ``mean(d_m^2) / 2`` of the differences ``d_m`` of adjacent ``m``-frame means have, for
    ``n`` well above the filters' length, ``cov_ij = int |H_i|^2 |H_j|^2 S^2 df / (2 N)``,
    with ``|H_m(f)|^2 = 4 sin^4(pi m f) / (m^2 sin^2(pi f))`` and ``N = n - 2 max(m_i, m_j)
    + 1`` differences. The camera's ``S`` is ``c0 - amp + amp (1 - r^2) / (1 - 2 r cos 2 pi f
    + r^2)`` (:mod:`._camera`). The integral runs on a log grid; where its step exceeds a
    twentieth of ``sin^4``'s period it takes its mean, 3/8. It matches the scatter of the
    estimates over simulated beads within a few percent (tests/analysis).
    """
    c0, amp, r = camera_covariance(var, tau, frame_rate, exposure_s)
    m = np.asarray(m, dtype=np.float64)
    f = np.geomspace(1 / (256 * m.max()), 0.5, _COV_POINTS)
    df = np.gradient(f)
    spectrum = c0 - amp + amp * (1 - r * r) / (1 - 2 * r * np.cos(2 * np.pi * f) + r * r)
    s4 = np.where(np.outer(m, df) < 0.05, np.sin(np.pi * np.outer(m, f)) ** 4, 3 / 8)
    g = 4 * s4 / np.outer(m * m, np.sin(np.pi * f) ** 2) * spectrum
    n_diff = n - 2 * m + 1
    return (2 * (g * df) @ g.T) / (2 * np.maximum.outer(n_diff, n_diff))


def allan_shape(m: np.ndarray, n: int) -> np.ndarray:
    """Gamma shape (half the equivalent degrees of freedom) of the overlapping estimates."""
    edf = (3 * (n - 1) / (2 * m) - 2 * (n - 2) / n) * 4 * m * m / (4 * m * m + 5)
    return np.maximum(edf, 1.0) / 2


@dataclass(frozen=True)
class AllanFit:
    """Force calibrated from the Allan variance (fields as in :class:`SpectrumFit`).

    ``tau_bins_s`` and ``avar_nm2`` are the measured Allan variance, for plotting;
    :meth:`model_avar` is the fit.
    """

    force_pn: float
    force_err_pn: float
    stiffness_pn_nm: float
    drag_pn_s_nm: float
    corner_hz: float
    var_nm2: float
    tau_s: float
    length_nm: float
    frame_rate: float
    exposure_s: float
    kt: float
    n_frames: int
    nll: float
    warnings: tuple[str, ...]
    tau_bins_s: np.ndarray
    avar_nm2: np.ndarray

    def model_avar(self, tau_bins_s: np.ndarray) -> np.ndarray:
        """The fitted Allan variance at bin times ``tau_bins_s`` (nm^2)."""
        m = np.asarray(tau_bins_s) * self.frame_rate
        return camera_allan_variance(m, self.var_nm2, self.tau_s, self.frame_rate,
                                     self.exposure_s)  # fmt: skip


def fit_allan(
    x: np.ndarray,
    frame_rate: float,
    length_nm: float,
    *,
    exposure_s: float = 0.0,
    kt: float = 4.086,
) -> AllanFit:
    """Calibrate the force on a bead from the Allan variance of its lateral trace.

    Parameters and errors as :func:`fit_spectrum`.
    """
    x, var0, tau0 = checked_trace(x, frame_rate, exposure_s)
    m, tau_bins, av = allan_variance(x, frame_rate)
    shape = allan_shape(m, len(x))

    def model(theta: np.ndarray) -> np.ndarray:
        return camera_allan_variance(m, np.exp(theta[0]), np.exp(theta[1]), frame_rate, exposure_s)

    fit = fit_gamma(av, shape, model, np.log([var0, tau0]))
    var, tau = np.exp(fit.theta)
    cov = fit.cov
    if np.all(np.isfinite(cov)):  # the octaves are correlated: the sandwich, at the fit
        mean = model(fit.theta)
        exact = allan_covariance(m, len(x), var, tau, frame_rate, exposure_s)
        cov = sandwich_cov(fit, shape, exact / np.outer(mean, mean))
    force = kt * length_nm / var
    err = float(np.sqrt(cov[0, 0])) if cov[0, 0] >= 0 else np.inf
    failed = undetermined(err)
    warnings = (() if fit.converged else ("the fit did not converge",)) + (
        (failed,) if failed else ())  # fmt: skip
    return AllanFit(
        force_pn=float(force), force_err_pn=float(np.inf if failed else force * err),
        stiffness_pn_nm=float(kt / var), drag_pn_s_nm=float(kt / var * tau),
        corner_hz=float(1 / (2 * np.pi * tau)), var_nm2=float(var), tau_s=float(tau),
        length_nm=float(length_nm), frame_rate=float(frame_rate), exposure_s=float(exposure_s),
        kt=float(kt), n_frames=len(x), nll=fit.nll, warnings=warnings,
        tau_bins_s=tau_bins, avar_nm2=av,
    )  # fmt: skip
