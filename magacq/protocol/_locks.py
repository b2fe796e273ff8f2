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
from dataclasses import dataclass

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

    Each :meth:`update` (every ``interval_s``) takes the bead's mean z over the last interval
    and returns the focus move (nm, relative) that brings it back: ``gain`` times the error,
    nothing inside ``deadband_nm``, at most ``max_step_nm``.

    Parameters
    ----------
    sign : float
        :func:`stage_sign` of the focus stage.
    target_nm : float, optional
        The z to hold; None: the first z seen once engaged.
    """

    sign: float
    target_nm: float | None = None
    gain: float = 0.7
    deadband_nm: float = 5.0
    max_step_nm: float = 200.0

    def update(self, z_nm: float) -> float:
        """The relative focus move for the reference bead's latest mean z (0: none)."""
        if not math.isfinite(z_nm):
            return 0.0
        if self.target_nm is None:
            self.target_nm = z_nm
            return 0.0
        error = z_nm - self.target_nm
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

    def update(
        self, box: tuple[int, int, int, int], x_px: float, y_px: float
    ) -> tuple[int, int, int, int] | None:
        """The new ``(x0, x1, y0, y1)`` for a bead at ``(x_px, y_px)`` (frame pixels, mean over
        the recent window), or None when it stays."""
        if not (math.isfinite(x_px) and math.isfinite(y_px)):
            return None
        x0, _, y0, _ = box
        half = self.roi_size / 2
        if max(abs(x_px - (x0 + half)), abs(y_px - (y0 + half))) <= self.threshold_px:
            return None
        nx0 = int(np.clip(round(x_px - half), 0, self.width - self.roi_size))
        ny0 = int(np.clip(round(y_px - half), 0, self.height - self.roi_size))
        if (nx0, ny0) == (x0, y0):
            return None
        return nx0, nx0 + self.roi_size, ny0, ny0 + self.roi_size
