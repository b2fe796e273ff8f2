"""What the viewer reads from (and the little it writes to) one run's shared buffers.

The viewer is started on its own, not as a child of the run. It attaches with each buffer's own
segment lock (a flock shared with the run's processes, ``buffers._lock``), and reads only
through the lock-free or short-lock paths: ``peak_image`` and ``peak_since`` (sequence-checked
copies, no lock), ROI snapshots and the status row (short copies). Its writes are the bead ROIs
the user edits and the bead whose live profile it wants. Every method returns plain numpy data;
nothing here knows about Qt."""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from buffers import (
    BeadRoiBuffer,
    BufferUnderflow,
    LiveProfileBuffer,
    MatrixBuffer,
    SegmentError,
    VideoBuffer,
    inspect_segment,
    segment_name,
)
from magacq.pipeline.channels.live_force import FORCES, forces_by_bead
from magacq.pipeline.channels.status import STATUS, STATUS_COLUMNS, dropped_frames
from magacq.runfile import ZLUT_BUFFER, zlut_of_bead

from ._discovery import ViewError


class RunEnded(Exception):
    """The run the viewer is attached to has stopped (its supervisor exited)."""


@dataclass(frozen=True)
class Beads:
    """A snapshot of the run's bead ROIs.

    ``rois`` rows are (x0, y0, x1, y1) in pixels, x1/y1 exclusive; ``reference`` marks the
    reference (stuck) beads; ``version`` changes whenever the set changes.
    """

    ids: np.ndarray
    rois: np.ndarray
    reference: np.ndarray
    version: int

    @classmethod
    def empty(cls) -> "Beads":
        return cls(np.empty(0, int), np.empty((0, 4), int), np.empty(0, bool), -1)


@dataclass(frozen=True)
class Profile:
    """The newest live radial profile: which bead, when (s), the samples."""

    bead_id: int
    time: float
    values: np.ndarray


@dataclass(frozen=True)
class ZLut:
    """A bead's Z look-up table: one radial profile (row) per focus position ``z_nm``."""

    z_nm: np.ndarray
    profiles: np.ndarray


@dataclass
class Status:
    """Live run status as the run publishes it (``magacq.pipeline.channels.status``); NaN before
    any."""

    fps: float = math.nan
    buffer_level: float = math.nan
    dropped: float = math.nan
    latency_s: float = math.nan  # p99, frame timestamp to positions
    frame: int = -1
    extra: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One status-bar line."""
        parts = [f"frame {self.frame}" if self.frame >= 0 else "no frame yet"]
        parts.append(f"{self.fps:.0f} fps" if math.isfinite(self.fps) else "fps –")
        if math.isfinite(self.buffer_level):
            parts.append(f"buffer {100 * self.buffer_level:.0f}%")
        if math.isfinite(self.dropped):
            lost = dropped_frames(self.dropped, self.extra.get("camera_gaps", 0.0))
            parts.append(f"dropped {lost}")
        else:
            parts.append("dropped –")
        if math.isfinite(self.latency_s):
            parts.append(f"latency p99 {1e3 * self.latency_s:.0f} ms")
        step, steps = self.extra.get("protocol_action", 0), self.extra.get("protocol_actions", 0)
        if step > 0:
            left = self.extra.get("protocol_left", math.nan)
            where = f"protocol step {int(step)}" + (f"/{int(steps)}" if steps else "")
            running = self.extra.get("protocol_step_s", math.nan)
            where += f" ({running:.0f} s in)" if math.isfinite(running) else ""
            parts.append(where + (f", {left:.0f} s left" if math.isfinite(left) else ""))
        return " · ".join(parts)


# Segment names the pipeline gives its buffers in a run's namespace.
VIDEO = "VideoBuffer"
POSITIONS = "positions"
ROIS = "BeadRoiBuffer"
PROFILE = "LiveProfileBuffer"
FRAMES = "frames"  # rows: camera frame, camera timestamp, ... (one per stored frame)
#: Columns of the positions rows: time, frame, bead id, x, y, z (nm), flag, time written.
T_COL, FRAME_COL, BEAD_COL, FLAG_COL, WRITTEN_COL = 0, 1, 2, 6, 7


class RunSource:
    """Read-mostly access to the buffers of the run in ``namespace``.

    Parameters
    ----------
    namespace : str
        The run's shared-memory namespace.

    Raises
    ------
    ViewError
        The run's VideoBuffer cannot be attached (the other buffers are optional).
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._closed = False
        self._rows_seen = 0
        try:
            self._video = VideoBuffer(create=False, namespace=namespace)
        except (FileNotFoundError, SegmentError) as exc:
            raise ViewError(f"cannot attach to run {namespace!r}: {exc}") from None
        self._positions = self._optional(MatrixBuffer, name=POSITIONS)
        self._rois = self._optional(BeadRoiBuffer, name=ROIS)
        self._profile = self._optional(LiveProfileBuffer, name=PROFILE)
        self._status = self._optional(MatrixBuffer, name=STATUS)
        self._zlut_buf = self._optional(MatrixBuffer, name=ZLUT_BUFFER)
        self._forces = self._optional(MatrixBuffer, name=FORCES)  # a run with ``live_force``
        self._zlut_rows: np.ndarray | None = None  # read once: the run writes it at its start
        self._frames = self._optional(MatrixBuffer, name=FRAMES)
        self._start: float | None = None  # the first frame's camera time, once known

    def _optional(self, cls: Any, **kwargs: Any) -> Any:
        try:
            return cls(create=False, namespace=self.namespace, **kwargs)
        except (FileNotFoundError, SegmentError):
            return None

    def alive(self) -> bool:
        """Whether the run's supervisor still owns its VideoBuffer."""
        if self._closed:
            return False
        info = inspect_segment(segment_name(VIDEO, self.namespace))
        return info is not None and info.owner_alive

    def frames_written(self) -> int:
        """How many frames the run has written so far (a cheap counter read)."""
        return int(self._video.frames_written)

    def latest_image(self) -> tuple[int, np.ndarray] | None:
        """The newest frame as ``(frame count, (height, width) array)``; None before any.

        ``peak_image`` copies the frame and checks it against the slot's sequence counter: no
        lock, never torn.
        """
        total = self._video.frames_written
        try:
            _slot, data = self._video.peak_image()
        except BufferUnderflow:
            return None
        width, height = self._video.image_shape
        return total, np.frombuffer(data, self._video.dtype).reshape(height, width)

    def beads(self) -> Beads:
        """The bead ROIs as (x0, y0, x1, y1) rows, and which are reference beads."""
        if self._rois is None:
            return Beads.empty()
        version, ids, rois, reference = self._rois.snapshot_with_reference()
        xyxy = rois[:, [0, 2, 1, 3]].astype(int)
        return Beads(ids.astype(int), xyxy, reference, int(version))

    def new_tracks(self) -> np.ndarray:
        """Position rows written since the previous call (at most the buffer's capacity)."""
        if self._positions is None:
            return np.empty((0, WRITTEN_COL + 1))
        rows, self._rows_seen = self._positions.peak_since(self._rows_seen)
        return rows[np.isfinite(rows[:, T_COL])]

    def live_profile(self) -> Profile | None:
        """The newest live radial profile, whichever bead it is of; None if none yet."""
        if self._profile is None:
            return None
        row = self._profile.peak_unsorted()[0]
        if not np.isfinite(row[1]):
            return None
        n = int(row[2])
        return Profile(int(row[1]), float(row[0]), row[3 : 3 + n].copy())

    def run_start(self) -> float | None:
        """The camera time of the run's first frame: a time since the run's start is a camera
        time minus this. None before the first frame, or when the ``frames`` buffer no longer
        holds it (the viewer attached long after the start: then no later call looks)."""
        if self._start is None and self._frames is not None:
            rows, total = self._frames.peak_since(0)
            if total and len(rows) == total:  # nothing lost: row 0 is the first frame
                self._start = float(rows[0, 1])
            elif total:
                self._frames.close()
                self._frames = None
        return self._start

    def zlut(self, bead_id: int) -> ZLut | None:
        """The Z-LUT ``bead_id`` is tracked with; None when the run has none for it.

        The run publishes its Z-LUT once, at its start (``magacq.runfile.ZLUT_BUFFER``); it is
        read here once, lock-free, and kept.
        """
        if self._zlut_rows is None:
            if self._zlut_buf is None and not self._closed:  # attached before the run made it
                self._zlut_buf = self._optional(MatrixBuffer, name=ZLUT_BUFFER)
            if self._zlut_buf is None:
                return None
            rows, total = self._zlut_buf.peak_since(0)
            if total < self._zlut_buf.shape[0]:
                return None  # not written yet
            self._zlut_rows = rows
        found = zlut_of_bead(self._zlut_rows, int(bead_id))
        return None if found is None else ZLut(*found)

    def status(self) -> Status:
        """The run's newest published status row
        (``magacq.pipeline.channels.status.STATUS_COLUMNS``)."""
        if self._status is None:
            return Status()
        rows = self._status.peak_sorted()
        rows = rows[np.isfinite(rows[:, 0])]
        if not len(rows):
            return Status()
        row = dict(zip(STATUS_COLUMNS, (float(v) for v in rows[-1]), strict=True))
        return Status(
            fps=row["fps"],
            buffer_level=row["buffer_level"],
            dropped=row["dropped"],
            latency_s=row["latency_p99"],
            frame=int(row["frames"]),
            extra=row,
        )

    def forces(self) -> dict[int, dict[str, float]] | None:
        """Each bead's newest live force estimate (``magacq.pipeline.channels.live_force``); None:
        the run has no live force."""
        return None if self._forces is None else forces_by_bead(self._forces.peak_sorted())

    def roi_size(self, default: int) -> int:
        """Side (px) of the run's bead ROIs: the trackers track only ROIs of this one size.

        The run does not publish it, so it is read off the ROIs it has (``default`` if none).
        """
        beads = self.beads()
        if not len(beads.ids):
            return default
        sides = beads.rois[:, 2] - beads.rois[:, 0]
        values, counts = np.unique(sides, return_counts=True)
        return int(values[np.argmax(counts)])

    def add_bead(self, x: float, y: float, half: int) -> int:
        """Add a ``2 * half`` px square ROI centred on pixel (x, y), moved inside the frame."""
        if self._rois is None:
            raise ViewError("this run has no bead ROI buffer")
        width, height = self._video.image_shape
        side = 2 * half
        x0 = int(np.clip(round(x) - half, 0, width - side))
        y0 = int(np.clip(round(y) - half, 0, height - side))
        bead = self._rois.get_next_available_bead_id()
        self._rois.add_beads({bead: (x0, x0 + side, y0, y0 + side)})
        return bead

    def remove_bead(self, bead_id: int) -> None:
        """Remove bead ``bead_id``'s ROI."""
        if self._rois is not None:
            self._rois.remove_beads([bead_id])

    def select_bead(self, bead_id: int) -> None:
        """Ask the trackers to publish ``bead_id``'s live profile."""
        if self._profile is not None:
            self._profile.selected_bead_id = int(bead_id)

    def close(self) -> None:
        """Detach (unmap) from the run's buffers; the run is not touched."""
        self._closed = True
        buffers = (self._video, self._positions, self._rois, self._profile, self._status,
                   self._zlut_buf, self._forces, self._frames)  # fmt: skip
        for buf in buffers:
            if buf is not None:
                buf.close()
