"""The tracking of one stack: every bead's ROI of every frame into position rows."""

from typing import Any

import numpy as np

from ._cut import cut_rois
from ._track import track_rois


def centroid(rois: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background-subtracted centre of mass of each ROI of ``(n, h, w)``.

    Returns x, y in pixels within the ROI (pixel centres at integers) and flags (1: no signal).
    """
    img = rois.astype(np.float64)
    bg = np.median(img.reshape(len(img), -1), axis=1)[:, None, None]
    w = np.abs(img - bg)
    w -= w.mean(axis=(1, 2), keepdims=True)
    np.clip(w, 0, None, out=w)
    total = w.sum(axis=(1, 2))
    ok = total > 0
    total[~ok] = 1
    x = (w.sum(axis=1) * np.arange(img.shape[2])).sum(axis=1) / total
    y = (w.sum(axis=2) * np.arange(img.shape[1])).sum(axis=1) / total
    x[~ok] = np.nan
    y[~ok] = np.nan
    return x, y, (~ok).astype(np.uint16)


class Tracker:
    """Turns one stack into position rows for the run's beads.

    Parameters
    ----------
    rois : ndarray (n_beads, 5)
        Bead id, x0, x1, y0, y1 in pixels.
    pixel_size_nm : float
    tracking : dict
        The tracking config section (algorithm, options, profile_bead).
    zlut : optional
        A ``magacq.tracking.ZLut`` with one LUT per bead (in ROI order), or None.
    """

    def __init__(
        self, rois: np.ndarray, pixel_size_nm: float, tracking: dict[str, Any], zlut: Any = None
    ) -> None:
        self.px = float(pixel_size_nm)
        self.algorithm = tracking.get("algorithm", "qi")
        self.options = dict(tracking.get("options") or {})
        self.zlut = zlut
        self.profile_bead = int(tracking.get("profile_bead", 0))
        self.last_profile: tuple[int, np.ndarray] | None = None
        self.set_rois(rois)

    def set_rois(self, rois: np.ndarray) -> None:
        """Track these beads from now on (``(n, 5)``: bead id, x0, x1, y0, y1)."""
        self.rois = np.asarray(rois, dtype=np.int64).reshape(-1, 5)
        ids = self.rois[:, 0]
        # Z-LUTs are stored in bead-id order; a bead added at run time has none (z NaN, NO_LUT)
        n_luts = self.zlut.n_luts if self.zlut is not None else 0
        self.lut_of_bead = np.where(ids < n_luts, ids, -1)

    def track(self, frames: np.ndarray, timestamps: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """Rows (time, frame, bead_id, x_nm, y_nm, z_nm, flag, t_written) of ``(n, h, w)``."""
        if len(self.rois) == 0:
            return np.empty((0, 8))
        side = int(self.rois[0, 2] - self.rois[0, 1])
        cut = cut_rois(frames, self.rois[:, 1], self.rois[:, 3], side)  # frame-major
        return self.track_crops(cut, timestamps, seqs)

    def track_crops(self, cut: np.ndarray, timestamps: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """The rows of :meth:`track` from the ROIs already cut: ``(n_frames * n_beads, side,
        side)``, frame-major, the beads in :attr:`rois` order (a recorded ``roi_video``)."""
        n_frames, n_beads = len(timestamps), len(self.rois)
        if n_beads == 0:
            return np.empty((0, 8))
        z = np.full(len(cut), np.nan)
        if self.algorithm == "centroid":
            x, y, flags = centroid(cut)
        else:
            lut_index = np.tile(self.lut_of_bead, n_frames)
            res = track_rois(cut, lut_index, self.zlut, method=self.algorithm, **self.options)
            x, y, z, flags = res.x, res.y, res.z, res.flags
            pb = np.flatnonzero(self.rois[:, 0] == self.profile_bead)
            if len(pb):
                last = res.profiles[(n_frames - 1) * n_beads + pb[0]]
                self.last_profile = (self.profile_bead, last)
        rows = np.empty((n_frames * n_beads, 8))
        # Columns filled by broadcasting (frames x beads): no repeated or tiled temporaries.
        grid = rows.reshape(n_frames, n_beads, 8)
        grid[:, :, 0] = np.asarray(timestamps)[:, None]
        grid[:, :, 1] = np.asarray(seqs)[:, None]
        grid[:, :, 2] = self.rois[:, 0]
        # pixel centres at integers within the ROI; the image's corner is the origin
        for col, pos, corner in ((3, x, self.rois[:, 1]), (4, y, self.rois[:, 3])):
            out = grid[:, :, col]
            np.add(pos.reshape(n_frames, n_beads), corner + 0.5, out=out)
            out *= self.px
        rows[:, 5] = z
        rows[:, 6] = flags
        return rows
