"""One bead on one plateau: its force by the spectrum, the Allan variance and equipartition."""

from dataclasses import dataclass

import numpy as np

from magacq.analysis._allan import AllanFit, fit_allan
from magacq.analysis._equipartition import EquipartitionForce, equipartition_force
from magacq.analysis._spectrum import SpectrumFit, fit_spectrum

__all__ = ["ForceCalibration", "calibrate_force"]


@dataclass(frozen=True)
class ForceCalibration:
    """The three estimates of one trace; ``spectrum`` is the one to quote."""

    spectrum: SpectrumFit
    allan: AllanFit
    equipartition: EquipartitionForce

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.spectrum.warnings + tuple(
            w for w in self.allan.warnings if w not in self.spectrum.warnings
        )


def calibrate_force(
    x: np.ndarray,
    frame_rate: float,
    length_nm: float,
    *,
    exposure_s: float = 0.0,
    kt: float = 4.086,
) -> ForceCalibration:
    """Force on a bead from its lateral trace ``x`` (nm), three ways; see :func:`fit_spectrum`."""
    return ForceCalibration(
        fit_spectrum(x, frame_rate, length_nm, exposure_s=exposure_s, kt=kt),
        fit_allan(x, frame_rate, length_nm, exposure_s=exposure_s, kt=kt),
        equipartition_force(x, length_nm, kt=kt),
    )
