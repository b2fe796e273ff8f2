"""Bead motion: tethered beads fluctuating in their trap, stuck reference beads, stage drift.

A tethered bead is a sphere of radius ``R`` held by a DNA tether of contour length ``L`` and
persistence length ``P`` to an anchor on the surface (z = 0), pulled up by a magnetic force ``F``.

* Mean extension ``l``: the Marko-Siggia worm-like chain,
  ``F P / kT = 1 / (4 (1 - l/L)^2) - 1/4 + l/L``, solved for ``l``. The bead's centre sits at
  ``z = l + R`` above its anchor.
* Stiffness: lateral ``k_xy = F / (l + R)`` (an inverted pendulum of length ``l + R``, the bead
  free to rotate, te Velthuis et al. 2010); axial ``k_z = dF/dl`` of the WLC.
* Drag ``gamma = 6 pi eta R`` (Stokes; surface corrections neglected).
* Each coordinate is an Ornstein-Uhlenbeck process with variance ``kT / k`` and correlation time
  ``gamma / k``, advanced with the exact update
  ``u' = u e^{-dt/tau} + sqrt(kT/k (1 - e^{-2 dt/tau})) N(0, 1)``, so any time step is exact.

Stuck beads sit on the surface (centre at ``z = R``) and do not move. Stage drift moves every
bead together: a constant velocity plus a slow random walk.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["MotionParams", "StageDrift", "TetheredBeads", "wlc_extension", "wlc_force"]

KT_PN_NM_PER_K = 1.380649e-2  # Boltzmann constant in pN nm / K


def wlc_force(extension_nm: float, contour_nm: float, persistence_nm: float, kt: float) -> float:
    """Marko-Siggia force (pN) at ``extension_nm``."""
    x = extension_nm / contour_nm
    return kt / persistence_nm * (0.25 / (1 - x) ** 2 - 0.25 + x)


def wlc_extension(force_pn: float, contour_nm: float, persistence_nm: float, kt: float) -> float:
    """Marko-Siggia extension (nm) at ``force_pn`` (bisection; force is monotonic)."""
    lo, hi = 0.0, contour_nm * (1 - 1e-12)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if wlc_force(mid, contour_nm, persistence_nm, kt) < force_pn:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MotionParams:
    """Physical parameters of tethered-bead motion.

    Attributes
    ----------
    force_pn : float
        Magnetic pulling force.
    contour_nm, persistence_nm : float
        Tether (dsDNA: persistence 50 nm).
    bead_radius_nm : float
    viscosity_pn_s_per_nm2 : float
        1e-9 is water (1 mPa s).
    temperature_k : float
    """

    force_pn: float = 2.0
    contour_nm: float = 3400.0
    persistence_nm: float = 50.0
    bead_radius_nm: float = 1400.0
    viscosity_pn_s_per_nm2: float = 1e-9
    temperature_k: float = 296.0

    @property
    def kt(self) -> float:
        """Thermal energy, pN nm."""
        return KT_PN_NM_PER_K * self.temperature_k

    @property
    def extension_nm(self) -> float:
        return wlc_extension(self.force_pn, self.contour_nm, self.persistence_nm, self.kt)

    @property
    def stiffness(self) -> tuple[float, float]:
        """``(k_xy, k_z)`` in pN/nm."""
        ext = self.extension_nm
        k_xy = self.force_pn / (ext + self.bead_radius_nm)
        h = 1e-3 * self.contour_nm
        lo, hi = max(ext - h, 0.0), min(ext + h, self.contour_nm * (1 - 1e-9))
        args = (self.contour_nm, self.persistence_nm, self.kt)
        k_z = (wlc_force(hi, *args) - wlc_force(lo, *args)) / (hi - lo)
        return k_xy, k_z

    @property
    def drag(self) -> float:
        """Stokes drag, pN s / nm."""
        return 6 * np.pi * self.viscosity_pn_s_per_nm2 * self.bead_radius_nm


class TetheredBeads:
    """Positions (nm) of tethered and stuck beads, advanced in time.

    Parameters
    ----------
    anchors_nm : numpy.ndarray
        ``(n, 2)`` x, y of each bead's anchor (its mean x, y) in the sample, nm.
    stuck : numpy.ndarray
        ``(n,)`` bool: stuck reference beads.
    params : MotionParams
    rng : numpy.random.Generator
    brownian : bool
        False freezes every bead at its mean position.
    """

    def __init__(
        self,
        anchors_nm: np.ndarray,
        stuck: np.ndarray,
        params: MotionParams,
        rng: np.random.Generator,
        *,
        brownian: bool = True,
    ) -> None:
        anchors = np.asarray(anchors_nm, dtype=np.float64).reshape(-1, 2)
        self.n = len(anchors)
        self.stuck = np.asarray(stuck, dtype=bool).reshape(self.n)
        self.params = params
        self.rng = rng
        self.brownian = brownian
        k_xy, k_z = params.stiffness
        self.stiffness = np.array([k_xy, k_xy, k_z])
        self.variance = params.kt / self.stiffness
        self.tau = params.drag / self.stiffness
        self.mean = np.empty((self.n, 3))
        self.mean[:, :2] = anchors
        self.mean[:, 2] = np.where(
            self.stuck, params.bead_radius_nm, params.extension_nm + params.bead_radius_nm
        )
        self._offset = np.zeros((self.n, 3))
        if brownian:  # start in equilibrium
            self._offset = rng.standard_normal((self.n, 3)) * np.sqrt(self.variance)
            self._offset[self.stuck] = 0.0

    @property
    def positions(self) -> np.ndarray:
        """``(n, 3)`` current x, y, z in nm (z: bead centre above the surface)."""
        return self.mean + self._offset

    def step(self, dt: float) -> np.ndarray:
        """Advance by ``dt`` seconds (exact OU update) and return :attr:`positions`."""
        if self.brownian and dt > 0:
            decay = np.exp(-dt / self.tau)
            sd = np.sqrt(self.variance * -np.expm1(-2 * dt / self.tau))
            self._offset *= decay
            self._offset += self.rng.standard_normal((self.n, 3)) * sd
            self._offset[self.stuck] = 0.0
        return self.positions


class StageDrift:
    """Slow sample-stage drift: constant velocity plus a random walk (nm).

    Parameters
    ----------
    velocity_nm_s : sequence of 3 floats
    diffusion_nm2_s : float
        Random-walk diffusion coefficient per axis.
    rng : numpy.random.Generator
    """

    def __init__(
        self, velocity_nm_s: tuple[float, float, float], diffusion_nm2_s: float, rng
    ) -> None:
        self.velocity = np.asarray(velocity_nm_s, dtype=np.float64)
        self.diffusion = float(diffusion_nm2_s)
        self.rng = rng
        self.offset = np.zeros(3)

    def step(self, dt: float) -> np.ndarray:
        """Advance by ``dt`` seconds and return the current ``(3,)`` offset."""
        if dt > 0:
            self.offset += self.velocity * dt
            if self.diffusion > 0:
                self.offset += self.rng.standard_normal(3) * np.sqrt(2 * self.diffusion * dt)
        return self.offset
