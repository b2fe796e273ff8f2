"""Tracker worker processes: claim whole stacks in parallel, track every bead, write positions.

Each worker blocks in ``claim_stack`` (a semaphore wait, after at most 200 us of yielding looks),
tracks every bead of every frame of its stack straight from the shared-memory view, releases the
stack and appends one row per bead per frame to the ``positions`` MatrixBuffer. No lock is held
around the computation.
"""

import gc
import logging
import time
from typing import Any

import numpy as np

from magacq.pipeline.channels.heartbeat import TRACKER0
from magacq.pipeline.channels.streams import POSITIONS
from magacq.pipeline.wiring import RunWiring
from magacq.runfile import load_zlut
from magacq.tracking import Tracker

logger = logging.getLogger("magacq.worker")

_DRAIN_S = 1.0  # after the stop, finish queued stacks for at most this long


def warm_up(tracker: Tracker, dtype: str, height: int, width: int) -> None:
    """Track one blank ``dtype`` frame: compiles the tracker's kernels, or loads them from the
    disk cache (``magacq.tracking``), as its first stack would."""
    side = int(tracker.rois[0, 2] - tracker.rois[0, 1])
    warm = np.zeros((1, height, width), dtype=np.dtype(dtype))
    warm[0, :side, :side] = 1
    tracker.track(warm, np.zeros(1), np.zeros(1))


def run_worker(wiring: RunWiring, index: int) -> None:
    """Entry point of tracker worker ``index``."""
    from buffers import BeadRoiBuffer, BufferOverflow, LiveProfileBuffer

    slot = TRACKER0 + index
    wiring.enter_child(f"tracker {index}", slot)
    beats = wiring.beats
    stats = wiring.stats
    vb = wiring.attach_video()
    positions = wiring.attach_matrices("positions")["positions"]
    live = LiveProfileBuffer(create=False, locks=wiring.locks, namespace=wiring.namespace)
    roi_buf = BeadRoiBuffer(create=False, locks=wiring.locks, namespace=wiring.namespace)
    delay = wiring.tracking.debug_delay_s
    side = wiring.tracking.roi_size
    try:  # a Z-LUT gone, options the algorithm does not take: one line, no traceback
        tracker = Tracker(
            wiring.rois_array(),
            wiring.geometry.pixel_size_nm,
            wiring.tracking.model_dump(mode="json"),  # magacq.tracking takes plain settings
            load_zlut(wiring.tracking.zlut),
        )
        if len(tracker.rois):  # compile, or load from the disk cache, before the first stack
            wiring.await_kernels(slot)
            geometry = wiring.geometry
            warm_up(tracker, geometry.dtype, geometry.height, geometry.width)
    except Exception as exc:
        message = f"tracker {index} cannot track: {type(exc).__name__}: {exc}"
        logger.error("%s", message, exc_info=logger.isEnabledFor(logging.DEBUG))
        wiring.events.put(("error", "tracker", message))
        raise SystemExit(1) from None
    # the start-up's objects (numba's, the kernels') out of the collector's sight: a full
    # collection over them took 64 ms of CPU (141,000 objects, load 4), a stall of the stacks
    gc.freeze()
    wiring.ready.release()
    roi_version = -1
    stop_seen: float | None = None
    try:
        while True:
            beats.beat(slot)
            if stop_seen is None and wiring.workers_stop.is_set():
                stop_seen = time.monotonic()
            if stop_seen is not None and time.monotonic() - stop_seen > _DRAIN_S:
                break
            claim = vb.claim_stack(timeout=0.0 if stop_seen else 0.25, group=wiring.tracker_group)
            if claim is None:
                if stop_seen is not None:
                    break
                continue
            if roi_buf.version != roi_version:  # beads added/moved
                roi_version, rois = _read_rois(roi_buf, wiring, side)
                tracker.set_rois(rois)
            if live.selected_bead_id is not None:  # a viewer's choice
                tracker.profile_bead = live.selected_bead_id
            frames = None
            try:
                frames = claim.stack.T  # (n_images, height, width), C-contiguous, zero-copy
                ts, seqs = claim.timestamps, claim.frame_numbers
                real = real_frames(ts)  # the last stack of a run may end in filler
                rows = tracker.track(frames[:real], ts[:real], seqs[:real])
                if delay and not wiring.workers_stop.is_set():
                    time.sleep(delay)  # testing aid: a slow tracker holds its stack
            finally:
                del frames
                try:
                    vb.release_stack(claim)
                except ValueError:  # dropped by the supervisor meanwhile
                    pass
            rows[:, POSITIONS.at.t_written] = time.monotonic()
            while True:
                try:
                    positions.write(rows)
                    break
                except BufferOverflow:  # the writer is behind: wait for it, keep the rows
                    beats.beat(slot)
                    if wiring.writer_finish.wait(0.01):
                        break
            stats.add_stacks(index)
            if tracker.last_profile is not None:
                bead, profile = tracker.last_profile
                live.write_profile(float(ts[real - 1]), bead, profile)
    finally:
        beats.starting(slot)  # leaving: closing and exiting may take a while
        positions.close()
        live.close()
        roi_buf.close()
        vb.close()


def real_frames(timestamps: np.ndarray) -> int:
    """How many frames of a stack are camera frames: all but the filler that completes a run's
    last partial stack (NaN timestamps, at its end: ``devices._pad_last_stack``)."""
    return len(timestamps) if np.isfinite(timestamps[-1]) else int(np.isfinite(timestamps).sum())


def _read_rois(roi_buf: Any, wiring: RunWiring, side: int) -> tuple[int, np.ndarray]:
    """``(version, rois)`` of the BeadRoiBuffer; ROIs not of the run's size or outside the frame
    are left out (logged), as the tracker needs whole square ROIs of one size."""
    version, ids, boxes = roi_buf.snapshot()
    rois = np.column_stack([ids, boxes]).astype(np.int64).reshape(-1, 5)
    w, h = wiring.geometry.width, wiring.geometry.height
    ok = (
        (rois[:, 2] - rois[:, 1] == side)
        & (rois[:, 4] - rois[:, 3] == side)
        & (rois[:, 1] >= 0)
        & (rois[:, 3] >= 0)
        & (rois[:, 2] <= w)
        & (rois[:, 4] <= h)
    )
    if not ok.all():
        logger.warning("beads %s: ROI not %d px square inside the frame; not tracked",
                       rois[~ok, 0].tolist(), side)  # fmt: skip
    return version, rois[ok]
