"""The simulated magnetic-tweezers microscope: beads in a field of view, a focal plane, frames.

Coordinates: internally (motion, rendering, :attr:`SimMicroscope.bead_xy_px`) x, y have pixel
centres at integer column/row indices. :class:`GroundTruth` reports them in the camera frame of
DESIGN.md, origin at the image's corner: ``x_nm = (column + 0.5) * pixel_size_nm`` for a bead
centred on a pixel. z is in nm above the surface (bead centre). The focal plane is at
``focal_z_nm``; a bead is imaged at defocus ``z - focal_z_nm`` (see :mod:`simulators.optics`).

Magnets (:class:`~simulators.magnetics.MagnetRig`, attached by the ``sim`` magnets) set the force
on and the twist of every tether at each frame's time. A camera integrates light over its
exposure: a frame shows the bead where it was on average during the exposure, computed from
``exposure_substeps`` positions of the motion (Wong & Halvorsen, Opt. Express 14, 12517, 2006,
for what the blur does to fluctuation spectra).
"""

import time
from dataclasses import dataclass

import numpy as np

from simulators.magnetics import MagnetRig
from simulators.motion import MotionParams, StageDrift, TetheredBeads
from simulators.noise import count_dtype, to_counts
from simulators.optics import BeadImager, OpticsParams

__all__ = ["GroundTruth", "SimMicroscope", "grid_layout"]


@dataclass(frozen=True)
class GroundTruth:
    """True state of every bead in one frame.

    Attributes
    ----------
    frame_number : int
    timestamp : float
        Seconds, the same clock as the frame's FrameInfo.timestamp.
    x_nm, y_nm, z_nm : numpy.ndarray
        ``(n_beads,)`` bead centres (x, y in the camera frame: origin at the image's corner, so
        pixel ``i`` spans ``i..i+1`` pixel sizes; z above the surface).
        Averaged over the exposure, as the camera sees them.
    focal_z_nm : float
        Focal plane during the frame.
    force_pn, extension_nm : numpy.ndarray
        ``(n_beads,)`` force on each bead and the tether's mean extension at that force and
        twist (0 for stuck beads).
    magnet_height_mm, magnet_rotation_turns : float
        Where the magnets were (NaN without magnets).
    """

    frame_number: int
    timestamp: float
    x_nm: np.ndarray
    y_nm: np.ndarray
    z_nm: np.ndarray
    focal_z_nm: float
    force_pn: np.ndarray
    extension_nm: np.ndarray
    magnet_height_mm: float = float("nan")
    magnet_rotation_turns: float = float("nan")


def grid_layout(
    width: int, height: int, n_beads: int, spacing_px: int, rng: np.random.Generator
) -> np.ndarray:
    """``(n_beads, 2)`` x, y pixel centres: random cells of a grid of ``spacing_px``, jittered.

    Raises
    ------
    ValueError
        The frame has fewer than ``n_beads`` cells.
    """
    nx, ny = width // spacing_px, height // spacing_px
    if nx * ny < n_beads:
        raise ValueError(
            f"{n_beads} beads need {n_beads} cells of {spacing_px} px; a {width}x{height} frame "
            f"has {nx * ny}"
        )
    cells = rng.choice(nx * ny, size=n_beads, replace=False)
    cx = (cells % nx) * spacing_px + spacing_px / 2 - 0.5
    cy = (cells // nx) * spacing_px + spacing_px / 2 - 0.5
    jitter = rng.uniform(-0.1, 0.1, size=(n_beads, 2)) * spacing_px
    # Centre each block of cells in the frame.
    off_x = (width - nx * spacing_px) / 2
    off_y = (height - ny * spacing_px) / 2
    return np.column_stack([cx + off_x, cy + off_y]) + jitter


class SimMicroscope:
    """Beads, their motion, a movable focal plane, and a camera that renders them.

    Parameters
    ----------
    width, height : int
        Frame size, pixels.
    optics : OpticsParams
    motion : MotionParams
    bead_xy_px : numpy.ndarray
        ``(n, 2)`` mean bead centres in pixels.
    stuck : numpy.ndarray
        ``(n,)`` bool, reference beads stuck to the surface.
    roi_size : int
        Patch drawn around each bead.
    photons, read_noise_e, offset_adu, bit_depth : float, float, float, int
        Camera model (see :func:`simulators.noise.to_counts`).
    drift : StageDrift, optional
    rng : numpy.random.Generator
    brownian : bool
    focal_z_nm : float
        Initial focal plane.
    z_range_nm : (float, float)
        Focal-plane range that the optics table covers (the focus stage's limits).
    exact_noise : bool
        Exact Poisson noise (slow) instead of the fast Gaussian approximation.
    z_table_step_nm : float
        Defocus step of the optics table.
    exposure_substeps : int
        Positions averaged over a frame's exposure (1: the position at its end, no blur).
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        optics: OpticsParams,
        motion: MotionParams,
        bead_xy_px: np.ndarray,
        stuck: np.ndarray,
        roi_size: int,
        photons: float,
        read_noise_e: float,
        offset_adu: float,
        bit_depth: int,
        rng: np.random.Generator,
        drift: StageDrift | None = None,
        brownian: bool = True,
        focal_z_nm: float = 0.0,
        z_range_nm: tuple[float, float] = (-10_000.0, 10_000.0),
        exact_noise: bool = False,
        z_table_step_nm: float = 10.0,
        exposure_substeps: int = 1,
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.optics = optics
        self.pixel_size_nm = optics.pixel_size_nm
        self.roi_size = int(roi_size)
        self.photons, self.read_noise_e, self.offset_adu = photons, read_noise_e, offset_adu
        self.bit_depth = int(bit_depth)
        self.rng = rng
        self.exact_noise = exact_noise
        self.exposure_substeps = int(exposure_substeps)
        self.magnets: MagnetRig | None = None
        xy = np.asarray(bead_xy_px, dtype=np.float64).reshape(-1, 2)
        self.beads = TetheredBeads(xy * self.pixel_size_nm, stuck, motion, rng, brownian=brownian)
        self.drift = drift
        self.imager = BeadImager(optics, self.roi_size)
        # Table over every defocus the beads can reach: bead heights +-6 sigma, minus the focus.
        z_lo = motion.bead_radius_nm - 500.0
        z_hi = motion.bead_radius_nm + motion.contour_nm + 500.0
        self.imager.prepare_table(
            z_lo - z_range_nm[1], z_hi - z_range_nm[0], step_nm=z_table_step_nm
        )
        self._focus_from = self._focus_to = float(focal_z_nm)
        self._focus_t0 = 0.0
        self._focus_duration = 0.0
        self._intensity = np.empty((self.height, self.width), dtype=np.float32)

    @property
    def n_beads(self) -> int:
        return self.beads.n

    @property
    def bead_xy_px(self) -> np.ndarray:
        """``(n, 2)`` mean (anchor) bead centres in pixels, for configuring ROIs."""
        return self.beads.mean[:, :2] / self.pixel_size_nm

    # --- focus ------------------------------------------------------------------------------
    def move_focus(self, z_nm: float, duration_s: float = 0.0) -> None:
        """Move the focal plane to ``z_nm``, linearly over ``duration_s`` (wall clock)."""
        now = time.monotonic()
        self._focus_from = self.focal_z_nm(now)
        self._focus_to = float(z_nm)
        self._focus_t0 = now
        self._focus_duration = float(duration_s)

    def focal_z_nm(self, now: float | None = None) -> float:
        """Focal plane at wall-clock time ``now`` (default: now)."""
        if self._focus_duration <= 0:
            return self._focus_to
        now = time.monotonic() if now is None else now
        frac = min(max((now - self._focus_t0) / self._focus_duration, 0.0), 1.0)
        return self._focus_from + frac * (self._focus_to - self._focus_from)

    def focus_target_nm(self) -> float:
        return self._focus_to

    def focus_settled_at(self) -> float:
        """Wall-clock time at which the current focus move ends."""
        return self._focus_t0 + self._focus_duration

    # --- frames -----------------------------------------------------------------------------
    def advance(self, dt: float) -> np.ndarray:
        """Advance the beads (and drift) by ``dt`` seconds; returns ``(n, 3)`` positions, nm."""
        pos = self.beads.step(dt)
        if self.drift is not None:
            pos = pos + self.drift.step(dt)
        return pos

    def render(self, positions_nm: np.ndarray, focal_z_nm: float, out: np.ndarray) -> None:
        """Render beads at ``positions_nm`` (``(n, 3)``) into ``out`` (camera counts)."""
        frame = self._intensity
        frame.fill(1.0)
        self.imager.render_beads(
            frame,
            positions_nm[:, 0] / self.pixel_size_nm,
            positions_nm[:, 1] / self.pixel_size_nm,
            positions_nm[:, 2] - focal_z_nm,
        )
        to_counts(
            frame,
            self.photons,
            self.read_noise_e,
            self.bit_depth,
            self.rng,
            out,
            offset_adu=self.offset_adu,
            exact=self.exact_noise,
        )

    def warm_up(self) -> None:
        """Compile (or load) the rendering kernels on a scratch frame, touching no state of the
        simulation (its own random generator): the first real frame then takes no longer than
        the others, as a camera's does."""
        frame = np.ones_like(self._intensity)
        self.imager.render_beads(frame, np.zeros(1), np.zeros(1), np.zeros(1))
        out = np.empty(frame.shape, dtype=count_dtype(self.bit_depth))
        to_counts(frame, self.photons, self.read_noise_e, self.bit_depth,
                  np.random.default_rng(0), out, offset_adu=self.offset_adu,
                  exact=self.exact_noise)  # fmt: skip

    def expose(self, dt: float, exposure_s: float) -> np.ndarray:
        """Advance by ``dt`` seconds, the last ``exposure_s`` of them exposed; returns the
        ``(n, 3)`` positions averaged over the exposure."""
        exposed = min(max(exposure_s, 0.0), max(dt, 0.0))
        n = self.exposure_substeps
        if n == 1 or exposed == 0:
            return self.advance(dt)
        self.advance(dt - exposed)
        total = np.zeros((self.n_beads, 3))
        for _ in range(n):
            total += self.advance(exposed / n)
        return total / n

    def snap(
        self,
        out: np.ndarray,
        dt: float,
        frame_number: int,
        timestamp: float,
        exposure_s: float = 0.0,
    ) -> GroundTruth:
        """Advance by ``dt`` (exposed for the last ``exposure_s``), render one frame into
        ``out`` and return its ground truth. Magnets act as they are at ``timestamp``."""
        height = rotation = float("nan")
        if self.magnets is not None:
            height, rotation, force = self.magnets.at(timestamp)
            self.beads.set_tension(force, rotation)
        pos = self.expose(dt, exposure_s)
        focal = self.focal_z_nm()
        self.render(pos, focal, out)
        # the model's x, y have pixel centres at integers; the truth uses the camera frame of
        # DESIGN.md (origin at the image's corner): half a pixel further
        half = 0.5 * self.pixel_size_nm
        beads = self.beads
        return GroundTruth(
            frame_number,
            timestamp,
            pos[:, 0] + half,
            pos[:, 1] + half,
            pos[:, 2].copy(),
            focal,
            np.where(beads.stuck, 0.0, beads.force_pn),
            beads.extension_nm.copy(),
            height,
            rotation,
        )
