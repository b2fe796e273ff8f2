"""What every process of a run is handed: buffer names and geometry, locks, events, counters.

A :class:`RunWiring` is built by the supervisor and passed (pickled) to each child; a child calls
:meth:`RunWiring.enter_child` first (process title, logging, signals) and attaches the buffers it
needs.
"""

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
from dataclasses import asdict, dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Semaphore
from typing import Any, Literal

import numpy as np

from buffers import MatrixBuffer, VideoBuffer
from magacq.config import (
    CameraConfig,
    FocusStageConfig,
    MagnetsConfig,
    SupervisionConfig,
    TrackingConfig,
    VideoConfig,
    XYLockConfig,
    ZLockConfig,
)
from magacq.logs import RunLogging
from magacq.pipeline.channels.events import EVENT_COLUMNS, EVENTS
from magacq.pipeline.channels.flag import Flag
from magacq.pipeline.channels.heartbeat import Heartbeats
from magacq.pipeline.channels.live_force import FORCE_COLUMNS, FORCES, LiveForceSpec
from magacq.pipeline.channels.lock_channel import LOCK_CHANNEL
from magacq.pipeline.channels.motor_channel import MOTOR_CHANNEL
from magacq.pipeline.channels.status import STATUS, RunStats
from magacq.pipeline.channels.streams import STREAMS
from magacq.pipeline.start_method import watch_parent
from magacq.protocol import Devices, Plan

#: MatrixBuffers of a run: name -> columns.
MATRICES = {
    **{name: stream.width for name, stream in STREAMS.items()},  # channels.streams
    **MOTOR_CHANNEL,  # the magnets' command channel (magacq.pipeline.channels.motor_channel)
    **LOCK_CHANNEL,  # the locks' state and switches (magacq.pipeline.channels.lock_channel)
    EVENTS: EVENT_COLUMNS,  # the protocol's actions (magacq.pipeline.channels.events)
    FORCES: len(FORCE_COLUMNS),  # the live force estimates (magacq.pipeline.channels.live_force)
}
#: Names given to ``buffers.make_locks``.
LOCK_NAMES = ("VideoBuffer", *MATRICES, STATUS, "BeadRoiBuffer", "LiveProfileBuffer")
#: The VideoBuffer's consumer groups when the recorder runs (none without it).
TRACKERS, RECORDER = "trackers", "recorder"
VIDEO_GROUPS = (TRACKERS, RECORDER)


@dataclass(frozen=True)
class Geometry:
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
    exposure_ms: float  # the camera's exposure when the run started; NaN: unknown
    bead_radius_nm: float  # ``beads.radius_nm``, else the simulated camera's; NaN: unknown

    def attrs(self) -> dict[str, Any]:
        """The fields by name (the run and Z-LUT files' attributes)."""
        return asdict(self)


@dataclass(frozen=True)
class MagnetsSpec:
    """The magnets of a run: their config section (driver, settings, start, sampling), and
    where the devices process leaves them at the run's end."""

    config: MagnetsConfig
    park_height_mm: float | None


@dataclass(frozen=True)
class ProtocolSpec:
    """The protocol process's task: the plan and the devices it was checked on."""

    plan: Plan
    devices: Devices
    base: str  # the config's folder: a script's relative path starts there
    timeout_s: float | None  # a script still running after this long is stopped


@dataclass(frozen=True)
class VideoSpec:
    """The VideoBuffer's ring."""

    n_stacks: int
    n_images: int


@dataclass(frozen=True)
class RecorderSpec:
    """The recorder: its video file and the ``output.video`` section."""

    path: str
    video: VideoConfig

    @property
    def mode(self) -> Literal["frames", "rois"]:
        """What the video file holds (a recorder runs only where it holds something)."""
        mode = self.video.mode
        assert mode != "none"
        return mode


@dataclass(frozen=True)
class WriterSpec:
    """The run file: path, root attributes written at creation, the bead ROIs table; what the
    locks change in it."""

    path: str
    attrs: dict[str, Any]
    rois: np.ndarray  # magacq.runfile.ROIS_DTYPE
    references: list[int]  # reference beads: the live drift table
    z_sign: float | None = None  # a Z-lock's run: tracked z in the sample's frame (stage_sign)
    xy_lock: bool = False  # ROIs move: record each in roi_moves
    live_force: LiveForceSpec | None = None  # the live force estimate (``live_force``)


@dataclass(frozen=True)
class SweepSpec:
    """A calibration run's plan (``magacq calibrate``): the producer steps the focus stage
    through ``positions`` and takes ``profiles_per_step`` frames at each; the profilers write
    every bead's radial profile of every frame into the ``dataset`` (ZLUTSweepDataset)."""

    positions: tuple[float, ...]  # stage z of each step, nm
    settle_s: float  # after each move has settled, wait this long before the frames
    profiles_per_step: int
    dataset: str  # the ZLUTSweepDataset's name in the run's namespace
    tags: Any  # RawArray('d', 2 * ring frames): step index and measured stage z of each slot
    counters: Any  # Array('d', 3 * n_beads): rows, invalid, saturated per bead
    saturation: float  # a pixel at or above this is saturated
    move_timeout_s: float = 30.0  # a stage move not settled in this long fails the sweep

    def tag(self, seq: int, ring: int, step: int, z_nm: float) -> None:
        """Record which step (and the stage z) frame ``seq`` of the ring was taken at."""
        k = seq % ring
        self.tags[2 * k], self.tags[2 * k + 1] = step, z_nm

    def tags_of(self, seqs: np.ndarray, ring: int) -> np.ndarray:
        """``(n, 2)``: step index and stage z of frames ``seqs``."""
        tags = np.asarray(self.tags[:], dtype=np.float64).reshape(-1, 2)
        return np.asarray(tags[seqs % ring], dtype=np.float64)


@dataclass(frozen=True)
class LocksSpec:
    """The locks the protocol process runs (``config.LocksConfig``'s), and the stage's sign
    (:func:`magacq.protocol.stage_sign`)."""

    z_lock: ZLockConfig | None
    xy_lock: XYLockConfig | None
    sign: float


def control_primitives(
    ctx: BaseContext, logs: RunLogging, events: "Queue[tuple[str, str, str]]"
) -> dict[str, Any]:
    """The process-control fields of a :class:`RunWiring`, made in ``ctx`` (run and sweep alike).

    ``logs`` is the supervisor's log listener; ``events`` the children -> supervisor queue.
    """
    return {
        "stats": RunStats(ctx),
        "beats": Heartbeats(ctx),
        "log_queue": logs.queue,
        "log_level": logs.level,
        "compiled": Flag(),
        "go": Flag(),
        "stop": Flag(),
        "workers_stop": Flag(),
        "writer_finish": Flag(),
        "protocol_stop": Flag(),
        "final_state": ctx.RawArray("c", 32),  # no lock: a dying writer cannot wedge it
        "final_error": ctx.RawArray("c", 1024),
        "events": events,
        "ready": ctx.Semaphore(0),
    }


@dataclass
class RunWiring:
    """Everything a child process needs to join the run (picklable)."""

    namespace: str
    locks: dict[str, Any]  # buffers.make_locks: name -> multiprocessing lock or condition
    stats: RunStats
    beats: Heartbeats  # each child's heartbeat slot (magacq.pipeline.channels.heartbeat)
    log_queue: "Queue[Any]"  # log records -> the supervisor's listener
    log_level: int
    compiled: Flag  # the compile child is done: the trackers load the kernels from the disk
    go: Flag  # the producer, its camera open, starts it (every tracker and the recorder ready)
    stop: Flag  # producer stops acquiring
    workers_stop: Flag  # workers exit once no full stack is left
    writer_finish: Flag  # writer drains one last time and closes the file
    protocol_stop: Flag  # the protocol ends (the magnets parked) before the devices stop
    final_state: Any  # RawArray('c'): "complete" / "failed" / "interrupted"; empty: no verdict
    final_error: Any  # RawArray('c'): one-line error, if any
    events: "Queue[tuple[str, str, str]]"  # children -> supervisor: (kind, role, message)
    ready: Semaphore  # each tracker releases it once warmed up (JIT compiled)
    camera: CameraConfig
    geometry: Geometry
    video: VideoSpec
    rois: list[tuple[int, int, int, int, int]]  # bead id, x0, x1, y0, y1
    tracking: TrackingConfig
    matrix_rows: dict[str, int] = field(default_factory=dict)
    writer: WriterSpec | None = None  # None: no run file (the calibration sweep)
    focus_stage: FocusStageConfig | None = None  # opened by the devices process, sampled
    focus_timeout_s: float = 10.0  # a focus move not done in this long is acked TIMED_OUT
    magnets: "MagnetsSpec | None" = None  # opened by the devices process, moved on command
    protocol: ProtocolSpec | None = None  # run by the protocol process
    feedback: LocksSpec | None = None  # the locks (Z, XY): run by the protocol process too
    supervisor_pid: int = field(default_factory=os.getpid)
    recorder: RecorderSpec | None = None  # None: no video kept
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    sweep: SweepSpec | None = None  # a calibration: the producer follows this plan

    @property
    def video_groups(self) -> tuple[str, ...]:
        """The VideoBuffer's consumer groups: trackers and recorder, or none."""
        return VIDEO_GROUPS if self.recorder is not None else ()

    @property
    def tracker_group(self) -> str | None:
        return TRACKERS if self.recorder is not None else None

    def enter_child(self, title: str, slot: int | None = None) -> None:
        """Set up a child process: title, logging to the supervisor, signals, parent death;
        its heartbeat ``slot`` (:mod:`magacq.pipeline.channels.heartbeat`) starts in the start-up
        state."""
        from setproctitle import setproctitle

        if slot is not None:
            self.beats.starting(slot)

        from magacq.logs import setup_child

        setproctitle(f"magacq {title}")
        setup_child(self.log_queue, self.log_level)
        # Ctrl-C reaches the whole process group: only the supervisor acts on it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # someone's SIGTERM: this process alone ends (the supervisor reacts to its exit)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        watch_parent(self.stop_all)  # the supervisor's death, however it dies

    def await_kernels(self, slot: int) -> None:
        """In a tracker, started while the compile child works: wait for it to be done, so
        that the kernels load from the disk cache (the start-up heartbeat beats meanwhile)."""
        while not self.compiled.wait(0.1) and not self.workers_stop.is_set():
            self.beats.starting(slot)

    def close(self) -> None:
        """In the supervisor, once the run's processes are gone: close the control flags."""
        for flag in (self.compiled, self.go, self.stop, self.workers_stop, self.writer_finish,
                     self.protocol_stop):  # fmt: skip
            flag.close()

    def orphaned(self) -> bool:
        """The supervisor is gone (its sentinel is ready; in a child of the run)."""
        parent = mp.parent_process()
        return parent is not None and bool(mp.connection.wait([parent.sentinel], 0))

    def stop_all(self) -> None:
        """Start the stop sequence from a child (the supervisor is gone): the producer stops,
        the trackers drain, and the writer (which watches :meth:`orphaned`) closes the file."""
        self.stop.set()
        self.workers_stop.set()
        # nobody reads the queues any more: exit without waiting to flush records into them
        self.log_queue.cancel_join_thread()
        self.events.cancel_join_thread()

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


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
