"""What every process of a run is handed: buffer names and geometry, locks, events, counters.

A :class:`RunWiring` is built by the supervisor and passed (pickled) to each child; a child calls
:meth:`RunWiring.enter_child` first (process title, logging, signals) and attaches the buffers it
needs.
"""

import ctypes
import logging
import signal
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from magacq.status import STATUS, RunStats

#: MatrixBuffers of a run: name -> columns.
MATRICES = {
    "positions": 8,  # time, frame, bead_id, x_nm, y_nm, z_nm, flag, t_written
    "frames": 3,  # camera frame, timestamp, buffer sequence number
    "dropped": 3,  # camera frame, timestamp, reason
    "truth": 5,  # camera frame, bead_id, x_nm, y_nm, z_nm
}
#: The raw-video MatrixBuffer (``output.raw_video_every``): rows of frame, timestamp, pixels.
RAW_VIDEO = "video"
#: Names given to ``buffers.make_locks``.
LOCK_NAMES = ("VideoBuffer", *MATRICES, RAW_VIDEO, STATUS, "BeadRoiBuffer", "LiveProfileBuffer")

_PR_SET_PDEATHSIG = 1


def control_primitives(ctx: Any, logs: Any, events: Any) -> dict[str, Any]:
    """The process-control fields of a :class:`RunWiring`, made in ``ctx`` (run and sweep alike).

    ``logs`` is the supervisor's :class:`~magacq.logs.RunLogging`; ``events`` the children ->
    supervisor queue.
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
    locks: dict[str, Any]
    stats: RunStats
    log_queue: Any
    log_level: int
    stop: Any  # Event: producer stops acquiring
    workers_stop: Any  # Event: workers exit once no full stack is left
    writer_finish: Any  # Event: writer drains one last time and closes the file
    final_state: Any  # Array('c'): "complete" / "failed" / "interrupted"
    final_error: Any  # Array('c'): one-line error, if any
    events: Any  # Queue: children -> supervisor (geometry, errors)
    ready: Any  # Semaphore: each tracker releases it once warmed up (JIT compiled)
    matrix_rows: dict[str, int] = field(default_factory=dict)
    raw_video_every: int = 0  # every Nth camera frame also goes to the RAW_VIDEO buffer (0: none)
    extra_buffers: list[str] = field(default_factory=list)  # BeadRoiBuffer, LiveProfileBuffer
    camera: dict[str, Any] = field(default_factory=dict)  # driver, settings, detect frames
    geometry: dict[str, Any] = field(default_factory=dict)  # width, height, bits, pixel_size_nm
    video: dict[str, int] = field(default_factory=dict)  # n_stacks, n_images
    rois: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # id, x0, x1, y0, y1
    tracking: dict[str, Any] = field(default_factory=dict)
    writer: dict[str, Any] = field(default_factory=dict)

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

    def attach_video(self) -> Any:
        from buffers import VideoBuffer

        return VideoBuffer(create=False, locks=self.locks, namespace=self.namespace)

    def attach_matrices(self, *names: str) -> dict[str, Any]:
        """Attach the run's MatrixBuffers (all of them by default, those that exist)."""
        from buffers import MatrixBuffer

        return {
            name: MatrixBuffer(create=False, locks=self.locks, name=name, namespace=self.namespace)
            for name in (names or self.matrix_rows)
        }

    def matrix_columns(self, name: str) -> int:
        """Columns of MatrixBuffer ``name`` (raw video: frame, timestamp, then every pixel)."""
        if name == RAW_VIDEO:
            return 2 + int(self.geometry["width"]) * int(self.geometry["height"])
        return MATRICES[name]

    def rois_array(self) -> np.ndarray:
        """``(n_beads, 5)`` int64: bead id, x0, x1, y0, y1."""
        return np.asarray(self.rois, dtype=np.int64).reshape(-1, 5)
