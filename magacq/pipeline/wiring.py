"""What every process of a run is handed: buffer names and geometry, locks, events, counters.

A :class:`RunWiring` is built by the supervisor and passed (pickled) to each child; a child calls
:meth:`RunWiring.enter_child` first (process title, logging, signals) and attaches the buffers it
needs.
"""

import ctypes
import logging
import signal
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import SynchronizedString
from multiprocessing.synchronize import Event, Semaphore
from typing import Any, TypedDict

import numpy as np

from buffers import MatrixBuffer, VideoBuffer
from magacq.logs import RunLogging
from magacq.pipeline.status import STATUS, RunStats

#: MatrixBuffers of a run: name -> columns.
MATRICES = {
    "positions": 8,  # time, frame, bead_id, x_nm, y_nm, z_nm, flag, t_written
    "frames": 3,  # camera frame, timestamp, buffer sequence number
    "dropped": 3,  # camera frame, timestamp, reason
    "truth": 5,  # camera frame, bead_id, x_nm, y_nm, z_nm
    "recorded": 3,  # buffer sequence number, timestamp, 0 kept in the video / 1 skipped
}
#: Names given to ``buffers.make_locks``.
LOCK_NAMES = ("VideoBuffer", *MATRICES, STATUS, "BeadRoiBuffer", "LiveProfileBuffer")
#: The VideoBuffer's consumer groups when the recorder runs (none without it).
TRACKERS, RECORDER = "trackers", "recorder"
VIDEO_GROUPS = (TRACKERS, RECORDER)

_PR_SET_PDEATHSIG = 1


class Geometry(TypedDict):
    """The camera as the run found it (``probe_camera``); also the run file's attributes."""

    width: int
    height: int
    bits: int  # bits per stored pixel (8 * itemsize)
    bit_depth: int  # significant bits
    dtype: str
    pixel_size_nm: float
    camera_driver: str
    camera_class: str
    simulated: bool  # the camera gives ground truth


class DeviceSpec(TypedDict):
    """A device to open in a child: its driver name and settings."""

    driver: str
    settings: dict[str, Any]


class VideoSpec(TypedDict):
    """The VideoBuffer's ring."""

    n_stacks: int
    n_images: int


class RecorderSpec(TypedDict):
    """The recorder: its video file and the ``output.video`` section."""

    path: str
    video: dict[str, Any]  # VideoConfig.model_dump(mode="json")


class WriterSpec(TypedDict):
    """The run file: path, root attributes written at creation, the bead ROIs table."""

    path: str
    attrs: dict[str, Any]
    rois: np.ndarray  # magacq.runfile.ROIS_DTYPE


def control_primitives(
    ctx: BaseContext, logs: RunLogging, events: "Queue[tuple[str, str, str]]"
) -> dict[str, Any]:
    """The process-control fields of a :class:`RunWiring`, made in ``ctx`` (run and sweep alike).

    ``logs`` is the supervisor's log listener; ``events`` the children -> supervisor queue.
    """
    return {
        "stats": RunStats(ctx),
        "log_queue": logs.queue,
        "log_level": logs.level,
        "stop": ctx.Event(),
        "workers_stop": ctx.Event(),
        "writer_finish": ctx.Event(),
        "final_state": ctx.Array("c", 32),
        "final_error": ctx.Array("c", 1024),
        "events": events,
        "ready": ctx.Semaphore(0),
    }


@dataclass
class RunWiring:
    """Everything a child process needs to join the run (picklable)."""

    namespace: str
    locks: dict[str, Any]  # buffers.make_locks: name -> multiprocessing lock or condition
    stats: RunStats
    log_queue: "Queue[Any]"  # log records -> the supervisor's listener
    log_level: int
    stop: Event  # producer stops acquiring
    workers_stop: Event  # workers exit once no full stack is left
    writer_finish: Event  # writer drains one last time and closes the file
    final_state: SynchronizedString  # "complete" / "failed" / "interrupted"
    final_error: SynchronizedString  # one-line error, if any
    events: "Queue[tuple[str, str, str]]"  # children -> supervisor: (kind, role, message)
    ready: Semaphore  # each tracker releases it once warmed up (JIT compiled)
    camera: DeviceSpec
    geometry: Geometry
    video: VideoSpec
    rois: list[tuple[int, int, int, int, int]]  # bead id, x0, x1, y0, y1
    tracking: dict[str, Any]  # TrackingConfig.model_dump(mode="json"), + roi_size
    matrix_rows: dict[str, int] = field(default_factory=dict)
    writer: WriterSpec | None = None  # None: no run file (the calibration sweep)
    recorder: RecorderSpec | None = None  # None: no video kept

    @property
    def video_groups(self) -> tuple[str, ...]:
        """The VideoBuffer's consumer groups: trackers and recorder, or none."""
        return VIDEO_GROUPS if self.recorder is not None else ()

    @property
    def tracker_group(self) -> str | None:
        return TRACKERS if self.recorder is not None else None

    def enter_child(self, title: str) -> None:
        """Set up a child process: title, logging to the supervisor, signals, parent death."""
        from setproctitle import setproctitle

        from magacq.logs import setup_child

        setproctitle(f"magacq {title}")
        setup_child(self.log_queue, self.log_level)
        # Ctrl-C reaches the whole process group: only the supervisor acts on it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:  # die with the supervisor, even when it is SIGKILLed
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # pragma: no cover - not Linux
            logging.getLogger("magacq").debug("no parent-death signal here")

    def attach_video(self) -> VideoBuffer:
        return VideoBuffer(create=False, locks=self.locks, namespace=self.namespace)

    def attach_matrices(self, *names: str) -> dict[str, MatrixBuffer]:
        """Attach the run's MatrixBuffers (all of them by default, those that exist)."""
        return {
            name: MatrixBuffer(create=False, locks=self.locks, name=name, namespace=self.namespace)
            for name in (names or self.matrix_rows)
        }

    def rois_array(self) -> np.ndarray:
        """``(n_beads, 5)`` int64: bead id, x0, x1, y0, y1."""
        return np.asarray(self.rois, dtype=np.int64).reshape(-1, 5)
