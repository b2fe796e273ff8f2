"""What a run's shared-memory buffers need, checked against /dev/shm and memory before any is made.

On Linux shared memory lives in /dev/shm, a tmpfs: creating a segment larger than its free space
succeeds (the file is sparse), and the process touching a page beyond it dies of SIGBUS. So the
run computes every buffer's size first and refuses, with the numbers, when they cannot fit (a
container's 64 MB /dev/shm, a frame rate that sizes tables for millions of frames). macOS and
Windows have no such file system: their shared memory is charged to memory only. The memory
counted is what this process may still use: the machine's available memory (``psutil``), or less
under a Linux container's (cgroup v1 or v2) limit, to which shared memory is charged and which
psutil does not see (:mod:`magacq._platform` reads both). A run must leave a safety margin of it
free.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import psutil

from magacq._platform import SHM_DIR, memory_available
from magacq.config import RunConfig
from magacq.errors import ConfigError
from magacq.pipeline.channels.events import EVENT_ROWS, EVENTS
from magacq.pipeline.channels.live_force import FORCES, force_rows
from magacq.pipeline.channels.lock_channel import LOCK_ROWS
from magacq.pipeline.channels.motor_channel import (
    ACK_ROWS,
    ACKS,
    COMMAND_ROWS,
    COMMANDS,
    LIMIT_ROWS,
    LIMITS,
)
from magacq.pipeline.wiring import MATRICES, VideoSpec

#: Each segment's header, journal and page rounding, bytes (an upper bound).
_SEGMENT_OVERHEAD = 3 * 4096
#: Memory of one of the run's processes besides the buffers (Python, numpy, numba), bytes.
PROCESS_BYTES = 250_000_000
#: Memory a run leaves free: this fraction of what is available, and at least MARGIN_BYTES.
MARGIN_FRACTION = 0.1
MARGIN_BYTES = 512 * 2**20
#: A ring sized by ``buffers.ring_s`` takes at most this fraction of the memory available, and
#: has at least MIN_STACKS stacks (the trackers' and the recorder's, and one being written).
RING_MEMORY_FRACTION = 0.25
MIN_STACKS = 4


@dataclass(frozen=True)
class FrameSize:
    """The frame geometry buffers are sized by."""

    width: int
    height: int
    itemsize: int  # bytes per pixel


@dataclass(frozen=True)
class BufferSizes:
    """A run's buffers: MatrixBuffer rows, every segment's bytes, the video ring (None when
    the frame is unknown)."""

    matrix_rows: dict[str, int]
    segment_bytes: dict[str, int]
    video: VideoSpec | None = None

    @property
    def total(self) -> int:
        return sum(self.segment_bytes.values())


def settings_geometry(settings: object) -> FrameSize | None:
    """The frame geometry a camera's settings give (``width``, ``height``, ``bit_depth``), if any.

    Drivers whose frame size is known only from the camera (most real ones) give None.
    """
    width, height = getattr(settings, "width", None), getattr(settings, "height", None)
    if not isinstance(width, int) or not isinstance(height, int):
        return None
    bits = getattr(settings, "bit_depth", 16)
    return FrameSize(width, height, 1 if bits <= 8 else 2 if bits <= 16 else 4)


def frame_rate_guess(cfg: RunConfig) -> float:
    """Frames/s the tables are sized for: the camera's ``frame_rate`` setting, else 1000."""
    return float(cfg.camera.settings.get("frame_rate", 0) or 1000)


def ring_room() -> int:
    """Bytes a video ring may take a share of: the memory available, or /dev/shm's free space
    where it is less (Linux)."""
    room = memory_available()[0]
    if SHM_DIR is not None:
        room = min(room, psutil.disk_usage(str(SHM_DIR)).free)
    return room


def video_ring(cfg: RunConfig, frame_bytes: int, room: int) -> VideoSpec:
    """The video ring of ``cfg``: ``buffers.images_per_stack`` frames a stack, or (null) those
    the camera takes in ``buffers.stack_ms`` at its frame rate, at least one; ``buffers.n_stacks``
    stacks, or (null) those that hold ``buffers.ring_s`` of frames, at least ``MIN_STACKS``.
    What is sized (null) takes at most ``RING_MEMORY_FRACTION`` of ``room`` bytes (the memory,
    or the shared memory's room, available).

    A short stack cuts the latency (the first frame waits for the last one, and the stack's
    tracking takes longer the more frames it has); a deep ring absorbs a stall of the
    consumers (a loaded machine, a disk's writeback) without a dropped frame.
    """
    b, fps = cfg.buffers, frame_rate_guess(cfg)
    budget = int(RING_MEMORY_FRACTION * room) // (frame_bytes + 24)  # frames
    per_stack = b.images_per_stack or max(
        1, min(math.floor(fps * b.stack_ms / 1e3 + 1e-9), budget // MIN_STACKS, 10_000)
    )
    n_stacks = b.n_stacks or max(
        MIN_STACKS, min(math.ceil(fps * b.ring_s / per_stack), budget // per_stack, 100_000)
    )
    return VideoSpec(n_stacks, per_stack)


def buffer_sizes(
    cfg: RunConfig, geometry: FrameSize | None, *, n_beads: int, simulated: bool
) -> BufferSizes:
    """Rows and bytes of every buffer of a run of ``cfg`` (the video ones only with ``geometry``).

    Parameters
    ----------
    cfg : RunConfig
    geometry : FrameSize or None
        The camera's frame; None when unknown (``validate`` without the camera).
    n_beads : int
        Beads tracked.
    simulated : bool
        The camera gives ground truth (a ``truth`` table).
    """
    fps = frame_rate_guess(cfg)
    frame = geometry.width * geometry.height * geometry.itemsize if geometry is not None else 0
    video = video_ring(cfg, frame, ring_room())
    frame_rows = int(min(5e6, max(50_000, 10 * fps)))
    rows = {
        "positions": max(cfg.buffers.positions_rows, 4 * n_beads * video.n_images),
        "frames": frame_rows,
        "dropped": frame_rows,
    }
    if simulated:
        rows["truth"] = max(frame_rows * max(1, n_beads), 100_000)
    if cfg.magnets is not None or cfg.focus_stage is not None:
        hz = cfg.magnets.sample_hz if cfg.magnets is not None else 100.0
        rows["motors"] = int(max(10_000, 20 * hz))  # the writer drains it at 10 Hz
        rows |= {COMMANDS: COMMAND_ROWS, ACKS: ACK_ROWS, LIMITS: LIMIT_ROWS}
        rows[EVENTS] = EVENT_ROWS  # every move is an event, whoever commands it
    if cfg.protocol is not None or cfg.locks.any:
        rows[EVENTS] = EVENT_ROWS
    if cfg.live_force is not None:
        rows[FORCES] = force_rows(n_beads)
    if cfg.locks.any:
        rows |= LOCK_ROWS
    if cfg.output.video.mode != "none":  # the recorder's kept / skipped frames
        rows["recorded"] = frame_rows
    columns = dict(MATRICES)
    sizes: dict[str, int] = {}
    if geometry is not None:
        sizes["VideoBuffer"] = video.n_stacks * video.n_images * (frame + 24) + _SEGMENT_OVERHEAD
    for name, n in rows.items():
        sizes[name] = n * columns[name] * 8 + _SEGMENT_OVERHEAD
    return BufferSizes(rows, sizes, video if geometry is not None else None)


def check_room(sizes: BufferSizes, *, n_processes: int, shm_dir: Path | None = SHM_DIR) -> None:
    """Refuse buffers that do not fit in ``shm_dir``'s free space (None: where shared memory is
    memory only), or that with ``n_processes`` processes of about ``PROCESS_BYTES`` each leave
    less than a safety margin (10 %, at least 512 MiB) of the memory this process may use (the
    machine's, or its cgroup's limit).

    Raises
    ------
    ConfigError
        One line: what the buffers need (the largest named), what there is, what to change.
    """
    need = sizes.total
    free_shm = psutil.disk_usage(str(shm_dir)).free if shm_dir is not None else None
    free_mem, limit = memory_available()
    margin = max(MARGIN_BYTES, int(MARGIN_FRACTION * free_mem))
    where, more = None, "free memory"
    if free_shm is not None and need > free_shm:
        where = f"{shm_dir} has {_mb(free_shm)} free"
        more = f"give {shm_dir} more room (docker run --shm-size)"
    elif need + n_processes * PROCESS_BYTES + margin > free_mem:
        where = (
            f"{limit} leaves {_mb(free_mem)} of memory available, less about "
            f"{_mb(n_processes * PROCESS_BYTES)} for the run's {n_processes} processes and "
            f"{_mb(margin)} kept free"
        )
    if where is None:
        return
    largest = sorted(sizes.segment_bytes.items(), key=lambda kv: -kv[1])[:3]
    parts = ", ".join(f"{name} {_mb(n)}" for name, n in largest)
    raise ConfigError(
        f"the run's buffers need {_mb(need)} of shared memory ({parts}) but {where}: lower "
        "buffers.ring_s (or n_stacks), buffers.images_per_stack, the frame size or the camera's "
        f"frame_rate, or {more}"
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
