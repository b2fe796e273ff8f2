"""Allan-variance force calibration, with the camera's blur and aliasing.

The overlapping Allan variance of the frames at ``m`` frames per bin (``tau = m / frame_rate``,
octave-spaced) is fitted by maximum likelihood (:mod:`._mle`, Lansdorp & Saleh 2012) with the
exact Allan variance of the camera-sampled, exposure-blurred OU process of :mod:`._camera`:
with the frames' covariance ``c0`` at lag 0 and ``amp * r**h`` at lag ``h``,
``AV(m) = [m c0 + 2 amp S(m) - amp r (1 - r**m)**2 / (1 - r)**2] / m**2``,
``S(m) = sum_{h<m} (m - h) r**h = r (m (1 - r) - (1 - r**m)) / (1 - r)**2``.
Each estimate is taken as gamma distributed with half its equivalent degrees of freedom, from
the white-noise formula for the overlapping estimator (``3 (N - 1) / (2 m) - 2 (N - 2) / N``
scaled by ``4 m^2 / (4 m^2 + 5)``, Howe et al. 1981), and independent of each other, which
octave estimates from one trace are not: the Allan force is unbiased (within 0.3 % over 40 beads
at 0.3, 3 and 20 pN) but its reported error is 1.5-2x too small (scatter over those beads 0.089,
0.022, 0.011 of the force against 0.042, 0.015, 0.007 reported). Quote the spectral fit's error.
"""

from dataclasses import dataclass

import numpy as np

from magacq.analysis._camera import camera_covariance
from magacq.analysis._mle import fit_gamma
from magacq.analysis._spectrum import checked_trace

__all__ = ["AllanFit", "allan_variance", "camera_allan_variance", "fit_allan"]


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
    force = kt * length_nm / var
    warnings = () if fit.converged else ("the fit did not converge",)
    return AllanFit(
        force_pn=float(force), force_err_pn=float(force * np.sqrt(fit.cov[0, 0])),
        stiffness_pn_nm=float(kt / var), drag_pn_s_nm=float(kt / var * tau),
        corner_hz=float(1 / (2 * np.pi * tau)), var_nm2=float(var), tau_s=float(tau),
        length_nm=float(length_nm), frame_rate=float(frame_rate), exposure_s=float(exposure_s),
        kt=float(kt), n_frames=len(x), nll=fit.nll, warnings=warnings,
        tau_bins_s=tau_bins, avar_nm2=av,
    )  # fmt: skip
