"""Force on a bead from the height of the magnets above the sample.

Permanent-magnet tweezers pull a superparamagnetic bead with ``F = grad(m . B) / 2``; for the
usual vertical magnet pair the force falls off with the magnets' distance ``h`` above the
sample faster than one exponential and slower than two with the same length. Lipfert, Hao &
Dekker (Biophys. J. 96, 5040-5049, 2009, "Quantitative modeling and optimization of magnetic
tweezers") computed it from first principles and matched tethered-bead measurements; the
curves are well described by a double exponential,

    F(h) = F1 exp(-h / z1) + F2 exp(-h / z2),

the form :class:`ForceLaw` implements. :data:`FORCE_LAWS` holds one law per bead type with
coefficients chosen here to give the magnitudes of that paper's figures for a vertical pair
of 5 mm cube magnets with a 1 mm gap (MyOne: a few pN at 1 mm, ~0.15 pN at 6 mm; M270, whose
magnetic moment is several times larger: ~25 pN at 1 mm, ~1 pN at 6 mm). They are
representative values, not the paper's fitted numbers: a lab fits its own (force from the
bead's lateral fluctuations at each height) and gives them as settings.

Real beads differ in magnetic moment by several percent (van Oene et al., Biophys. J. 2015,
"Biological magnetometry: torque on superparamagnetic beads in magnetic fields"; De Vlaminck
et al., PLoS ONE 2012, ~10 % force spread): :func:`moment_factors` draws one factor per bead.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulators.trajectory import Trajectory

__all__ = ["FORCE_LAWS", "BeadType", "ForceLaw", "MagnetRig", "moment_factors"]

BeadType = Literal["MyOne", "M270"]


@dataclass(frozen=True)
class ForceLaw:
    """``F(h) = f1 exp(-h / z1) + f2 exp(-h / z2)``: pN at magnet height ``h`` mm.

    Attributes
    ----------
    f1_pn, z1_mm, f2_pn, z2_mm : float
        Amplitudes (pN) and decay lengths (mm) of the two exponentials.
    """

    f1_pn: float
    z1_mm: float
    f2_pn: float
    z2_mm: float

    def __call__(self, height_mm: float | np.ndarray) -> float | np.ndarray:
        h = np.asarray(height_mm, dtype=np.float64)
        f = self.f1_pn * np.exp(-h / self.z1_mm) + self.f2_pn * np.exp(-h / self.z2_mm)
        return float(f) if f.ndim == 0 else f


#: Force law per bead type (Dynabeads MyOne, 1.05 um; Dynabeads M-270, 2.8 um).
FORCE_LAWS: dict[str, ForceLaw] = {
    "MyOne": ForceLaw(f1_pn=9.0, z1_mm=0.7, f2_pn=2.0, z2_mm=2.3),
    "M270": ForceLaw(f1_pn=63.0, z1_mm=0.7, f2_pn=14.0, z2_mm=2.3),
}


def moment_factors(n: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` per-bead factors on the force: normal, mean 1, relative sd ``spread``, > 0."""
    return np.clip(1.0 + spread * rng.standard_normal(n), 0.05, None)


class MagnetRig:
    """The magnets of a simulated microscope: where each axis goes over time, and the force.

    Parameters
    ----------
    law : ForceLaw
    factors : numpy.ndarray
        ``(n_beads,)`` per-bead moment factors (:func:`moment_factors`).
    height_mm, rotation_turns : float
        Where the magnets start.

    Attributes
    ----------
    height, rotation : Trajectory
        Replaced as a whole by each move (so readers in other threads see one trajectory).
    """

    def __init__(
        self, law: ForceLaw, factors: np.ndarray, height_mm: float, rotation_turns: float
    ) -> None:
        self.law = law
        self.factors = np.asarray(factors, dtype=np.float64)
        self.height = Trajectory.at_rest(height_mm)
        self.rotation = Trajectory.at_rest(rotation_turns)

    def at(self, t: float) -> tuple[float, float, np.ndarray]:
        """``(height_mm, rotation_turns, force_pn per bead)`` at monotonic time ``t``."""
        h = self.height.position(t)
        return h, self.rotation.position(t), self.law(h) * self.factors
