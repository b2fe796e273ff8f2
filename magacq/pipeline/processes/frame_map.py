"""The writer's index of the run's frames: which camera frame each buffer slot held, when it
arrived, where the focus stood, and which host time falls on which frame.

Rows of other buffers name a frame by its buffer sequence number (the trackers', the
recorder's) or by host time (events); :class:`FrameMap` resolves both from the ``frames`` rows
(camera frame, timestamp, sequence number, magnets, focus, host arrival). It keeps the last
:data:`RING` frames only, so that its memory stays flat over hours: every row that refers to a
frame comes within seconds of it.
"""

import numpy as np

from magacq.pipeline.channels.streams import FRAMES, POSITIONS
from magacq.pipeline.processes.clock import CameraClock
from magacq.protocol import sample_z

#: Frames the map keeps (by sequence number and by frame number): minutes at 1 kHz.
RING = 1 << 18
_RECENT_S = 30.0  # frames kept to place events: an event is placed within this of its time


class _Ring:
    """Values by a growing integer key (a sequence or frame number); the last :data:`RING`."""

    def __init__(self, fill: float) -> None:
        self.keys = np.full(RING, -1, dtype=np.int64)
        self.values = np.full(RING, fill)
        self.fill = fill

    def put(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.keys[keys % RING] = keys
        self.values[keys % RING] = values

    def get(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        slot = keys % RING
        ok = (keys >= 0) & (self.keys[slot] == keys)
        out = np.full(len(keys), self.fill)
        out[ok] = self.values[slot[ok]]
        return out

    def known(self) -> np.ndarray:
        return np.sort(self.keys[self.keys >= 0])


class FrameMap:
    """Buffer sequence number -> camera frame (timestamp, arrival, focus); host time -> the
    first frame taken at or after it, through the run's :class:`CameraClock`.

    ``z_sign`` (a Z-lock's run: :func:`magacq.protocol.stage_sign`) puts tracked z into the
    sample's frame (:meth:`sample_frame`); None leaves it the Z-LUT's."""

    def __init__(self, z_sign: float | None = None) -> None:
        self.by_seq = _Ring(-1.0)  # the camera frame of each sequence number
        self.stamp = _Ring(np.nan)  # by sequence number
        self.arrival = _Ring(np.nan)  # host arrival, by frame number
        self.focus = _Ring(np.nan)  # by frame number
        self.listed = _Ring(0.0)  # 1: in video_frames or video_skipped, by frame number
        self.clock = CameraClock()
        self.z_sign = z_sign
        self.focus0: float | None = None
        self.newest = -1
        self.n = 0
        self.held: dict[str, np.ndarray] = {}  # rows awaiting their frames, by buffer
        self.held_events = np.empty((0, 0))  # events awaiting their first frame
        self.recent = np.empty((0, 2))  # frame, timestamp of the last _RECENT_S of frames
        self.first_timestamp: float | None = None

    def add(self, rows: np.ndarray) -> None:
        """``frames`` rows: frame, timestamp, sequence number, height, rotation, focus, arrival."""
        if len(rows) == 0:
            return
        c = FRAMES.at
        seq, fn = rows[:, c.seq].astype(np.int64), rows[:, c.frame].astype(np.int64)
        self.by_seq.put(seq, fn)
        self.stamp.put(seq, rows[:, c.timestamp])
        self.arrival.put(fn, rows[:, c.host_time])
        self.focus.put(fn, rows[:, c.focus_z_nm])
        self.clock.add(rows[:, c.timestamp], rows[:, c.host_time])
        self.newest = max(self.newest, int(fn.max()))
        self.n = max(self.n, int(seq.max()) + 1)
        if self.focus0 is None and np.isfinite(rows[0, c.focus_z_nm]):
            self.focus0 = float(rows[0, c.focus_z_nm])
        if self.first_timestamp is None:
            self.first_timestamp = float(rows[0, c.timestamp])
        recent = np.concatenate([self.recent, rows[:, [c.frame, c.timestamp]]])
        self.recent = recent[recent[:, 1] >= recent[-1, 1] - _RECENT_S]

    def frames_at(self, times: np.ndarray) -> np.ndarray:
        """The first frame taken at or after each host time (-1: none yet)."""
        out = np.full(len(times), -1, dtype=np.int64)
        if not len(self.recent):
            return out
        k = np.searchsorted(self.recent[:, 1], self.clock.to_camera(times))
        ok = k < len(self.recent)
        out[ok] = self.recent[k[ok], 0].astype(np.int64)
        return out

    def sample_frame(self, rows: np.ndarray) -> None:
        """Position rows (frame numbers mapped) with z in the sample's frame, in place."""
        if self.z_sign is None or self.focus0 is None:
            return
        c = POSITIONS.at  # its seq column holds the frame by now
        focus = self.focus.get(rows[:, c.seq])
        rows[:, c.z_nm] = sample_z(rows[:, c.z_nm], focus, self.focus0, self.z_sign)

    def mark_listed(self, frames: np.ndarray) -> None:
        self.listed.put(frames.astype(np.int64), np.ones(len(frames)))

    def unlisted(self, every: int) -> np.ndarray:
        """Rows (frame, timestamp) of the stored frames (of the last :data:`RING`) the video
        should hold (every ``every``-th) but that the recorder never listed, kept or skipped:
        it died with them unflushed, or they were the unfinished last stack."""
        seq = self.by_seq.known()
        seq = seq[seq % every == 0]
        fn = self.by_seq.get(seq).astype(np.int64)
        seq = seq[(fn >= 0) & (self.listed.get(fn) == 0)]
        return np.column_stack([self.by_seq.get(seq), self.stamp.get(seq)])

    def resolve(self, name: str, rows: np.ndarray, column: int, final: bool) -> np.ndarray:
        """``rows`` (with those held from earlier drains) whose sequence numbers in ``column``
        map to known frames, the column replaced by the frame; the rest held for the next
        drain. A stack can be consumed between a drain's read of ``frames`` and of the rows
        that refer to it. ``final``: nothing is held any more (unknown frames written as -1)."""
        held = self.held.pop(name, None)
        if held is not None and len(held):
            rows = np.concatenate([held, rows]) if len(rows) else held
        if not len(rows):
            return rows
        frame = self.by_seq.get(rows[:, column]).astype(np.int64)
        known = frame >= 0
        if final:
            known[:] = True
        else:
            self.held[name] = rows[~known]
        rows = rows[known]
        rows[:, column] = frame[known]
        return rows
