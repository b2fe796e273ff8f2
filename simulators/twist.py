"""Extension of a twisted DNA tether: the hat curve of magnetic-tweezers rotation experiments.

Turning the magnets turns a torsionally constrained bead, and with it the tether, by ``n``
turns. The model is the elastic-rod picture of Strick et al. (Science 271, 1835, 1996;
Rep. Prog. Phys. 66, 1, 2003) and Marko (Phys. Rev. E 76, 021926, 2007), at its simplest:

* Below buckling the tether only twists: the extension stays the worm-like-chain one at that
  force, ``l0(F)``.
* It buckles when its torque ``Gamma = 2 pi n kT C / L`` (twist persistence length ``C``,
  ~100 nm for dsDNA, contour length ``L``) reaches the buckling torque of a rod under tension,
  ``Gamma_b = sqrt(2 B F)`` with bending modulus ``B = kT P`` (persistence length ``P``):
  ``n_b = Gamma_b L / (2 pi kT C)``.
* Past buckling every extra turn goes into a plectoneme loop of radius ``R = sqrt(B / (2F))``,
  shortening the tether by ``2 pi R`` per turn: ``l = l0 - 2 pi R (|n| - n_b)``, not below 0.
  At 1 pN (``P`` = 50 nm) that is ~64 nm per turn, buckling after ~26 turns of a 3.4 um tether,
  the magnitudes measured.
* Symmetric in ``n`` at low force; above ``denature_force_pn`` (~0.5 pN; Strick et al. 1996)
  negatively twisted DNA melts locally instead of buckling, and its extension stays ``l0``.
"""

import numpy as np

__all__ = ["buckling_turns", "plectoneme_nm_per_turn", "twisted_extension"]


def buckling_turns(
    force_pn: np.ndarray, contour_nm: float, persistence_nm: float, twist_nm: float, kt: float
) -> np.ndarray:
    """Turns at which the tether buckles: ``sqrt(2 kT P F) L / (2 pi kT C)``."""
    torque = np.sqrt(2.0 * kt * persistence_nm * np.asarray(force_pn))
    return torque * contour_nm / (2 * np.pi * kt * twist_nm)


def plectoneme_nm_per_turn(force_pn: np.ndarray, persistence_nm: float, kt: float) -> np.ndarray:
    """Extension lost per turn past buckling: ``2 pi sqrt(kT P / (2 F))``."""
    return 2 * np.pi * np.sqrt(kt * persistence_nm / (2.0 * np.asarray(force_pn)))


def twisted_extension(
    extension_nm: np.ndarray,
    force_pn: np.ndarray,
    turns: float,
    *,
    contour_nm: float,
    persistence_nm: float,
    twist_nm: float,
    kt: float,
    denature_force_pn: float,
) -> np.ndarray:
    """Extension (nm) of tethers at ``force_pn`` whose untwisted extension is ``extension_nm``,
    twisted by ``turns`` (positive: overwound)."""
    ext = np.asarray(extension_nm, dtype=np.float64)
    force = np.asarray(force_pn, dtype=np.float64)
    n_b = buckling_turns(force, contour_nm, persistence_nm, twist_nm, kt)
    excess = np.maximum(abs(turns) - n_b, 0.0)
    if turns < 0:
        excess = np.where(force > denature_force_pn, 0.0, excess)
    return np.maximum(ext - plectoneme_nm_per_turn(force, persistence_nm, kt) * excess, 0.0)
