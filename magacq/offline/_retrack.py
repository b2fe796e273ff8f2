"""`magacq retrack`: re-track a run file's recorded video on Dask into a new run file.

Stacks of recorded frames are the unit of work: each Dask task reads its frames (whole, or each
bead's ROI: a ``roi_video``) from the run file and tracks them with the live trackers' own
:class:`~magacq.tracking.Tracker` (so the tracks are those the live trackers give on the same
frames); the client appends each stack's tracks to the new file as it arrives, with a progress
bar. The new file has the run file's schema (without ``video``: its ``video_file`` attribute
names the source) and is written as ``OUT.part``, renamed when complete; an interrupted
re-tracking resumes when run again (:mod:`magacq.offline._resume`).
"""

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from magacq.config import ALGORITHMS
from magacq.errors import ConfigError
from magacq.offline._cluster import dask_client
from magacq.offline._resume import forget, part_path, take_previous
from magacq.runfile import (
    RETRACKED_DTYPE,
    TRACKS_DTYPE,
    RecordedRun,
    RunFile,
    load_zlut,
    open_recorded,
    read_attrs,
    read_frames,
    read_table,
    rois_for_run,
    to_records,
)
from magacq.tracking import Tracker

logger = logging.getLogger("magacq.offline")

#: Default frames per task: the run's stack size, times what makes at least this many frames.
MIN_TASK_FRAMES = 64
#: Tasks in flight per worker thread (the rest wait in the client, not in the scheduler).
IN_FLIGHT_PER_THREAD = 3
#: Root attributes not copied from the source: the new file's own, and the live run's counters
#: of what this re-tracking does not repeat (latency, tracker restarts).
_NOT_COPIED = ("schema", "schema_version", "state", "error", "ended", "namespace",
               "latency_p50_s", "latency_p99_s", "latency_max_s", "stacks_lost",
               "worker_restarts")  # fmt: skip


@dataclass(frozen=True)
class RetrackJob:
    """What every task needs to track its stack (picklable, hashable: a worker keeps one
    Tracker per job)."""

    source: str
    rois: tuple[tuple[int, int, int, int, int], ...]  # bead id, x0, x1, y0, y1
    pixel_size_nm: float
    algorithm: str
    options: str  # JSON
    zlut: str | None
    stack_frames: int
    crops: tuple[int, ...] | None = None  # roi_video: each ROI's index among the recorded crops

    def signature(self) -> str:
        """What makes two re-trackings the same one (a resume must match it)."""
        fields = {k: v for k, v in self.__dict__.items() if k != "rois"}
        return json.dumps(fields | {"rois": [list(r) for r in self.rois]}, sort_keys=True)


_TRACKERS: dict[RetrackJob, Tracker] = {}


def track_stack(job: RetrackJob, start: int, stop: int) -> np.ndarray:
    """Rows (time, frame, bead_id, x_nm, y_nm, z_nm, flag) of recorded frames ``start:stop``.

    Runs on a Dask worker; the Tracker (and its Z-LUT) is made once per worker process.
    """
    tracker = _TRACKERS.get(job)
    if tracker is None:
        tracking = {"algorithm": job.algorithm, "options": json.loads(job.options)}
        tracker = Tracker(np.asarray(job.rois), job.pixel_size_nm, tracking, load_zlut(job.zlut))
        _TRACKERS[job] = tracker
    frames, numbers, stamps = read_frames(job.source, start, stop)
    if job.crops is None:
        return tracker.track(frames, stamps, numbers)[:, :7]
    cut = frames[:, list(job.crops)]  # (n, beads, side, side), beads in the job's ROI order
    return tracker.track_crops(cut.reshape(-1, *cut.shape[2:]), stamps, numbers)[:, :7]


def _job(recorded: RecordedRun, zlut: Path | None, method: str | None, stack: int | None):
    tracking = recorded.config.get("tracking", {})
    method = method or tracking.get("algorithm", "qi")
    if method not in ALGORITHMS:
        raise ConfigError(f"--method {method!r}: one of {', '.join(ALGORITHMS)}")
    zlut_path = zlut if zlut is not None else tracking.get("zlut")
    rois = [
        (int(r["bead_id"]), int(r["x0"]), int(r["x1"]), int(r["y0"]), int(r["y1"]))
        for r in recorded.rois
    ]
    if not rois:
        raise ConfigError(f"{recorded.path}: the run has no bead ROIs to track")
    if zlut_path is not None:
        side = rois[0][2] - rois[0][1]
        rois = rois_for_run(zlut_path, rois, side, explicit=True)
        zlut_path = str(Path(zlut_path).resolve())
    crops = _crop_index(recorded, rois) if recorded.mode == "rois" else None
    if stack is None:
        per_stack = int(recorded.config.get("buffers", {}).get("images_per_stack") or 10)
        stack = per_stack * -(-MIN_TASK_FRAMES // per_stack)
    if "pixel_size_nm" not in recorded.attrs:
        raise ConfigError(f"{recorded.path}: no pixel_size_nm attribute")
    return RetrackJob(
        source=str(recorded.path.resolve()),
        rois=tuple(rois),
        pixel_size_nm=float(recorded.attrs["pixel_size_nm"]),
        algorithm=method,
        options=json.dumps(tracking.get("options") or {}, sort_keys=True),
        zlut=zlut_path,
        stack_frames=int(stack),
        crops=crops,
    )


def _crop_index(recorded: RecordedRun, rois: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """Where each ROI to track is among the ``roi_video``'s crops (the run's ``rois``, in
    order); a ConfigError for an ROI that was not recorded as it is."""
    boxes = {tuple(int(r[k]) for k in ("x0", "x1", "y0", "y1")): i
             for i, r in enumerate(recorded.rois[: recorded.shape[0]])}  # fmt: skip
    index = []
    for roi in rois:
        if tuple(roi[1:]) not in boxes:
            raise ConfigError(
                f"{recorded.path}: bead {roi[0]}'s ROI {list(roi[1:])} is not one of the "
                "recorded ROI crops: re-track the beads as recorded"
            )
        index.append(boxes[tuple(roi[1:])])
    return tuple(index)


def _attrs(recorded: RecordedRun, job: RetrackJob) -> dict[str, Any]:
    """Root attributes of the new file: the source's, its config re-tracked, and where from."""
    attrs = {k: v for k, v in recorded.attrs.items()
             if k not in _NOT_COPIED and not k.startswith("version_")}  # fmt: skip
    config = dict(recorded.config)
    config["tracking"] = {**config.get("tracking", {}), "algorithm": job.algorithm,
                          "zlut": job.zlut}  # fmt: skip
    return attrs | {
        "config": json.dumps(config),
        "video_file": job.source,
        "retrack_signature": job.signature(),
        "retracked": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _new_file(path: Path, recorded: RecordedRun, job: RetrackJob) -> RunFile:
    rf = RunFile(path, _attrs(recorded, job), recorded.rois,
                 with_truth="truth" in recorded.tables, retrack=True)  # fmt: skip
    for name in ("frames", "dropped", "truth"):
        if name in recorded.tables:
            rf.append(name, read_table(recorded.path, name))
    return rf


def _results(client: Any, job: RetrackJob, todo: list[tuple[int, int]]) -> Iterator[Any]:
    """``(start, stop, rows)`` of each stack as it completes, a few tasks per thread in flight."""
    from distributed import as_completed

    pending = iter(todo)
    in_flight = IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values()))
    futures = as_completed()
    bounds = {}
    for start, stop in pending:
        fut = client.submit(track_stack, job, start, stop, pure=False)
        bounds[fut.key] = (start, stop)
        futures.add(fut)
        if len(bounds) >= in_flight:
            break
    for fut in futures:
        start, stop = bounds.pop(fut.key)
        rows = fut.result()  # a task's error (e.g. a damaged chunk) is raised here
        nxt = next(pending, None)
        if nxt is not None:
            new = client.submit(track_stack, job, *nxt, pure=False)
            bounds[new.key] = nxt
            futures.add(new)
        yield start, stop, rows


def retrack(
    run: Path,
    *,
    zlut: Path | None = None,
    method: str | None = None,
    out: Path | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    stack_frames: int | None = None,
    progress: Any = None,
) -> Path:
    """Re-track the recorded video of ``run`` into a new run file; return its path.

    Parameters
    ----------
    run : Path
        A run file with recorded video (``video``, ``video_frames``).
    zlut : Path, optional
        Z-LUT file; default the run's own (``tracking.zlut`` of its config), else z is NaN.
    method : str, optional
        Tracking algorithm; default the run's.
    out : Path, optional
        The new file; default ``RUN_retrack.h5`` beside the run.
    scheduler : str, optional
        Address of a running Dask scheduler; default a LocalCluster of ``workers`` processes.
    stack_frames : int, optional
        Frames per task; default the run's stack size, a multiple of it of >= 64 frames.
    progress : rich.progress.Progress, optional
        Shows the stacks done.

    Raises
    ------
    ConfigError
        A bad, truncated or damaged run file, Z-LUT or argument; an existing ``out``.
    RunError
        The cluster failed.
    KeyboardInterrupt
        Interrupted: what is done is kept in ``OUT.part``; the same command resumes it.
    """
    recorded = open_recorded(run)
    job = _job(recorded, zlut, method, stack_frames)
    out = Path(out) if out is not None else run.with_name(f"{run.stem}_retrack.h5")
    if out.resolve() == run.resolve():
        raise ConfigError(f"--out {out}: that is the run file itself")
    if out.exists():
        if read_attrs(out).get("retrack_signature") == job.signature():
            logger.info("%s: already re-tracked, complete", out)
            return out
        raise ConfigError(f"--out {out}: exists; remove it or give another name")
    n, k = recorded.n_frames, job.stack_frames
    stacks = [(s, min(s + k, n)) for s in range(0, n, k)]
    previous, old = take_previous(out, job.signature())
    part = part_path(out)
    rf = _new_file(part, recorded, job)
    state, tracked = "interrupted", 0
    try:
        if previous is not None:
            rf.append("tracks", previous.tracks)
            rf.append("retracked", previous.retracked)
            rf.maybe_flush(force=True)
            logger.info("resuming: %d of %d stacks were done", len(previous.stacks), len(stacks))
        forget(old)
        done = previous.stacks if previous is not None else set()
        todo = [s for s in stacks if s not in done]
        n_rows = len(previous.tracks) if previous is not None else 0
        task = progress.add_task("re-tracking", total=n, completed=n - sum(b - a for a, b in todo)
                                 ) if progress is not None else None  # fmt: skip
        with dask_client(scheduler, workers) as client:
            for start, stop, rows in _results(client, job, todo):
                rf.append("tracks", to_records(rows, TRACKS_DTYPE))
                n_rows += len(rows)
                rf.append("retracked", np.array([(start, stop, n_rows)], RETRACKED_DTYPE))
                rf.maybe_flush()
                tracked += stop - start
                if progress is not None:
                    progress.advance(task, stop - start)
        state = "complete"
    finally:
        rf.close(
            {
                "state": state,
                "stacks_tracked": len(stacks),
                "frames_tracked": n,
                "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }  # fmt: skip
            if state == "complete"
            else {"state": state}
        )
    part.replace(out)
    logger.info("re-tracked %d frames (%d this time) into %s", n, tracked, out)
    return out
