"""Run counters shared by every process, and the live status shown in the terminal.

:class:`RunStats` is a small block of process-shared numbers (a ``RawArray``, passed to children at
start). Each number has exactly one writer (the producer its frame counts, each worker its own
slot, the writer the latencies), so no lock is needed.
"""

import time
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_FIELDS = (
    "frames",  # frames delivered by the camera and stored
    "dropped",  # frames dropped because the buffer was full
    "camera_gaps",  # frames the camera itself lost (frame-number gaps)
    "last_timestamp",  # camera timestamp of the newest stored frame
    "rows",  # track rows the writer saved
    "latency_p50",  # seconds, from frame timestamp to positions in the MatrixBuffer
    "latency_p99",
    "latency_max",
    "stacks_lost",  # stacks a killed worker held (requeued or dropped), supervisor-counted
    "worker_restarts",
    "buffer_level",  # fraction of the video buffer holding unread frames (producer)
    "acquiring",  # 1 once the producer has started the camera
    "video_frames",  # raw frames handed to the writer (output.raw_video_every)
    "video_skipped",  # raw frames skipped because the writer was behind
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
        return self._values[_FIELDS.index(field)]

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

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()
        self._last = (self._t0, 0.0)
        self._fps = 0.0
        self._progress = Progress(
            TextColumn("[bold]acquiring"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
        )
        self._task = self._progress.add_task("run", total=self.duration or None)

    def fps(self) -> float:
        """Frames per second since the previous call (smoothed)."""
        now, frames = time.monotonic(), self.stats.get("frames")
        t, f = self._last
        if now - t >= 0.2:
            rate = (frames - f) / (now - t)
            self._fps = rate if self._fps == 0 else 0.5 * self._fps + 0.5 * rate
            self._last = (now, frames)
        return self._fps

    def __rich__(self) -> RenderableType:
        s = self.stats.snapshot()
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column(justify="right")
        table.add_row("frames", f"{int(s['frames']):,}", "fps", f"{self.fps():,.0f}")
        table.add_row(
            "buffer", f"{100 * s['buffer_level']:.0f}%", "dropped", f"{int(s['dropped']):,}"
        )
        table.add_row("stacks tracked", f"{int(s['stacks_tracked']):,}", "beads", str(self.n_beads))
        table.add_row(
            "latency p50/p99",
            f"{1e3 * s['latency_p50']:.1f}/{1e3 * s['latency_p99']:.1f} ms",
            "workers",
            f"{self.n_workers} ({int(s['worker_restarts'])} restarts)",
        )
        if self.duration:
            self._progress.update(self._task, completed=min(self.duration, self.elapsed()))
            return Group(table, self._progress)
        return table

    def restart_clock(self) -> None:
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def line(self) -> str:
        """The status as one log line (for non-terminal output)."""
        s = self.stats.snapshot()
        return (
            f"frames {int(s['frames'])} ({self.fps():.0f} fps), buffer "
            f"{100 * s['buffer_level']:.0f}%, dropped {int(s['dropped'])}, stacks tracked "
            f"{int(s['stacks_tracked'])}, latency p99 {1e3 * s['latency_p99']:.1f} ms"
        )
