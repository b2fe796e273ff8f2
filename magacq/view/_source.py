"""What the viewer reads from (and the little it writes to) one run's shared buffers.

The viewer is started on its own, not as a child of the run, so it holds none of the run's
``multiprocessing`` locks. It therefore only uses the buffers' lock-free reads (``peak_image``,
snapshot reads that retry on a concurrent write) and never blocks the pipeline. Every method
returns plain numpy data; nothing here knows about Qt.
"""

import importlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import buffers
from buffers import BufferUnderflow, SegmentError, VideoBuffer
from buffers._segment import inspect_segment, segment_name

from ._discovery import ViewError


def _buffer_class(name: str, module: str) -> Any:
    """``buffers.<name>``, or from its private module while it is not exported; None if absent."""
    if hasattr(buffers, name):
        return getattr(buffers, name)
    try:
        return getattr(importlib.import_module(f"buffers.{module}"), name)
    except (ImportError, AttributeError):
        return None


MatrixBuffer = _buffer_class("MatrixBuffer", "_matrix")
BeadRoiBuffer = _buffer_class("BeadRoiBuffer", "_bead_roi")
LiveProfileBuffer = _buffer_class("LiveProfileBuffer", "_live_profile")


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
    """Live run status; NaN where the run does not publish a number."""

    fps: float = math.nan
    buffer_level: float = math.nan
    dropped: float = math.nan
    latency_s: float = math.nan
    frame: int = -1
    extra: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One status-bar line."""
        parts = [f"frame {self.frame}" if self.frame >= 0 else "no frame yet"]
        parts.append(f"{self.fps:.0f} fps" if math.isfinite(self.fps) else "fps –")
        if math.isfinite(self.buffer_level):
            parts.append(f"buffer {100 * self.buffer_level:.0f}%")
        parts.append(f"dropped {int(self.dropped)}" if math.isfinite(self.dropped) else "dropped –")
        if math.isfinite(self.latency_s):
            parts.append(f"latency {1e3 * self.latency_s:.0f} ms")
        return " · ".join(parts)


class RateMeter:
    """Frames per second from a growing frame counter, smoothed, sampled at most every 0.5 s."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None
        self.rate = math.nan

    def update(self, count: int) -> float:
        now = time.monotonic()
        if self._last is None:
            self._last = (now, count)
        elif now - self._last[0] >= 0.5:
            t, c = self._last
            rate = (count - c) / (now - t)
            self.rate = rate if not math.isfinite(self.rate) else 0.5 * (self.rate + rate)
            self._last = (now, count)
        return self.rate


# Segment names the pipeline gives its buffers in a run's namespace.
VIDEO = "VideoBuffer"
POSITIONS = "positions"
ROIS = "BeadRoiBuffer"
PROFILE = "LiveProfileBuffer"
DROPPED = "dropped"  # one row per frame the producer dropped
#: Columns of the positions rows: time, frame, bead id, x, y, z (nm), flag, time written.
T_COL, FRAME_COL, BEAD_COL, FLAG_COL, WRITTEN_COL = 0, 1, 2, 6, 7


def _private_locks(*names: str) -> dict[str, Any]:
    """Locks for attaching from outside the run: process-private, so they exclude nothing.

    The run's own locks are ``multiprocessing`` locks inherited by its children; an unrelated
    process cannot get them. Only reads that need no lock (``peak_image``, single header words)
    are safe with these; see the notes on each method.
    """
    return {name: threading.Lock() for name in names}


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
        self._rate = RateMeter()
        self._rows_seen = 0
        self._newest_frame = -1
        self._selected: int | None = None
        locks = _private_locks(VIDEO, POSITIONS, ROIS, PROFILE, DROPPED)
        try:
            self._video = VideoBuffer(create=False, locks=locks, namespace=namespace)
        except (FileNotFoundError, SegmentError) as exc:
            raise ViewError(f"cannot attach to run {namespace!r}: {exc}") from None
        self._positions = self._optional(MatrixBuffer, locks=locks, name=POSITIONS)
        self._rois = self._optional(BeadRoiBuffer, locks=locks, name=ROIS)
        self._profile = self._optional(LiveProfileBuffer, locks=locks, name=PROFILE)
        self._dropped = self._optional(MatrixBuffer, locks=locks, name=DROPPED)
        self._reference: set[int] = set()

    def _optional(self, cls: Any, **kwargs: Any) -> Any:
        if cls is None:
            return None
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
        version, ids, rois = self._rois.snapshot()
        ids = ids.astype(int)
        xyxy = rois[:, [0, 2, 1, 3]].astype(int)
        ref = np.array([i in self._reference for i in ids], dtype=bool)
        return Beads(ids, xyxy, ref, int(version))

    def new_tracks(self) -> np.ndarray:
        """Position rows written since the previous call (at most the buffer's capacity).

        Rows may repeat across calls when a write lands between the two reads below; the
        viewer's history removes duplicates.
        """
        buf = self._positions
        if buf is None:
            return np.empty((0, WRITTEN_COL + 1))
        written = buf.rows_written
        new = min(written - self._rows_seen, buf.shape[0])
        self._rows_seen = written
        if new <= 0:
            return np.empty((0, buf.shape[1]))
        rows = buf.peak_sorted()[-new:]
        rows = rows[np.isfinite(rows[:, T_COL])]
        if len(rows):
            self._newest_frame = max(self._newest_frame, int(rows[:, FRAME_COL].max()))
        return rows

    def live_profile(self) -> Profile | None:
        """The newest live radial profile, whichever bead it is of; None if none yet."""
        if self._profile is None:
            return None
        row = self._profile.peak_unsorted()[0]
        if not np.isfinite(row[1]):
            return None
        n = int(row[2])
        return Profile(int(row[1]), float(row[0]), row[3 : 3 + n].copy())

    def zlut(self, bead_id: int) -> ZLut | None:
        """The Z-LUT of ``bead_id``, when the run publishes one (not yet: always None)."""
        return None

    def status(self) -> Status:
        """Frame rate (measured here), buffer level, dropped frames, and tracking lag.

        The lag is how many frames the newest positions trail the newest frame, over the
        frame rate: the run's own latency counters are not in shared memory.
        """
        total = self._video.frames_written
        fps = self._rate.update(total)
        dropped = math.nan if self._dropped is None else self._dropped.rows_written
        lag = math.nan
        if self._newest_frame >= 0 and fps > 0:
            lag = max(0.0, (total - 1 - self._newest_frame) / fps)
        return Status(
            fps=fps,
            buffer_level=self._video._get_count_index() / self._video.n_total_images,
            dropped=dropped,
            frame=total,
            latency_s=lag,
        )

    def add_bead(self, x: float, y: float, half: int) -> int:
        """Add a ROI of ``2*half`` px centred on pixel (x, y), clipped to the frame."""
        if self._rois is None:
            raise ViewError("this run has no bead ROI buffer")
        width, height = self._video.image_shape
        x0 = int(np.clip(round(x) - half, 0, width - 2 * half))
        y0 = int(np.clip(round(y) - half, 0, height - 2 * half))
        bead = self._rois.get_next_available_bead_id()
        self._rois.add_beads({bead: (x0, x0 + 2 * half, y0, y0 + 2 * half)})
        return bead

    def remove_bead(self, bead_id: int) -> None:
        """Remove bead ``bead_id``'s ROI."""
        if self._rois is not None:
            self._rois.remove_beads([bead_id])

    def select_bead(self, bead_id: int) -> None:
        """Ask the trackers to publish ``bead_id``'s live profile."""
        self._selected = bead_id

    def close(self) -> None:
        """Detach (unmap) from the run's buffers; the run is not touched."""
        self._closed = True
        for buf in (self._video, self._positions, self._rois, self._profile, self._dropped):
            if buf is not None:
                buf.close()
