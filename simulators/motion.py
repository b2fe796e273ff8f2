"""Bead motion: tethered beads fluctuating in their trap, stuck reference beads, stage drift.

A tethered bead is a sphere of radius ``R`` held by a DNA tether of contour length ``L`` and
persistence length ``P`` to an anchor on the surface (z = 0), pulled up by a magnetic force ``F``
(one per bead; it changes when the magnets move: :meth:`TetheredBeads.set_tension`).

* Mean extension ``l``: the Marko-Siggia worm-like chain,
  ``F P / kT = 1 / (4 (1 - l/L)^2) - 1/4 + l/L``, solved for ``l``; twisted tethers are shorter
  (:mod:`simulators.twist`). The bead's centre sits at ``z = l + R`` above its anchor.
* Stiffness: lateral ``k_xy = F / (l + R)`` (an inverted pendulum of length ``l + R``, the bead
  free to rotate, te Velthuis et al. 2010); axial ``k_z = dF/dl`` of the (untwisted) WLC.
* Drag ``gamma = 6 pi eta R`` (Stokes; surface corrections neglected).
* Each coordinate is an Ornstein-Uhlenbeck process with variance ``kT / k`` and correlation time
  ``gamma / k``, advanced with the exact update
  ``u' = u e^{-dt/tau} + sqrt(kT/k (1 - e^{-2 dt/tau})) N(0, 1)``, so any time step is exact.
  When the force changes the bead stays where it is and relaxes to its new mean.

Stuck beads sit on the surface (centre at ``z = R``) and do not move. Stage drift moves every
bead together: a constant velocity plus a slow random walk.
"""

from dataclasses import dataclass

import numpy as np

from simulators.twist import twisted_extension

__all__ = [
    "MotionParams",
    "StageDrift",
    "TetheredBeads",
    "wlc_extension",
    "wlc_force",
    "wlc_stiffness",
]

KT_PN_NM_PER_K = 1.380649e-2  # Boltzmann constant in pN nm / K


def wlc_force(extension_nm, contour_nm: float, persistence_nm: float, kt: float):
    """Marko-Siggia force (pN) at ``extension_nm`` (a number or an array)."""
    x = np.asarray(extension_nm, dtype=np.float64) / contour_nm
    f = kt / persistence_nm * (0.25 / (1 - x) ** 2 - 0.25 + x)
    return float(f) if f.ndim == 0 else f


def wlc_extension(force_pn, contour_nm: float, persistence_nm: float, kt: float):
    """Marko-Siggia extension (nm) at ``force_pn`` (a number or an array; bisection, the force
    being monotonic in the extension, to 1e-12 of the contour length)."""
    force = np.asarray(force_pn, dtype=np.float64)
    lo = np.zeros_like(force)
    hi = np.full_like(force, contour_nm * (1 - 1e-12))
    for _ in range(45):
        mid = 0.5 * (lo + hi)
        below = wlc_force(mid, contour_nm, persistence_nm, kt) < force
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    ext = 0.5 * (lo + hi)
    return float(ext) if ext.ndim == 0 else ext


def wlc_stiffness(extension_nm, contour_nm: float, persistence_nm: float, kt: float):
    """``dF/dl`` (pN/nm) of the WLC at ``extension_nm`` (central difference)."""
    ext = np.asarray(extension_nm, dtype=np.float64)
    h = 1e-3 * contour_nm
    lo, hi = np.maximum(ext - h, 0.0), np.minimum(ext + h, contour_nm * (1 - 1e-9))
    args = (contour_nm, persistence_nm, kt)
    return (wlc_force(hi, *args) - wlc_force(lo, *args)) / (hi - lo)


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
    twist_persistence_nm : float
        Twist persistence length of the tether (dsDNA ~100 nm), for :mod:`simulators.twist`.
    denature_force_pn : float
        Above this force negative turns melt DNA instead of buckling it.
    """

    force_pn: float = 2.0
    contour_nm: float = 3400.0
    persistence_nm: float = 50.0
    bead_radius_nm: float = 1400.0
    viscosity_pn_s_per_nm2: float = 1e-9
    temperature_k: float = 296.0
    twist_persistence_nm: float = 100.0
    denature_force_pn: float = 0.5

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
        return k_xy, float(wlc_stiffness(ext, self.contour_nm, self.persistence_nm, self.kt))

    def tether(self, force_pn: np.ndarray, turns: float) -> tuple[np.ndarray, np.ndarray]:
        """Extension ``(n,)`` nm and stiffness ``(n, 3)`` pN/nm of tethers at ``force_pn``
        twisted by ``turns``."""
        force = np.asarray(force_pn, dtype=np.float64)
        args = (self.contour_nm, self.persistence_nm, self.kt)
        ext0 = np.asarray(wlc_extension(force, *args))
        ext = ext0
        if turns != 0:
            ext = twisted_extension(
                ext0,
                force,
                turns,
                contour_nm=self.contour_nm,
                persistence_nm=self.persistence_nm,
                twist_nm=self.twist_persistence_nm,
                kt=self.kt,
                denature_force_pn=self.denature_force_pn,
            )
        k_xy = force / (ext + self.bead_radius_nm)
        k_z = np.asarray(wlc_stiffness(ext0, *args))
        return ext, np.column_stack([k_xy, k_xy, k_z])

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
        self.mean = np.zeros((self.n, 3))
        self.mean[:, :2] = anchors
        self._offset = np.zeros((self.n, 3))
        self.force_pn = np.full(self.n, np.nan)
        self.turns = 0.0
        self.set_tension(np.full(self.n, params.force_pn), 0.0)
        self.equilibrate()

    def equilibrate(self) -> None:
        """Put every bead at a random position of its equilibrium (at its mean if frozen)."""
        self._offset[:] = 0.0
        if self.brownian:
            self._offset = self.rng.standard_normal((self.n, 3)) * np.sqrt(self.variance)
            self._offset[self.stuck] = 0.0

    def set_tension(self, force_pn: np.ndarray, turns: float) -> None:
        """Pull bead ``i`` with ``force_pn[i]`` and twist every tether by ``turns``.

        Mean heights, stiffness and relaxation times follow at once; each bead stays where it
        is and relaxes to its new mean as the OU process advances.
        """
        force = np.asarray(force_pn, dtype=np.float64).reshape(self.n)
        if turns == self.turns and np.array_equal(force, self.force_pn):
            return
        here = self.positions
        self.force_pn, self.turns = force.copy(), float(turns)
        ext, self.stiffness = self.params.tether(force, turns)
        self.extension_nm = np.where(self.stuck, 0.0, ext)
        self.variance = self.params.kt / self.stiffness
        self.tau = self.params.drag / self.stiffness
        self.mean[:, 2] = self.extension_nm + self.params.bead_radius_nm
        self._offset = here - self.mean
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
