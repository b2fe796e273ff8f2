"""The writer process: drains the run's MatrixBuffers into one HDF5 file (schema ``magacq.run`` v1).

The layout of that file is :mod:`magacq.runfile`'s; this module only moves rows into it.
"""

import datetime
import logging
import time
from pathlib import Path

import numpy as np

from buffers import BufferUnderflow, MatrixBuffer, remove_stale_segments
from magacq._platform import trim_heap
from magacq.analysis import reference_drift
from magacq.pipeline.channels.events import EVENTS, event_records
from magacq.pipeline.channels.heartbeat import WRITER
from magacq.pipeline.channels.live_force import FORCES, LiveForce
from magacq.pipeline.channels.motor_channel import MOTOR_CHANNEL
from magacq.pipeline.channels.streams import FRAMES, POSITIONS, RECORDED
from magacq.pipeline.processes.clock import Latency
from magacq.pipeline.processes.frame_map import FrameMap
from magacq.pipeline.wiring import RunWiring
from magacq.runfile import (
    DRIFT_DTYPE,
    DROPPED_DTYPE,
    FRAMES_DTYPE,
    MOTORS_DTYPE,
    ROI_MOVES_DTYPE,
    ROIS_DTYPE,
    TRACKS_DTYPE,
    TRUTH_DTYPE,
    VIDEO_FRAMES_DTYPE,
    RunFile,
    dataset_name,
    is_disk_full,
    to_records,
)

logger = logging.getLogger("magacq.writer")

#: The ``frames`` columns the file keeps: all but the buffer's sequence number.
_FILE_FRAMES = [i for i, c in enumerate(FRAMES.columns) if c != "seq"]

#: Once the supervisor is gone, how long the writer keeps taking the others' last rows, s.
_ORPHAN_DRAIN_S = 0.8
_TRIM_EVERY_S = 30.0  # the C heap's free pages given back (hours-long runs: flat memory)


def run_writer(wiring: RunWiring) -> None:
    """Entry point of the writer process.

    It ends when the supervisor sets ``writer_finish``, or on its own when the supervisor is
    gone (the file then says ``failed``, and the run's segments are unlinked), or the file
    cannot be written (disk full: the reserve is given back so the file can be closed).
    """
    wiring.enter_child("writer", WRITER)
    buffers = wiring.attach_matrices(*(n for n in wiring.matrix_rows if n not in MOTOR_CHANNEL))
    spec = wiring.writer
    assert spec is not None  # the writer process runs where there is a run file to write
    path = Path(spec.path)
    rec = wiring.recorder
    try:
        rf = RunFile(
            path, spec.attrs, np.asarray(spec.rois, ROIS_DTYPE),
            with_truth="truth" in buffers,
            with_motors="motors" in buffers,
            with_events=EVENTS in buffers,
            with_locks=spec.xy_lock,
            video_link=(
                (Path(rec.path).name, dataset_name(rec.mode)) if rec else None
            ),
        )  # fmt: skip
    except (OSError, RuntimeError) as exc:
        _fail(wiring, _file_error(exc, path))
        for buf in buffers.values():
            buf.close()
        raise SystemExit(1) from None
    rf.tables["tracks"].attrs["z_frame"] = "sample" if spec.z_sign else "lut"
    rois = _RoiRecorder(wiring, rf)
    every = rec.video.every if rec else 1
    latency = Latency()
    fmap = FrameMap(spec.z_sign)
    drift = _Drift(rf, spec.references)
    stats = wiring.stats
    live = LiveForce(buffers[FORCES], stats, spec.live_force) if spec.live_force else None
    if live is not None:
        stats.set("force_median_pn", float("nan"))
        live.start()
    failed = None
    orphaned_at: float | None = None
    trim_at = time.monotonic() + _TRIM_EVERY_S
    try:
        while True:
            wiring.beats.beat(WRITER)
            finishing = wiring.writer_finish.wait(0.1)
            if orphaned_at is None and wiring.orphaned():
                orphaned_at = time.monotonic()  # the others stop; take their last rows
                wiring.stop_all()
            elif orphaned_at is not None and time.monotonic() - orphaned_at > _ORPHAN_DRAIN_S:
                finishing = True
            _drain(rf, buffers, latency, fmap, drift, live=live)
            rois.update(fmap.newest + 1)
            p50, p99, pmax = latency.recent()
            stats.set("latency_p50", p50)
            stats.set("latency_p99", p99)
            stats.set("latency_max", pmax)
            rf.maybe_flush()
            if time.monotonic() > trim_at:
                trim_heap()
                trim_at = time.monotonic() + _TRIM_EVERY_S
            if finishing:
                _drain(rf, buffers, latency, fmap, drift, final=True, every=every)
                break
    except BaseException as exc:  # keep what we have: the file is closed below
        failed = _file_error(exc, path)
    finally:
        if live is not None:
            live.stop()
        if failed:
            rf.release_reserve()
            _fail(wiring, failed)
        snap = stats.snapshot()
        verdict = wiring.final_state.value.decode()
        error = failed or wiring.final_error.value.decode()
        if not verdict and not failed:  # nobody said how the run ended: it did not end well
            error = (
                f"the supervisor (pid {wiring.supervisor_pid}) died; the run's processes stopped"
                if orphaned_at is not None
                else "the run ended without a verdict from the supervisor"
            )
        final = {
            "state": "failed" if failed or not verdict else verdict,
            "error": error,
            "frames_stored": int(snap["frames"]),
            "frames_dropped": int(snap["dropped"]),
            "frames_lost_by_camera": int(snap["camera_gaps"]),
            "stacks_tracked": int(snap["stacks_tracked"]),
            "stacks_lost": int(snap["stacks_lost"]),
            "worker_restarts": int(snap["worker_restarts"]),
            "video_frames": int(snap["video_frames"]),
            "video_skipped": int(snap["video_skipped"]),
            "recorder_restarts": int(snap["recorder_restarts"]),
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **_start_attrs(snap["acquiring"], fmap.first_timestamp),
            "camera_clock_offset_s": fmap.clock.offset,  # host = offset + rate * timestamp
            "camera_clock_rate": fmap.clock.rate,
            **latency.summary(),
        }
        wiring.beats.starting(WRITER)  # closing a large file may take a while
        try:
            rf.close(final)
        except (OSError, RuntimeError) as exc:
            failed = failed or _file_error(exc, path)
            _fail(wiring, f"closing the run file failed: {_file_error(exc, path)}")
        for buf in buffers.values():
            buf.close()
        rois.close()
        if orphaned_at is not None:  # nobody else will: the supervisor owned them
            remove_stale_segments(wiring.namespace)
    logger.debug("writer done: %s", rf.path)
    if failed:
        raise SystemExit(1)


def _file_error(exc: BaseException, path: Path) -> str:
    """One line for what stopped the writer (a full disk named as such)."""
    if is_disk_full(exc):
        return (
            f"disk full: no space left on the device of {path.parent}; the file keeps what was "
            "written before"
        )
    if isinstance(exc, OSError):
        return f"cannot write the run file {path}: {exc.strerror or exc}"
    return f"writer failed: {type(exc).__name__}: {' '.join(str(exc).split())}"


def _fail(wiring: RunWiring, message: str) -> None:
    """Tell the supervisor (and the log) why the writer stops."""
    logger.error("%s", message, exc_info=logger.isEnabledFor(logging.DEBUG))
    wiring.events.put(("error", "writer", message))


def _start_attrs(acquiring: float, first_timestamp: float | None) -> dict[str, float | str]:
    """When the camera started: host ``time.monotonic()`` (the clock of ``motors`` and
    ``events``), wall clock, and the camera timestamp of the first frame (time since the start
    of a track row: ``time - first_frame_timestamp``)."""
    if not acquiring:
        return {}
    wall = time.time() - (time.monotonic() - acquiring)
    stamp = datetime.datetime.fromtimestamp(wall).astimezone()
    out: dict[str, float | str] = {
        "acquiring": float(acquiring),
        "acquiring_wallclock": stamp.isoformat(timespec="milliseconds"),
    }
    if first_timestamp is not None:
        out["first_frame_timestamp"] = float(first_timestamp)
    return out


def _drain(
    rf: RunFile,
    buffers: dict[str, MatrixBuffer],
    latency: Latency,
    fmap: FrameMap,
    drift: "_Drift",
    final: bool = False,
    every: int = 1,
    live: LiveForce | None = None,
) -> None:
    for name, dtype in (
        ("frames", FRAMES_DTYPE),
        ("dropped", DROPPED_DTYPE),
        ("truth", TRUTH_DTYPE),
        ("motors", MOTORS_DTYPE),
    ):
        if name in buffers:
            rows = _read(buffers[name])
            if name == "frames":
                fmap.add(rows)
                rows = rows[:, _FILE_FRAMES] if len(rows) else rows  # the file's columns
            rf.append(name, to_records(rows, dtype))
    if "recorded" in buffers:  # the camera frame for each seq
        r = RECORDED.at
        rows = fmap.resolve("recorded", _read(buffers["recorded"]), r.seq, final)
        if len(rows):
            fmap.mark_listed(rows[:, r.seq])
            for name, kind in (("video_frames", 0), ("video_skipped", 1)):
                mine = rows[rows[:, r.skipped] == kind]
                rf.append(name, to_records(mine[:, [r.seq, r.timestamp]], VIDEO_FRAMES_DTYPE))
        if final:
            rf.append("video_skipped", to_records(fmap.unlisted(every), VIDEO_FRAMES_DTYPE))
    p = POSITIONS.at
    rows = fmap.resolve("positions", _read(buffers["positions"]), p.seq, final)
    if len(rows):  # the seq column holds the camera frame now
        first = rows[:, p.bead_id] == rows[:, p.bead_id].min()  # one sample per frame
        latency.add(rows[first, p.t_written] - fmap.arrival.get(rows[first, p.seq]))
        fmap.sample_frame(rows)
        rf.append("tracks", to_records(rows[:, : p.t_written], TRACKS_DTYPE))
        drift.add(rows)
        if live is not None:
            live.add(rows)
    if EVENTS in buffers:
        _drain_events(rf, _read(buffers[EVENTS]), fmap, final)


def _drain_events(rf: RunFile, rows: np.ndarray, fmap: FrameMap, final: bool) -> None:
    """Protocol events into ``events``, each with the first frame taken at or after it (held
    until that frame's row came; -1 at the end for an event after the run's last frame)."""
    if len(fmap.held_events):
        rows = np.concatenate([fmap.held_events, rows]) if len(rows) else fmap.held_events
    if not len(rows):
        return
    frame = fmap.frames_at(rows[:, 0])
    known = (frame >= 0) | final
    fmap.held_events = rows[~known]
    rf.append("events", event_records(rows[known], frame[known]))


class _Drift:
    """The ``drift`` table, live: per frame, the mean motion of the reference beads (x, y, z
    from each one's first tracked position; :func:`magacq.analysis.reference_drift`). Without
    references it stays empty, and its ``references`` attribute says so."""

    def __init__(self, rf: RunFile, references: list[int]) -> None:
        self.rf, self.refs = rf, np.unique(np.asarray(references, dtype=np.int64))
        self.origin = np.full((len(self.refs), 3), np.nan)
        ds = rf.tables["drift"]
        ds.attrs["references"] = self.refs
        ds.attrs["applied"] = bool(len(self.refs))
        ds.attrs["note"] = (
            "tracks minus drift (by frame) are the drift-corrected positions"
            if len(self.refs) else "no reference bead configured (beads.reference): no drift "
            "correction"
        )  # fmt: skip

    def add(self, rows: np.ndarray) -> None:
        """Position rows (frame numbers mapped, z as stored) of some frames."""
        if not len(self.refs) or not len(rows):
            return
        p = POSITIONS.at  # the seq column holds the camera frame by now
        rows = rows[np.isin(rows[:, p.bead_id], self.refs) & (rows[:, p.seq] >= 0)]
        if not len(rows):
            return
        frames, col = np.unique(rows[:, p.seq], return_inverse=True)
        ref = np.searchsorted(self.refs, rows[:, p.bead_id].astype(np.int64))
        out = np.zeros(len(frames), dtype=DRIFT_DTYPE)
        out["frame"] = frames
        for axis, name in enumerate(("dx_nm", "dy_nm", "dz_nm")):
            grid = np.full((len(self.refs), len(frames)), np.nan)
            grid[ref, col] = rows[:, p.x_nm + axis]
            unset = np.isnan(self.origin[:, axis])
            if unset.any():  # each reference's first position is its zero
                first = np.array([g[np.isfinite(g)][0] if np.isfinite(g).any() else np.nan
                                  for g in grid[unset]])  # fmt: skip
                self.origin[unset, axis] = first
            out[name] = reference_drift(grid, self.origin[:, axis])
        self.rf.append("drift", out)


class _RoiRecorder:
    """Appends to ``rois`` the beads added at run time (e.g. by `magacq view`) to BeadRoiBuffer,
    and to ``roi_moves`` (a run with an XY-lock) every ROI moved."""

    def __init__(self, wiring: RunWiring, rf: RunFile) -> None:
        from buffers import BeadRoiBuffer

        self.rf = rf
        self.version = -1
        table = rf.tables["rois"]
        self.boxes = {int(r["bead_id"]): (int(r["x0"]), int(r["x1"]), int(r["y0"]), int(r["y1"]))
                      for r in table[:]}  # fmt: skip
        self.seen = set(self.boxes)
        self.buf = BeadRoiBuffer(create=False, locks=wiring.locks, namespace=wiring.namespace)

    def update(self, frame: int) -> None:
        """Record what changed since the last call; ``frame``: the first one it can affect."""
        if self.buf.version == self.version:
            return
        self.version, ids, boxes = self.buf.snapshot()
        if "roi_moves" in self.rf.tables:
            self._moves(frame, ids, boxes)
        new = [k for k, i in enumerate(ids) if int(i) not in self.seen]
        if new:
            rows = np.zeros(len(new), dtype=ROIS_DTYPE)
            rows["bead_id"] = ids[new]
            for c, name in enumerate(("x0", "x1", "y0", "y1")):
                rows[name] = boxes[new, c]
            self.rf.append("rois", rows)
            self.seen.update(int(i) for i in ids[new])
            logger.info("beads %s added at run time", rows["bead_id"].tolist())

    def _moves(self, frame: int, ids: np.ndarray, boxes: np.ndarray) -> None:
        moved = []
        for i, box in zip(ids.tolist(), boxes.tolist(), strict=True):
            box = tuple(int(v) for v in box)
            if i in self.boxes and self.boxes[i] != box:
                moved.append((frame, i, *box))
            self.boxes[i] = box
        if moved:
            self.rf.append("roi_moves", np.array(moved, dtype=ROI_MOVES_DTYPE))

    def close(self) -> None:
        self.buf.close()


def _read(buf: MatrixBuffer) -> np.ndarray:
    try:
        rows = buf.read()
    except BufferUnderflow:  # nothing new
        return np.empty((0, 1))
    return np.asarray(rows, dtype=np.float64)
