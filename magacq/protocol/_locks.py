"""The long-run locks as small controllers: Z-lock (focus follows a reference bead) and XY-lock
(ROIs follow their beads). Pure: they read measurements and return corrections; the protocol
process feeds them the latest tracks and sends the corrections to the devices and the ROIs.

Frames of reference: a Z-LUT's z is the bead's height above the focal plane's start, so moving
the focus stage by ``d`` shifts every bead's LUT z by ``-s * d``, with ``s = +1`` when the stage
moves the objective and ``-1`` when it moves the sample (``calibration.stage_moves``). The
sample-frame z, continuous across lock moves, is ``z_lut + s * (focus - focus_at_start)``
(:func:`sample_z`).
"""

import math
from dataclasses import dataclass, field

import numpy as np


def stage_sign(stage_moves: str) -> float:
    """``s``: +1 when the focus stage moves the objective, -1 when it moves the sample."""
    return 1.0 if stage_moves == "objective" else -1.0


def sample_z(
    z_lut_nm: np.ndarray, focus_nm: np.ndarray, focus0_nm: float, sign: float
) -> np.ndarray:
    """z in the sample's frame: the Z-LUT z corrected for the focus moves since ``focus0_nm``."""
    return np.asarray(z_lut_nm) + sign * (np.asarray(focus_nm) - focus0_nm)


@dataclass
class ZLock:
    """Keep a reference bead's Z-LUT z at a target by moving the focus.

    The bead's readings (camera time, Z-LUT z, the focus at that frame: :meth:`add`) are kept in
    the sample's frame, ``z_lut + s * focus``, where the focus moves the lock made no longer
    show: what is left is the stage's drift. So no reading is thrown away after a move, and the
    tracking latency does not delay the loop: each :meth:`update` fits a line to the last
    ``window_s`` of that drift and extrapolates it to the time asked (the newest frame's, plus
    the lead the caller wants), which gives the bead's Z-LUT z there at the current focus. The
    move returned is ``gain`` times its error (the drift rate feeds forward, so 1 leaves no lag
    behind a steady drift), nothing inside ``deadband_nm``, at most ``max_step_nm``.

    Parameters
    ----------
    sign : float
        :func:`stage_sign` of the focus stage.
    target_nm : float, optional
        The z to hold; None: the bead's z at the first update with readings.
    window_s : float
        Seconds of readings the drift and its rate are fitted on; the rate is used once the
        readings span half of it.
    """

    sign: float
    target_nm: float | None = None
    gain: float = 1.0
    deadband_nm: float = 1.0
    max_step_nm: float = 200.0
    window_s: float = 4.0
    #: The bead's mean Z-LUT z minus the target over the readings of the last update.
    error_nm: float = math.nan
    _t: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _drift: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _new: list[float] = field(default_factory=list, repr=False)  # Z-LUT z since the last update

    def add(self, t_s: np.ndarray, z_lut_nm: np.ndarray, focus_nm: np.ndarray) -> None:
        """Readings of the bead: camera times, Z-LUT z, the focus at each frame (NaN: dropped)."""
        t, z, f = (np.asarray(a, dtype=np.float64) for a in (t_s, z_lut_nm, focus_nm))
        ok = np.isfinite(t) & np.isfinite(z) & np.isfinite(f)
        self._t = np.concatenate([self._t, t[ok]])
        self._drift = np.concatenate([self._drift, z[ok] + self.sign * f[ok]])
        self._new.extend(z[ok].tolist())

    def drift_at(self, t_s: float) -> float:
        """The sample-frame z the readings of the last ``window_s`` predict at ``t_s``."""
        keep = self._t >= self._t.max() - self.window_s  # workers' stacks come in any order
        t, d = self._t[keep], self._drift[keep]
        self._t, self._drift = t, d
        mean_t = float(t.mean())
        if t.max() - t.min() < self.window_s / 2:
            return float(d.mean())
        dt = t - mean_t
        rate = float(dt @ (d - d.mean()) / (dt @ dt))
        return float(d.mean()) + rate * (t_s - mean_t)

    def update(self, t_s: float, focus_nm: float) -> float:
        """The relative focus move (0: none) that puts the bead at its target at time ``t_s``
        (camera clock), the focus being at ``focus_nm`` now."""
        if not len(self._t) or not math.isfinite(focus_nm):
            return 0.0
        z = self.drift_at(t_s) - self.sign * focus_nm  # the Z-LUT z at t_s at this focus
        if self.target_nm is None:
            self.target_nm = z
        if self._new:
            self.error_nm = float(np.mean(self._new)) - self.target_nm
            self._new.clear()
        error = z - self.target_nm
        if abs(error) <= self.deadband_nm:
            return 0.0
        step = float(np.clip(self.gain * error, -self.max_step_nm, self.max_step_nm))
        return self.sign * step


@dataclass
class XYLock:
    """Re-centre an ROI once its bead's mean position is more than ``threshold_px`` off centre.

    Parameters
    ----------
    roi_size : int
        Side of the (square) ROIs.
    width, height : int
        The frame: a moved ROI stays inside it.
    threshold_px : float
    """

    roi_size: int
    width: int
    height: int
    threshold_px: float = 2.0

    def offset_px(self, box: tuple[int, int, int, int], x_px: float, y_px: float) -> float:
        """How far (px, the larger of x and y) a bead at ``(x_px, y_px)`` is off its ROI's
        centre."""
        x0, _, y0, _ = box
        half = self.roi_size / 2
        return max(abs(x_px - (x0 + half)), abs(y_px - (y0 + half)))

    def update(
        self, box: tuple[int, int, int, int], x_px: float, y_px: float
    ) -> tuple[int, int, int, int] | None:
        """The new ``(x0, x1, y0, y1)`` for a bead at ``(x_px, y_px)`` (frame pixels, mean over
        the recent window), or None when it stays."""
        if not (math.isfinite(x_px) and math.isfinite(y_px)):
            return None
        if self.offset_px(box, x_px, y_px) <= self.threshold_px:
            return None
        x0, _, y0, _ = box
        half = self.roi_size / 2
        nx0 = int(np.clip(round(x_px - half), 0, self.width - self.roi_size))
        ny0 = int(np.clip(round(y_px - half), 0, self.height - self.roi_size))
        if (nx0, ny0) == (x0, y0):
            return None
        return nx0, nx0 + self.roi_size, ny0, ny0 + self.roi_size
