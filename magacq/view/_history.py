"""The viewer's own short history of bead positions, for the live X/Y/Z traces.

Rows come from the run's positions MatrixBuffer: time, frame, bead id, x, y, z (nm), flag. The
viewer keeps only what its time window shows, so memory stays bounded however long the run.
Rows are taken as new (``MatrixBuffer.peak_since`` hands each row once).
"""

import numpy as np

T, FRAME, BEAD, X, Y, Z, FLAG = range(7)
N_COLUMNS = 7


class TrackHistory:
    """Recent position rows, trimmed to a time window.

    Parameters
    ----------
    window_s : float
        How many seconds of history to keep, counted back from the newest row.
    """

    def __init__(self, window_s: float = 30.0) -> None:
        self.window_s = window_s
        self._rows = np.empty((0, N_COLUMNS))

    def __len__(self) -> int:
        return len(self._rows)

    def extend(self, rows: np.ndarray) -> None:
        """Add new rows (each once, any order) and drop those older than the window."""
        if len(rows):
            rows = rows[np.isfinite(rows[:, T]), :N_COLUMNS]
            self._rows = np.concatenate([self._rows, rows])
        self.trim()

    def trim(self) -> None:
        """Drop rows older than ``window_s`` before the newest (in batches: a copy each time)."""
        if len(self._rows):
            times = self._rows[:, T]
            oldest = times.max() - self.window_s
            # copying the whole history for a few stale rows every tick would cost more than
            # keeping them: trim once a tenth of the window is stale
            if times.min() < oldest - 0.1 * self.window_s or len(self._rows) > 4_000_000:
                self._rows = self._rows[times >= oldest]

    def bead_ids(self) -> np.ndarray:
        """Ids of the beads with rows in the window."""
        return np.unique(self._rows[:, BEAD]).astype(int)

    def series(self, bead: int, reference: int | None = None) -> np.ndarray:
        """Time-sorted rows (t, x, y, z) of ``bead``, minus ``reference`` frame by frame.

        With a reference, only frames where both beads were tracked are returned.
        """
        mine = self._sorted(bead)
        out = mine[:, [T, X, Y, Z]]
        if reference is None or reference == bead:
            return out
        ref = self._sorted(reference)
        _, i, j = np.intersect1d(mine[:, FRAME], ref[:, FRAME], return_indices=True)
        out = out[i]
        out[:, 1:] -= ref[j][:, [X, Y, Z]]
        return out

    def _sorted(self, bead: int) -> np.ndarray:
        rows = self._rows[self._rows[:, BEAD] == bead]
        rows = rows[rows[:, T] >= rows[:, T].max(initial=0) - self.window_s]
        # workers write whole stacks in any order: nearly sorted already
        return rows[np.argsort(rows[:, FRAME], kind="stable")]
