"""Power-spectrum force calibration: maximum likelihood, with the camera's blur and aliasing.

The trace is cut into segments; their periodograms are averaged (``n_blocks`` of them, so each
ordinate is gamma distributed with shape ``n_blocks``) and fitted, by maximum likelihood
(:mod:`._mle`), with the *expected periodogram* of the camera-sampled, exposure-blurred OU process
of :mod:`._camera`: ``E|X_k|^2 / N = sum_{|h|<N} (1 - |h|/N) C(h) exp(-i w_k h)``, summed in
closed form. It holds aliasing, motion blur and the finite segment's leakage exactly, so no
frequency range has to be dropped. The fitted variance ``kT / k`` gives the force through the
pendulum: ``F = kT * length / var`` (``length = l + R``; see :mod:`magacq.analysis`).

``model="lorentzian"`` fits the textbook continuous Lorentzian instead (no blur, no aliasing), to
show what ignoring them costs.
"""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from magacq.analysis._camera import camera_covariance
from magacq.analysis._mle import fit_gamma, undetermined
from magacq.analysis._ordinates import ordinate_score_cov

__all__ = ["SpectrumFit", "camera_psd", "fit_spectrum", "periodogram"]

Model = Literal["camera", "lorentzian"]
#: segments are at least this many correlation times long (shorter ones waste resolution)
SEGMENT_TAUS = 50
#: a corner frequency above this fraction of the Nyquist frequency makes the fit unreliable
CORNER_WARN = 0.5
#: a trace shorter than this many correlation times gives a poor variance
MIN_TAUS = 30


def periodogram(
    x: np.ndarray, frame_rate: float, segment: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Averaged one-sided periodogram (nm^2/Hz) of ``x`` cut into segments of ``segment`` frames.

    Returns ``(f, p, n_blocks)`` at the Fourier frequencies ``k / segment * frame_rate``,
    ``0 < k < segment / 2`` (zero and Nyquist left out); each segment's mean drops out.
    """
    n_blocks = len(x) // segment
    if n_blocks < 1:
        raise ValueError(f"{len(x)} frames: fewer than one segment of {segment}")
    blocks = np.asarray(x[: n_blocks * segment], dtype=np.float64).reshape(n_blocks, segment)
    spec = np.fft.rfft(blocks, axis=1)[:, 1 : (segment + 1) // 2]
    p = 2.0 * np.mean(np.abs(spec) ** 2, axis=0) / (segment * frame_rate)
    f = np.arange(1, len(p) + 1) * frame_rate / segment
    return f, p, n_blocks


def expected_periodogram(
    phase: np.ndarray, segment: int, var: float, tau: float, frame_rate: float, exposure_s: float
) -> np.ndarray:
    """Exact expectation of :func:`periodogram` at the Fourier indices ``k`` of
    ``phase = exp(-2 pi i k / segment)`` (nm^2/Hz; the phases are the fit's constants)."""
    c0, amp, r = camera_covariance(var, tau, frame_rate, exposure_s)
    n = segment
    z = r * phase  # z**n == r**n at Fourier frequencies
    zn = r**n
    one_z = 1.0 - z
    s1 = z * (1.0 - zn / z) / one_z  # sum_{h=1}^{n-1} z^h
    s2 = z * (1.0 - n * zn / z + (n - 1) * zn) / one_z**2  # sum h z^h
    total = n * c0 + 2.0 * amp * np.real(n * s1 - s2)
    return 2.0 * total / (n * frame_rate)


def camera_psd(
    f: np.ndarray, var: float, tau: float, frame_rate: float, exposure_s: float
) -> np.ndarray:
    """One-sided spectrum (nm^2/Hz) of the camera's samples, ``0 < f <= frame_rate / 2``."""
    c0, amp, r = camera_covariance(var, tau, frame_rate, exposure_s)
    cw = np.cos(2 * np.pi * np.asarray(f) / frame_rate)
    return 2.0 * (c0 + 2 * amp * (r * cw - r * r) / (1 - 2 * r * cw + r * r)) / frame_rate


def lorentzian_psd(f: np.ndarray, var: float, tau: float) -> np.ndarray:
    """One-sided continuous Lorentzian (nm^2/Hz) of an OU process, ``fc = 1 / (2 pi tau)``."""
    fc = 1.0 / (2 * np.pi * tau)
    return 2 * var * fc / (np.pi * (fc * fc + np.asarray(f) ** 2))


@dataclass(frozen=True)
class SpectrumFit:
    """Force calibrated from a power spectrum.

    Attributes
    ----------
    force_pn, force_err_pn : float
        ``kT * length / var`` and its standard error (68 %; the fit's errors are Gaussian in
        ``ln var``, so ``force * exp(+-1.96 * force_err / force)`` is a 95 % interval).
    stiffness_pn_nm, drag_pn_s_nm : float
        ``k = kT / var`` and ``gamma = k * tau``.
    corner_hz, corner_err_hz : float
        ``fc = 1 / (2 pi tau)``.
    var_nm2, tau_s : float
        Fitted variance of the unblurred coordinate and its correlation time.
    length_nm, frame_rate, exposure_s, kt : float
        What the fit assumed.
    model : str
        ``camera`` (blur and aliasing) or ``lorentzian``.
    n_frames, n_blocks, segment : int
    nll : float
        Minimised negative log-likelihood.
    warnings : tuple of str
        Why the result may be unreliable (corner near Nyquist, short trace, no convergence).
    freq_hz, psd_nm2_hz : numpy.ndarray
        The averaged periodogram, log-binned for plotting.
    """

    force_pn: float
    force_err_pn: float
    stiffness_pn_nm: float
    drag_pn_s_nm: float
    corner_hz: float
    corner_err_hz: float
    var_nm2: float
    tau_s: float
    length_nm: float
    frame_rate: float
    exposure_s: float
    kt: float
    model: str
    n_frames: int
    n_blocks: int
    segment: int
    nll: float
    warnings: tuple[str, ...]
    freq_hz: np.ndarray = field(repr=False)
    psd_nm2_hz: np.ndarray = field(repr=False)

    def model_psd(self, f: np.ndarray) -> np.ndarray:
        """The fitted spectrum at frequencies ``f`` (nm^2/Hz)."""
        if self.model == "lorentzian":
            return lorentzian_psd(f, self.var_nm2, self.tau_s)
        return camera_psd(f, self.var_nm2, self.tau_s, self.frame_rate, self.exposure_s)


def checked_trace(
    x: np.ndarray, frame_rate: float, exposure_s: float
) -> tuple[np.ndarray, float, float]:
    """``x`` as float64 with the :func:`initial_guess` of its ``(var, tau)``.

    Raises
    ------
    ValueError
        Not 1-D, under 64 frames, not finite, not moving, or an exposure over the frame period.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 64:
        raise ValueError(f"need a 1-D trace of at least 64 frames, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("the trace has NaN or infinite positions")
    if exposure_s > 1.0 / frame_rate * (1 + 1e-9):
        raise ValueError(f"exposure {exposure_s} s longer than the frame period")
    return (x, *initial_guess(x, frame_rate))


def initial_guess(x: np.ndarray, frame_rate: float) -> tuple[float, float]:
    """``(var, tau)`` from the sample variance and the lag-1 autocorrelation."""
    d = np.asarray(x, dtype=np.float64) - np.mean(x)
    var = float(np.mean(d * d))
    if var <= 0:
        raise ValueError("the trace does not move (zero variance)")
    rho = float(np.mean(d[1:] * d[:-1]) / var)
    rho = min(max(rho, 1e-3), 1 - 1e-6)
    return var, -1.0 / (frame_rate * np.log(rho))


def segment_length(n_frames: int, frame_rate: float, tau: float) -> int:
    """Segments of >= ``SEGMENT_TAUS`` correlation times and >= 256 frames, covering the trace."""
    need = max(256, int(SEGMENT_TAUS * tau * frame_rate))
    return n_frames // max(1, n_frames // need)


def fit_spectrum(
    x: np.ndarray,
    frame_rate: float,
    length_nm: float,
    *,
    exposure_s: float = 0.0,
    kt: float = 4.086,
    model: Model = "camera",
    segment: int | None = None,
) -> SpectrumFit:
    """Calibrate the force on a bead from its lateral trace by a maximum-likelihood spectral fit.

    Parameters
    ----------
    x : (n,) array
        Drift-corrected positions (nm) along the calibrating axis (perpendicular to the field),
        one per frame, evenly spaced, finite.
    frame_rate : float
        Frames per second.
    length_nm : float
        Pendulum length ``l + R``: extension plus bead radius (nm).
    exposure_s : float
        Camera exposure (s), ``<= 1 / frame_rate``; 0 for an instantaneous sample.
    kt : float
        Thermal energy (pN nm); 4.086 is 296 K.
    model : {"camera", "lorentzian"}
        ``camera``: blur and aliasing; ``lorentzian``: neither (biased, for comparison).
    segment : int, optional
        Frames per averaged segment; default :func:`segment_length`.

    Returns
    -------
    SpectrumFit

    Raises
    ------
    ValueError
        A trace too short (under 64 frames), not finite, or not moving.
    """
    x, var0, tau0 = checked_trace(x, frame_rate, exposure_s)
    seg = segment or segment_length(len(x), frame_rate, tau0)
    f, p, n_blocks = periodogram(x, frame_rate, seg)
    k = np.arange(1, len(f) + 1)
    if model == "camera":
        phase = np.exp(-2j * np.pi * k / seg)

        def expect(theta: np.ndarray) -> np.ndarray:
            return expected_periodogram(phase, seg, np.exp(theta[0]), np.exp(theta[1]), frame_rate,
                                        exposure_s)  # fmt: skip
    elif model == "lorentzian":

        def expect(theta: np.ndarray) -> np.ndarray:
            return lorentzian_psd(f, np.exp(theta[0]), np.exp(theta[1]))
    else:
        raise ValueError(f"unknown model {model!r}: camera or lorentzian")
    fit = fit_gamma(p, n_blocks, expect, np.log([var0, tau0]))
    var, tau = np.exp(fit.theta)
    cov = fit.cov
    if model == "camera" and fit.grad is not None and np.all(np.isfinite(cov)):
        # the ordinates are correlated (a segment's ends): the sandwich, at their exact covariance
        g = fit.grad * n_blocks
        cov = cov @ ordinate_score_cov(g, k, seg, n_blocks, var, tau, frame_rate,
                                       exposure_s) @ cov  # fmt: skip
    with np.errstate(invalid="ignore"):  # a covariance that is no covariance: NaN, named below
        err_ln_var, err_ln_tau = np.sqrt(np.diag(cov))
    # no trace of T seconds tells an OU variance better than sqrt(2 tau / T) (the Cramer-Rao
    # bound of a continuous record): a fit that slid to a long tau (the corner near the lowest
    # frequency) has a sandwich as wrong as its tau
    err_ln_var = max(err_ln_var, np.sqrt(2 * tau * frame_rate / len(x)))
    force = kt * length_nm / var
    stiffness = kt / var
    corner = 1.0 / (2 * np.pi * tau)
    warnings = []
    nyquist = frame_rate / 2
    if corner > CORNER_WARN * nyquist:
        warnings.append(
            f"corner frequency {corner:.3g} Hz is above {CORNER_WARN:g} x Nyquist "
            f"({nyquist:.3g} Hz): raise the frame rate or shorten the exposure"
        )
    if len(x) < MIN_TAUS * tau * frame_rate:
        warnings.append(
            f"trace of {len(x) / frame_rate:.3g} s is under {MIN_TAUS} correlation times "
            f"({tau:.3g} s): the force is imprecise"
        )
    if not fit.converged:
        warnings.append("the fit did not converge")
    failed = undetermined(err_ln_var)
    if failed:
        warnings.append(failed)
    fb, pb = log_binned(f, p)
    return SpectrumFit(
        force_pn=float(force), force_err_pn=float(np.inf if failed else force * err_ln_var),
        stiffness_pn_nm=float(stiffness), drag_pn_s_nm=float(stiffness * tau),
        corner_hz=float(corner), corner_err_hz=float(corner * err_ln_tau),
        var_nm2=float(var), tau_s=float(tau), length_nm=float(length_nm),
        frame_rate=float(frame_rate), exposure_s=float(exposure_s), kt=float(kt), model=model,
        n_frames=len(x), n_blocks=n_blocks, segment=seg, nll=fit.nll, warnings=tuple(warnings),
        freq_hz=fb, psd_nm2_hz=pb,
    )  # fmt: skip


def log_binned(f: np.ndarray, p: np.ndarray, n_bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``f`` and ``p`` in ``n_bins`` logarithmic frequency bins (empty bins dropped)."""
    edges = np.geomspace(f[0], f[-1] * (1 + 1e-9), n_bins + 1)
    idx = np.digitize(f, edges) - 1
    counts = np.bincount(idx, minlength=n_bins)
    keep = counts > 0
    fb = np.bincount(idx, weights=f, minlength=n_bins)[keep] / counts[keep]
    pb = np.bincount(idx, weights=p, minlength=n_bins)[keep] / counts[keep]
    return fb, pb
