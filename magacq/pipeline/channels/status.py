"""Run counters shared by every process, the live status in the terminal, and the published one.

:class:`RunStats` is a small block of process-shared numbers (a ``RawArray``, passed to children at
start). Each number has exactly one writer (the producer its frame counts, each worker its own
slot, the writer the latencies), so no lock is needed.

The supervisor also publishes the status for programs started separately (``magacq view``): a
MatrixBuffer named ``STATUS`` (``"status"``) in the run's namespace, ``STATUS_ROWS`` rows of the
float64 columns ``STATUS_COLUMNS``, created with ``overwrite=True``: a row is appended about four
times a second, and the newest row (``read_status``) is the current status. Columns:

==================  =============================================================
t                   supervisor's ``time.monotonic()`` when the row was written, s
state               0 starting (trackers warming up), 1 acquiring, 2 stopping
elapsed             seconds since the camera started
frames              frames stored in the video buffer
fps                 frame rate over the last moments, frames/s
buffer_level        fraction of the video buffer holding unread frames (0..1)
dropped             frames dropped because the video buffer was full (the terminal,
                    the log and the viewer show it plus camera_gaps)
camera_gaps         frames the camera itself lost (frame-number gaps)
stacks_tracked      stacks tracked by all workers
stacks_lost         stacks a killed worker held
worker_restarts     trackers restarted after dying
latency_p50, _p99   frame timestamp to positions in the MatrixBuffer (recent), s
latency_max
n_beads             beads tracked (at the start of the run)
n_workers           tracker processes
video_frames        frames the recorder wrote (``output.video``)
video_skipped       frames it left out (its backlog, or after it died)
recorder_lag        stacks waiting for the recorder
force_median_pn     the live force (``live_force``): median over the tethered beads, pN
force_beads         beads in that median (0: no estimate yet)
==================  =============================================================

A reader without the run's locks (another program) gets a consistent row: MatrixBuffer's peaks
are sequence-checked copies. The segment is unlinked with the run's other buffers.
"""

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # rich is the supervisor's: the children that beat the stats never import it
    from rich.console import RenderableType

_FIELDS = (
    "frames",  # frames delivered by the camera and stored
    "dropped",  # frames dropped because the buffer was full
    "camera_gaps",  # frames the camera itself lost (frame-number gaps)
    "last_timestamp",  # camera timestamp of the newest stored frame
    "latency_p50",  # seconds, from frame timestamp to positions in the MatrixBuffer
    "latency_p99",
    "latency_max",
    "stacks_lost",  # stacks a killed worker held (requeued or dropped), supervisor-counted
    "worker_restarts",
    "buffer_level",  # fraction of the video buffer holding unread frames (producer)
    "acquiring",  # time.monotonic() when the producer started the camera; 0 before
    "camera_resting",  # 1 while the producer keeps its camera idle by plan (not silence)
    "video_frames",  # frames the recorder wrote to the video file
    "video_skipped",  # frames the recorder left out (back-pressure, or after it died)
    "recorder_lag",  # stacks waiting for the recorder (claimed or unread by its group)
    "recorder_restarts",
    "protocol_t0",  # time.monotonic() when the protocol started; 0 before
    "protocol_actions",  # actions in the protocol's plan (0 for a script)
    "protocol_seconds",  # the plan's expected duration
    "protocol_action",  # 1-based index of the action under way; 0 before the first
    "protocol_started",  # time.monotonic() when that action started
    "protocol_ended",  # time.monotonic() when the protocol process finished its program
    "zlock_state",  # 0 no Z-lock, 1 on, 2 switched off by a user, -1 off by a focus fault
    "zlock_error_nm",  # the reference bead's z minus its target at the last update
    "zlock_last_nm",  # the last focus correction, nm
    "xylock_moves",  # ROIs re-centred by the XY-lock
    "force_median_pn",  # the live force's median over the tethered beads (NaN: none yet)
    "force_beads",  # the beads in that median
    "sweep_home_nm",  # a calibration: the focus stage's start (the sweep's home); NaN before
    "sweep_steps",  # a calibration: sweep positions done
    "sweep_z_nm",  # a calibration: the stage's measured z at the last position done
    "sweep_sequence",  # a calibration: 1 when the stage ran hardware sequences
)
MAX_WORKERS = 64


class RunStats:
    """Process-shared counters of one run.

    Parameters
    ----------
    ctx : multiprocessing context
        The context the children are started with.
    """

    def __init__(self, ctx: Any) -> None:
        self._values = ctx.RawArray("d", len(_FIELDS) + MAX_WORKERS)

    def __getstate__(self) -> dict[str, Any]:
        return {"_values": self._values}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._values = state["_values"]

    def get(self, field: str) -> float:
        value: float = self._values[_FIELDS.index(field)]
        return value

    def set(self, field: str, value: float) -> None:
        self._values[_FIELDS.index(field)] = value

    def add(self, field: str, value: float = 1) -> None:
        """Increment ``field``; only its single writer may call this."""
        i = _FIELDS.index(field)
        self._values[i] += value

    def add_stacks(self, worker: int, n: int = 1) -> None:
        """Count ``n`` stacks tracked by worker ``worker``."""
        self._values[len(_FIELDS) + worker] += n

    def stacks_tracked(self) -> int:
        return int(sum(self._values[len(_FIELDS) :]))

    def snapshot(self) -> dict[str, float]:
        values = dict(zip(_FIELDS, self._values[: len(_FIELDS)], strict=True))
        values["stacks_tracked"] = self.stacks_tracked()
        return values


@dataclass
class StatusView:
    """Renders :class:`RunStats` as a table and a progress bar for ``rich.live.Live``."""

    stats: RunStats
    n_beads: int
    n_workers: int
    duration: float | None
    steps: tuple[str, ...] = ()  # the protocol's actions, described (magacq.protocol.Action)
    recording: bool = False
    sweep: int = 0  # a calibration: the sweep's positions (the progress bar counts them)

    def __post_init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._t0 = time.monotonic()
        self._last = (self._t0, 0.0)
        self._fps = 0.0
        self._progress = Progress(
            TextColumn("[bold]Z sweep" if self.sweep else "[bold]acquiring"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}" if self.sweep
                       else "{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
        )  # fmt: skip
        total = self.sweep or self.duration or None
        self._task = self._progress.add_task("run", total=total)

    def fps(self) -> float:
        """Frames per second since the previous call (smoothed)."""
        now, frames = time.monotonic(), self.stats.get("frames")
        t, f = self._last
        if now - t >= 0.2:
            rate = (frames - f) / (now - t)
            self._fps = rate if self._fps == 0 else 0.5 * self._fps + 0.5 * rate
            self._last = (now, frames)
        return self._fps

    def __rich__(self) -> "RenderableType":
        from rich.console import Group
        from rich.table import Table

        s = self.stats.snapshot()
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column(justify="right")
        table.add_row("frames", f"{int(s['frames']):,}", "fps", f"{self.fps():,.0f}")
        if self.sweep:  # a calibration: nothing is dropped, nor tracked into a file
            table.add_row("stage", f"{s['sweep_z_nm']:.0f} nm", "stacks profiled",
                          f"{int(s['stacks_tracked']):,}")  # fmt: skip
            self._progress.update(self._task, completed=s["sweep_steps"])
            return Group(table, self._progress)
        lost = dropped_frames(s["dropped"], s["camera_gaps"])
        table.add_row("buffer", f"{100 * s['buffer_level']:.0f}%", "dropped", lost)
        table.add_row("stacks tracked", f"{int(s['stacks_tracked']):,}", "beads", str(self.n_beads))
        table.add_row(
            "latency p50/p99",
            f"{1e3 * s['latency_p50']:.1f}/{1e3 * s['latency_p99']:.1f} ms",
            "workers",
            f"{self.n_workers} ({int(s['worker_restarts'])} restarts)",
        )
        if self.recording:
            table.add_row(
                "video",
                f"{int(s['video_frames']):,}",
                "skipped",
                f"{int(s['video_skipped']):,} (lag {int(s['recorder_lag'])} stacks)",
            )
        if s["protocol_t0"]:
            table.add_row("protocol", self.protocol_step(), "left", _clock(self.protocol_left()))
        if s["zlock_state"] or s["xylock_moves"]:
            table.add_row("z-lock", self.zlock(), "ROI moves", str(int(s["xylock_moves"])))
        if s["force_beads"]:
            table.add_row("force (median)", self.force(), "", "")
        if self.duration:
            self._progress.update(self._task, completed=min(self.duration, self.elapsed()))
            return Group(table, self._progress)
        return table

    def restart_clock(self) -> None:
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def zlock(self) -> str:
        """The Z-lock's state: ``on, error 1.2 nm, last step -8.0 nm``, or why it is off."""
        state = self.stats.get("zlock_state")
        if state < 0:
            return "OFF (focus fault, see the log)"
        if state != 1:
            return "off"
        return (f"on, error {self.stats.get('zlock_error_nm'):.1f} nm, last step "
                f"{self.stats.get('zlock_last_nm'):.1f} nm")  # fmt: skip

    def force(self) -> str:
        """The live force's median: ``1.02 pN (11 beads)``."""
        median, n = self.stats.get("force_median_pn"), int(self.stats.get("force_beads"))
        return f"{median:.3g} pN ({n} beads)"

    def protocol_step(self) -> str:
        """The protocol's action under way and how long it has run: ``3/30 hold 30 s, 12 s``."""
        i, n = int(self.stats.get("protocol_action")), int(self.stats.get("protocol_actions"))
        if i == 0:
            return "starting"
        what = self.steps[i - 1] if i <= len(self.steps) else ""
        where = f"{i}/{n} {what}" if n else f"{i} {what}"
        return f"{where}, {self.protocol_step_s():.0f} s"

    def protocol_step_s(self) -> float:
        """Seconds the protocol's action under way has run (NaN before the first)."""
        started = self.stats.get("protocol_started")
        return time.monotonic() - started if started else math.nan

    def protocol_left(self) -> float:
        """Seconds the protocol's plan has left (NaN for a script)."""
        t0, total = self.stats.get("protocol_t0"), self.stats.get("protocol_seconds")
        if not t0 or not self.stats.get("protocol_actions"):
            return math.nan
        return max(0.0, total - (time.monotonic() - t0))

    def line(self) -> str:
        """The status as one log line (for non-terminal output)."""
        s = self.stats.snapshot()
        if self.sweep:
            return (f"sweep {int(s['sweep_steps'])}/{self.sweep} (stage {s['sweep_z_nm']:.0f} nm), "
                    f"frames {int(s['frames'])} ({self.fps():.0f} fps), stacks profiled "
                    f"{int(s['stacks_tracked'])}")  # fmt: skip
        protocol = (
            f", protocol {self.protocol_step()} ({_clock(self.protocol_left())} left)"
            if s["protocol_t0"]
            else ""
        )
        if s["zlock_state"]:
            protocol += f", z-lock {self.zlock()}"
        if s["force_beads"]:
            protocol += f", force {self.force()}"
        lost = dropped_frames(s["dropped"], s["camera_gaps"])
        return (
            f"frames {int(s['frames'])} ({self.fps():.0f} fps), buffer "
            f"{100 * s['buffer_level']:.0f}%, dropped {lost}, stacks tracked "
            f"{int(s['stacks_tracked'])}, latency p99 {1e3 * s['latency_p99']:.1f} ms{protocol}"
        ) + (
            f", video {int(s['video_frames'])} ({int(s['video_skipped'])} skipped, recorder "
            f"lag {int(s['recorder_lag'])} stacks)"
            if self.recording
            else ""
        )


def dropped_frames(buffer_full: float, camera_gaps: float) -> str:
    """The frames a run lost, as its file's ``dropped`` table counts them (the buffer full and
    the camera's own gaps): ``12``, or ``12 (5 by the camera)``."""
    ring, camera = int(buffer_full), int(camera_gaps)
    return f"{ring + camera:,}" + (f" ({camera:,} by the camera)" if camera else "")


def _clock(seconds: float) -> str:
    """``1:02:03``, ``2:03`` or ``-`` (unknown)."""
    if not math.isfinite(seconds):
        return "-"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


#: Name of the published-status MatrixBuffer in the run's namespace.
STATUS = "status"
#: Its columns (float64), in order.
STATUS_COLUMNS = (
    "t",
    "state",
    "elapsed",
    "frames",
    "fps",
    "buffer_level",
    "dropped",
    "camera_gaps",
    "stacks_tracked",
    "stacks_lost",
    "worker_restarts",
    "latency_p50",
    "latency_p99",
    "latency_max",
    "n_beads",
    "n_workers",
    "video_frames",
    "video_skipped",
    "recorder_lag",
    "protocol_action",
    "protocol_actions",
    "protocol_left",
    "protocol_step_s",
    "force_median_pn",
    "force_beads",
)
STATUS_ROWS = 16
STARTING, ACQUIRING, STOPPING = 0, 1, 2


class StatusPublisher:
    """The supervisor's side: append the current status row to the ``status`` MatrixBuffer.

    Parameters
    ----------
    buf : buffers.MatrixBuffer
        Created with ``shape=(STATUS_ROWS, len(STATUS_COLUMNS))`` and ``overwrite=True``.
    view : StatusView
        Where the frame rate and the elapsed time come from.
    """

    def __init__(self, buf: Any, view: "StatusView") -> None:
        self.buf = buf
        self.view = view
        self.state = STARTING

    def publish(self) -> None:
        s = self.view.stats.snapshot()
        values = {
            **s,
            "t": time.monotonic(),
            "state": self.state,
            "elapsed": self.view.elapsed() if self.state != STARTING else 0.0,
            "fps": self.view.fps(),
            "n_beads": self.view.n_beads,
            "n_workers": self.view.n_workers,
            "protocol_left": self.view.protocol_left(),
            "protocol_step_s": self.view.protocol_step_s(),
        }
        self.buf.write(np.array([[values[c] for c in STATUS_COLUMNS]], dtype=np.float64))


def read_status(namespace: str) -> dict[str, float] | None:
    """The newest published status of the run in ``namespace`` (None: no such run, or no row yet).

    For programs outside the run: attaches with a private lock and reads a consistent copy.
    """
    import threading

    from buffers import MatrixBuffer, SegmentError

    try:
        buf = MatrixBuffer(
            create=False, locks={STATUS: threading.Lock()}, name=STATUS, namespace=namespace
        )
    except (FileNotFoundError, SegmentError):
        return None
    try:
        rows = buf.peak_sorted()
    finally:
        buf.close()
    rows = rows[~np.isnan(rows[:, 0])]
    if not len(rows):
        return None
    return dict(zip(STATUS_COLUMNS, (float(v) for v in rows[-1]), strict=True))
