"""The viewer's own short history of bead positions, for the live X/Y/Z traces.

Rows come from the run's positions MatrixBuffer: time, frame, bead id, x, y, z (nm), flag. The
viewer keeps only what its time window shows, so memory stays bounded however long the run.
Rows are taken as new (``MatrixBuffer.peak_since`` hands each row once).

Each bead's rows live in an array of their own that grows in place (amortised): a tick's new
rows are appended, never the whole history copied, and a trace reads its bead's rows as a view.
"""

import itertools

import numpy as np

T, FRAME, BEAD, X, Y, Z, FLAG = range(7)
N_COLUMNS = 7
#: Columns kept per bead: time, frame, x, y, z.
_KEPT = [T, FRAME, X, Y, Z]
_T, _FRAME, _X, _Y, _Z = range(5)
_VERSIONS = itertools.count()  # one sequence for every track: a new track's never repeats one


class _BeadTrack:
    """One bead's rows (t, frame, x, y, z), kept sorted by frame, oldest first."""

    def __init__(self) -> None:
        self.data = np.empty((1024, len(_KEPT)))
        self.start = self.end = 0
        self.unsorted = False
        self.version = next(_VERSIONS)  # changes whenever rows are added or dropped

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, rows: np.ndarray) -> None:
        n = len(rows)
        if self.end + n > len(self.data):
            live = self.data[self.start : self.end]
            capacity = len(self.data)
            if 2 * (len(live) + n) > capacity:  # more than half full: grow, else compact
                capacity = 2 * (len(live) + n)
            data = np.empty((capacity, len(_KEPT))) if capacity != len(self.data) else self.data
            data[: len(live)] = live  # numpy copes with the overlap when compacting in place
            self.data, self.start, self.end = data, 0, len(live)
        frames = rows[:, _FRAME]
        if (len(self) and frames[0] < self.data[self.end - 1, _FRAME]) or (
            n > 1 and (frames[1:] < frames[:-1]).any()
        ):
            self.unsorted = True  # workers write whole stacks, in any order
        self.data[self.end : self.end + n] = rows
        self.end += n
        self.version = next(_VERSIONS)

    def rows(self) -> np.ndarray:
        """The rows sorted by frame (a view: valid until the next change)."""
        live = self.data[self.start : self.end]
        if self.unsorted:
            live[:] = live[np.argsort(live[:, _FRAME], kind="stable")]
            self.unsorted = False
        return live

    def drop_before(self, t: float) -> None:
        """Forget the rows older than ``t``."""
        if len(self) and self.data[self.start, _T] < t:
            k = int(np.searchsorted(self.rows()[:, _T], t, side="left"))
            if k:
                self.start += k
                self.version = next(_VERSIONS)


class TrackHistory:
    """Recent position rows, trimmed to a time window.

    Parameters
    ----------
    window_s : float
        How many seconds of history to keep, counted back from the newest row.
    """

    def __init__(self, window_s: float = 30.0) -> None:
        self.window_s = window_s
        self._tracks: dict[int, _BeadTrack] = {}
        self._newest = -np.inf

    def __len__(self) -> int:
        return sum(len(track) for track in self._tracks.values())

    def extend(self, rows: np.ndarray) -> None:
        """Add new rows (each once, any order) and drop those older than the window."""
        rows = rows[np.isfinite(rows[:, T])] if len(rows) else rows
        if len(rows):
            self._newest = max(self._newest, float(rows[:, T].max()))
            beads = rows[:, BEAD]
            order = np.argsort(beads, kind="stable")
            ids, first = np.unique(beads[order], return_index=True)
            for bead, part in zip(ids, np.split(order, first[1:]), strict=True):
                track = self._tracks.setdefault(int(bead), _BeadTrack())
                track.append(rows[part][:, _KEPT])
        self.trim(lazy=True)

    def trim(self, lazy: bool = False) -> None:
        """Drop rows older than ``window_s`` before the newest.

        With ``lazy``, a bead's rows are trimmed only once a tenth of the window is stale.
        """
        oldest = self._newest - self.window_s
        slack = 0.1 * self.window_s if lazy else 0.0
        for bead, track in list(self._tracks.items()):
            if len(track) and track.data[track.start, _T] < oldest - slack:
                track.drop_before(oldest)
            if not len(track):
                del self._tracks[bead]

    def bead_ids(self) -> np.ndarray:
        """Ids of the beads with rows in the window."""
        return np.array(sorted(self._tracks), dtype=int)

    def version(self, bead: int) -> int:
        """A number that changes whenever ``bead``'s rows change (-1: no rows)."""
        track = self._tracks.get(bead)
        return -1 if track is None else track.version

    def series(self, bead: int, reference: int | None = None) -> np.ndarray:
        """Time-sorted rows (t, x, y, z) of ``bead``, minus ``reference`` frame by frame.

        With a reference, only frames where both beads were tracked are returned.
        """
        mine = self._window(bead)
        out = mine[:, [_T, _X, _Y, _Z]]  # a copy
        if reference is None or reference == bead:
            return out
        ref = self._window(reference)
        ref_frames = ref[:, _FRAME]
        at = np.minimum(np.searchsorted(ref_frames, mine[:, _FRAME]), max(len(ref) - 1, 0))
        both = (ref_frames[at] == mine[:, _FRAME]) if len(ref) else np.zeros(len(mine), bool)
        out = out[both]
        out[:, 1:] -= ref[at[both]][:, [_X, _Y, _Z]]
        return out

    def _window(self, bead: int) -> np.ndarray:
        track = self._tracks.get(bead)
        if track is None:
            return np.empty((0, len(_KEPT)))
        rows = track.rows()
        return rows[int(np.searchsorted(rows[:, _T], self._newest - self.window_s)) :]
