"""The devices process: camera frames straight into VideoBuffer slots, nothing lost silently;
the magnets and the focus stage run beside it in a motion thread
(:mod:`magacq.pipeline.processes.motion`).

Each frame is read by the driver directly into the next free slot (``begin_write`` /
``commit_write``: no extra copy). When the ring is full (unread or claimed stacks fill it) the
frame is read into a scratch array instead; if a slot has come free meanwhile it is copied in,
else it is dropped and recorded in the ``dropped`` table with its frame number. A claimed stack is
never overwritten: the buffer refuses the slot.
"""

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hal import GroundTruthSource, HalTimeoutError
from magacq.pipeline.channels.events import EVENTS, EventWriter
from magacq.pipeline.channels.heartbeat import PRODUCER
from magacq.pipeline.channels.motor_channel import (
    ACKS,
    COMMANDS,
    LIMITS,
    MOTOR_CHANNEL,
    CommandInbox,
)
from magacq.pipeline.channels.rows import BatchedRows
from magacq.pipeline.hardware import open_accessory, open_camera
from magacq.pipeline.processes.motion import MotionThread
from magacq.pipeline.processes.sweep import StageFault, follow_sweep
from magacq.pipeline.wiring import RunWiring

logger = logging.getLogger("magacq.producer")

REASON_BUFFER_FULL = 0
REASON_CAMERA = 1
_ROWS_FLUSH = 256
_FINISH_STACK_S = 0.4  # after the stop, keep acquiring this long at most to fill the last stack
# The filler frames of a last partial stack wait this long at most for free slots; once the run
# is stopping, the stop's grace for the producer (0.6 s, of which the camera may use 0.4) applies
_PAD_WAIT_S, _PAD_WAIT_STOPPING_S = 1.0, 0.1


#: Ground-truth columns after frame and bead id, and the GroundTruth field giving each.
TRUTH_FIELDS = ("x_nm", "y_nm", "z_nm", "force_pn", "extension_nm", "magnet_height_mm",
                "magnet_rotation_turns")  # fmt: skip


def camera_truth(cam: Any, frame_number: int) -> np.ndarray | None:
    """Ground truth ``(n_beads, 7)`` (:data:`TRUTH_FIELDS`) of a simulated camera's frame,
    else None; a field the record lacks is NaN."""
    if not isinstance(cam, GroundTruthSource):
        return None
    try:
        truth = cam.ground_truth(frame_number)
    except KeyError:  # the simulator no longer holds this frame's record
        return None
    if truth is None:
        return None
    if hasattr(truth, "x_nm"):  # a record of arrays
        n = len(truth.x_nm)
        return np.column_stack(
            [np.broadcast_to(getattr(truth, f, np.nan), n) for f in TRUTH_FIELDS]
        )
    xyz = np.asarray(truth, dtype=np.float64).reshape(-1, 3)
    return np.column_stack([xyz, np.full((len(xyz), 4), np.nan)])


def roi_of(xy_nm: np.ndarray, rois: np.ndarray, pixel_nm: float) -> np.ndarray:
    """For each position ``(x_nm, y_nm)``, the id of the ROI (``id, x0, x1, y0, y1`` rows) that
    holds it, -1 for none; an ROI holding several goes to the one nearest its centre."""
    px = np.asarray(xy_nm, dtype=np.float64) / pixel_nm
    out = np.full(len(px), -1, dtype=np.int64)
    if not len(rois):
        return out
    cx, cy = (rois[:, 1] + rois[:, 2]) / 2, (rois[:, 3] + rois[:, 4]) / 2
    inside = (
        (px[:, :1] >= rois[:, 1]) & (px[:, :1] < rois[:, 2])
        & (px[:, 1:] >= rois[:, 3]) & (px[:, 1:] < rois[:, 4])
    )  # fmt: skip
    dist = np.where(inside, np.hypot(px[:, :1] - cx, px[:, 1:] - cy), np.inf)
    nearest_roi = np.argmin(dist, axis=1)
    nearest_bead = np.argmin(dist, axis=0)
    for bead in np.flatnonzero(inside.any(axis=1)):
        if nearest_bead[nearest_roi[bead]] == bead:
            out[bead] = rois[nearest_roi[bead], 0]
    return out


def run_producer(wiring: RunWiring) -> None:
    """Entry point of the producer process: the camera streams into the ring, or, in a
    calibration, the producer follows the sweep plan (:mod:`magacq.pipeline.processes.sweep`)."""
    wiring.enter_child("producer", PRODUCER)
    vb = wiring.attach_video()
    cam = None
    devices: list[Any] = []  # opened beside the camera, closed before it
    try:
        cam = open_camera(wiring.camera)
        if wiring.sweep is not None:
            if _await_go(wiring):
                follow_sweep(wiring, cam, vb, devices)
        else:
            _stream(wiring, cam, vb, devices)
    except BaseException as exc:
        named = isinstance(exc, MotionFault | StageFault)  # the message names the device
        msg = str(exc) if named else f"camera failed: {exc}"
        wiring.events.put(("error", "producer", msg))
        logger.error("%s", msg, exc_info=logger.isEnabledFor(logging.DEBUG))
        raise SystemExit(3) from None
    finally:
        wiring.beats.starting(PRODUCER)  # leaving: closing and exiting may take a while
        for device in reversed(devices):
            try:
                device.close()
            except Exception as exc:  # closing after a failure: report, don't mask
                logger.warning("closing %s failed: %s", type(device).__name__, exc)
        if cam is not None:
            try:
                cam.close()
            except Exception as exc:  # closing a failed camera: report, don't mask
                logger.warning("closing the camera failed: %s", exc)
        vb.close()
        time.sleep(0)  # let the log queue's feeder run


def _await_go(wiring: RunWiring) -> bool:
    """Wait, the camera open and the magnets at their start, until the supervisor says go
    (every tracker and the recorder ready: opening the devices overlaps their start-up);
    False: the run stopped first."""
    while not wiring.go.wait(0.1):
        wiring.beats.starting(PRODUCER)
        if wiring.stop.is_set():
            return False
    return True


def _stream(wiring: RunWiring, cam: Any, vb: Any, devices: list[Any]) -> None:
    """Stream the camera's frames into the ring, with the magnets and focus stage of the run
    in the motion thread, until the stop (or a finite camera's end); park the magnets."""
    from buffers import BufferOverflow
    from hal import AcquisitionEnded, DeviceError

    beats = wiring.beats
    max_errors = wiring.supervision.camera_errors
    stats = wiring.stats
    n_images = wiring.video.n_images
    mats = wiring.attach_matrices(
        *(n for n in ("frames", "dropped", "truth", "motors", EVENTS, *MOTOR_CHANNEL)
          if n in wiring.matrix_rows)
    )  # fmt: skip
    frames, dropped = BatchedRows(mats["frames"]), BatchedRows(mats["dropped"])
    truth = BatchedRows(mats["truth"]) if "truth" in mats else None
    motion: MotionThread | None = None
    try:
        motion = _start_motion(wiring, cam, mats, devices)
        if not _await_go(wiring):
            return  # parked below
        scratch = np.empty((cam.height, cam.width), dtype=cam.dtype)
        magnets_at: Callable[[], tuple[float, float, float]] = (
            (lambda: motion.latest) if motion is not None else (lambda: _NO_MAGNETS)
        )
        gc.freeze()  # the start-up's objects: no full collection over them in the frame loop
        cam.start()
        stats.set("acquiring", time.monotonic())  # when: the run's duration counts from it
        logger.info("camera started: %dx%d %s", cam.width, cam.height, cam.dtype)
        last_fn = -1
        n = 0
        tracked_id: np.ndarray | None = None
        finish_by: float | None = None
        errors = 0  # camera read errors in a row
        while True:  # until the first frame, a start-up beat: it may compile the camera's code
            (beats.beat if last_fn >= 0 else beats.starting)(PRODUCER)
            if motion is not None and motion.error:
                raise MotionFault(motion.error)
            if wiring.stop.is_set():  # end on a whole stack of camera frames if one comes soon
                finish_by = finish_by or time.monotonic() + _FINISH_STACK_S
                if vb.frames_written % n_images == 0 or time.monotonic() > finish_by:
                    break
            try:
                slot = vb.begin_write(0.0)
            except BufferOverflow:
                slot = None
            try:
                info = cam.read_frame(scratch if slot is None else slot, timeout=0.25)
            except HalTimeoutError:
                if slot is not None:
                    vb.abandon_write()
                continue
            except AcquisitionEnded:
                if slot is not None:
                    vb.abandon_write()
                logger.info("camera acquisition ended")
                break
            except DeviceError as exc:  # a frame lost: its number's gap is recorded as dropped
                if slot is not None:
                    vb.abandon_write()
                errors += 1
                if errors >= max_errors:
                    raise DeviceError(f"{errors} read errors in a row; the last: {exc}") from None
                logger.warning("camera read error (frame lost): %s", exc)
                continue
            except BaseException:
                if slot is not None:
                    vb.abandon_write()
                raise
            arrived = time.monotonic()
            errors = 0
            fn, ts = int(info.frame_number), float(info.timestamp)
            for missing in range(last_fn + 1, fn):
                dropped.add(missing, np.nan, REASON_CAMERA)
                stats.add("camera_gaps")
            last_fn = fn
            if slot is None:  # full when asked: take a slot that came free meanwhile
                try:
                    slot = vb.begin_write(0.0)
                    slot[...] = scratch
                except BufferOverflow:
                    slot = None
            if slot is None:
                dropped.add(fn, ts, REASON_BUFFER_FULL)
                stats.add("dropped")
            else:
                seq = vb.frames_written
                frames.add(fn, ts, seq, *magnets_at(), arrived)
                if truth is not None:
                    t = camera_truth(cam, fn)
                    if t is not None:
                        if tracked_id is None:  # the truth of bead j is that of ROI tracked_id[j]
                            tracked_id = roi_of(t[:, :2], wiring.rois_array(),
                                                wiring.geometry.pixel_size_nm)  # fmt: skip
                        for sim_bead, (bead, row) in enumerate(zip(tracked_id, t, strict=True)):
                            truth.add(fn, bead, *row, sim_bead)
                if (seq + 1) % n_images == 0:
                    frames.flush()  # frame rows reach the writer before the stack's tracks
                vb.commit_write(ts)
                stats.add("frames")
                stats.set("last_timestamp", ts)
            n += 1
            if n % _ROWS_FLUSH == 0:
                _flush(frames, dropped, truth)
                stats.set("buffer_level", vb.get_level())
        _flush(frames, dropped, truth)  # the frame rows before the last stack's tracks
        _pad_last_stack(vb, n_images, wiring.stop)
    finally:
        beats.starting(PRODUCER)  # parking may take a while
        _flush(frames, dropped, truth)
        if motion is not None:
            motion.halt()
            magnets = wiring.magnets
            # every ending: the owner parks
            if magnets is not None and magnets.park_height_mm is not None and not motion.error:
                timeout = magnets.config.move_timeout_s
                motion.park(magnets.park_height_mm, timeout, lambda: beats.starting(PRODUCER))
        stats.set("buffer_level", vb.get_level())
        for m in mats.values():
            m.close()


def _pad_last_stack(vb: Any, n_images: int, stop: Any) -> None:
    """Complete a partly written last stack (a camera that ended, or a stop mid-stack) with
    filler frames, as the consumers take whole stacks: copies of the last frame (what a viewer
    shows last) whose NaN timestamp marks them as no frame. They have no ``frames`` row, and
    trackers and recorder leave them out (:func:`magacq.pipeline.processes.tracker.real_frames`)."""
    from buffers import BufferOverflow

    stored = vb.frames_written % n_images
    if not stored:
        return
    last = np.frombuffer(vb.peak_image()[1], vb.dtype)
    start = time.monotonic()
    for _ in range(n_images - stored):
        while True:
            try:
                slot = vb.begin_write(timeout=0.02)
                break
            except BufferOverflow:
                waited = time.monotonic() - start
                if waited > (_PAD_WAIT_STOPPING_S if stop.is_set() else _PAD_WAIT_S):
                    logger.warning("the ring stayed full: the last %d frames are not tracked",
                                   stored)  # fmt: skip
                    return
        slot.reshape(-1)[...] = last
        vb.commit_write(np.nan)


class MotionFault(Exception):
    """The motion thread hit a motor fault: the run ends with its message."""


_NO_MAGNETS = (np.nan, np.nan, np.nan)


def _start_motion(
    wiring: RunWiring, cam: Any, mats: dict[str, Any], devices: list[Any]
) -> MotionThread | None:
    """Open the focus stage and the magnets of the run (appended to ``devices``), move the
    magnets to their start, and start the motion thread; None when the run has neither."""
    if "motors" not in mats:
        return None
    focus = magnets = None
    spec = wiring.magnets.config if wiring.magnets is not None else None
    if wiring.focus_stage is not None:
        focus = open_accessory("focus_stage", wiring.focus_stage, cam, wiring.camera.driver)
        devices.append(focus)
    if spec is not None:
        magnets = open_accessory("magnets", spec, cam, wiring.camera.driver)
        devices.append(magnets)
        for axis, start in (("height", spec.height_mm), ("rotation", spec.rotation_turns)):
            if start is not None:
                magnets.move_to(axis, start)
        deadline = time.monotonic() + spec.move_timeout_s
        while magnets.is_busy(None):  # a stop meanwhile ends the wait
            if wiring.stop.wait(0.02):
                magnets.stop()
                break
            if time.monotonic() > deadline:
                raise HalTimeoutError(
                    f"magnets still moving to their start after {spec.move_timeout_s:g} s"
                )
    inbox = CommandInbox(mats[COMMANDS], mats[ACKS], mats[LIMITS])
    motion = MotionThread(
        magnets,
        focus,
        mats["motors"],
        inbox,
        sample_hz=spec.sample_hz if spec else 100.0,
        move_timeout_s=spec.move_timeout_s if spec else 60.0,
        focus_timeout_s=wiring.focus_timeout_s,
        events=EventWriter(mats[EVENTS]) if EVENTS in mats else None,
    )
    inbox.publish_limits(motion.limits())
    motion.sample()  # the position at the start, before any frame, for every client at once
    motion.rows.flush()
    motion.start()
    return motion


def _flush(*rows: "BatchedRows | None") -> None:
    for r in rows:
        if r is not None:
            r.flush()
