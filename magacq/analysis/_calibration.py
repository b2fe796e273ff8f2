"""One bead on one plateau: its force by the spectrum, the Allan variance and equipartition,
and, on a trace of few correlation times, by the trace's exact likelihood."""

from dataclasses import dataclass

import numpy as np

from magacq.analysis._allan import AllanFit, fit_allan
from magacq.analysis._equipartition import EquipartitionForce, equipartition_force
from magacq.analysis._likelihood import LikelihoodFit, fit_likelihood
from magacq.analysis._spectrum import SEGMENT_TAUS, SpectrumFit, fit_spectrum

__all__ = ["ForceCalibration", "ForceEstimate", "calibrate_force"]

#: a trace shorter than this many spectral segments (of ``SEGMENT_TAUS`` correlation times) is
#: calibrated by its exact likelihood: the spectrum has too few ordinates below the corner
#: for an honest error (tests/analysis/test_independent.py: 61 % coverage at 50 tau)
LIKELIHOOD_SEGMENTS = 4


@dataclass(frozen=True)
class ForceEstimate:
    """The force to quote and its 68 % interval ``[force_lo_pn, force_hi_pn]`` (asymmetric:
    the likelihood's own, or ``force * exp(-+ err / force)`` for the spectrum's error in
    ``ln F``); ``method`` is ``likelihood`` or ``spectrum``."""

    force_pn: float
    force_err_pn: float
    force_lo_pn: float
    force_hi_pn: float
    method: str


@dataclass(frozen=True)
class ForceCalibration:
    """The estimates of one trace; :attr:`force` is the one to quote."""

    spectrum: SpectrumFit
    allan: AllanFit
    equipartition: EquipartitionForce
    likelihood: LikelihoodFit | None = None

    @property
    def force(self) -> ForceEstimate:
        """The likelihood fit's where it was made (a trace of few correlation times), else the
        spectrum's."""
        if self.likelihood is not None:
            f = self.likelihood
            return ForceEstimate(f.force_pn, f.force_err_pn, f.force_lo_pn, f.force_hi_pn,
                                 "likelihood")  # fmt: skip
        s = self.spectrum
        rel = s.force_err_pn / s.force_pn
        return ForceEstimate(s.force_pn, s.force_err_pn, s.force_pn * float(np.exp(-rel)),
                             s.force_pn * float(np.exp(rel)), "spectrum")  # fmt: skip

    @property
    def warnings(self) -> tuple[str, ...]:
        own = self.spectrum.warnings + self.allan.warnings
        if self.likelihood is not None:
            own += self.likelihood.warnings
        return tuple(dict.fromkeys(own))


def calibrate_force(
    x: np.ndarray,
    frame_rate: float,
    length_nm: float,
    *,
    exposure_s: float = 0.0,
    kt: float = 4.086,
) -> ForceCalibration:
    """Force on a bead from its lateral trace ``x`` (nm); see :func:`fit_spectrum`. The exact
    likelihood is fitted too when the trace holds under ``LIKELIHOOD_SEGMENTS *
    SEGMENT_TAUS`` correlation times (by the spectrum's fit)."""
    spectrum = fit_spectrum(x, frame_rate, length_nm, exposure_s=exposure_s, kt=kt)
    few = len(x) < LIKELIHOOD_SEGMENTS * SEGMENT_TAUS * spectrum.tau_s * frame_rate
    return ForceCalibration(
        spectrum,
        fit_allan(x, frame_rate, length_nm, exposure_s=exposure_s, kt=kt),
        equipartition_force(x, length_nm, kt=kt),
        fit_likelihood(x, frame_rate, length_nm, exposure_s=exposure_s, kt=kt) if few else None,
    )
