"""The producer process: camera frames straight into VideoBuffer slots, nothing lost silently.

Each frame is read by the driver directly into the next free slot (``begin_write`` /
``commit_write``: no extra copy). When the ring is full (unread or claimed stacks fill it) the
frame is read into a scratch array instead; if a slot has come free meanwhile it is copied in,
else it is dropped and recorded in the ``dropped`` table with its frame number. A claimed stack is
never overwritten: the buffer refuses the slot.
"""

import logging
import time
from typing import Any

import numpy as np

from magacq.pipeline.wiring import RunWiring

logger = logging.getLogger("magacq.producer")

REASON_BUFFER_FULL = 0
REASON_CAMERA = 1
_ROWS_FLUSH = 256
_FINISH_STACK_S = 0.4  # after the stop, keep acquiring this long at most to fill the last stack


def open_camera(driver: str, settings: dict[str, Any]) -> Any:
    """Create and open the camera of ``driver`` with ``settings``."""
    from magacq.config import driver_class

    cam = driver_class("camera", driver)(settings)
    cam.open()
    return cam


def camera_truth(cam: Any, frame_number: int) -> np.ndarray | None:
    """Ground truth ``(n_beads, 3)`` x, y, z in nm of a simulated camera's frame, else None."""
    getter = getattr(cam, "ground_truth", None)
    if getter is None:
        return None
    try:
        truth = getter(frame_number)
    except KeyError:  # the simulator no longer holds this frame's record
        return None
    if truth is None:
        return None
    if hasattr(truth, "x_nm"):  # a record of arrays
        return np.column_stack([truth.x_nm, truth.y_nm, truth.z_nm])
    return np.asarray(truth, dtype=np.float64).reshape(-1, 3)


class _Rows:
    """Rows for one MatrixBuffer, written in batches; kept (not lost) while the buffer is full."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.rows: list[tuple[float, ...]] = []
        self.pending: list[np.ndarray] = []

    def add(self, *row: float) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        from buffers import BufferOverflow

        if self.rows:
            self.pending.append(np.asarray(self.rows, dtype=np.float64))
            self.rows = []
        while self.pending:
            try:
                self.buf.write(self.pending[0])
            except BufferOverflow:
                return  # the writer is behind: try again at the next flush
            self.pending.pop(0)


def run_producer(wiring: RunWiring) -> None:
    """Entry point of the producer process."""
    from buffers import BufferOverflow
    from hal import AcquisitionEnded, HalTimeoutError

    wiring.enter_child("producer")
    stats = wiring.stats
    n_images = wiring.video["n_images"]
    vb = wiring.attach_video()
    mats = wiring.attach_matrices(
        *(n for n in ("frames", "dropped", "truth") if n in wiring.matrix_rows)
    )
    frames, dropped = _Rows(mats["frames"]), _Rows(mats["dropped"])
    truth = _Rows(mats["truth"]) if "truth" in mats else None
    cam = None
    try:
        cam = open_camera(wiring.camera["driver"], wiring.camera["settings"])
        scratch = np.empty((cam.height, cam.width), dtype=cam.dtype)
        cam.start()
        stats.set("acquiring", time.monotonic())  # when: the run's duration counts from it
        logger.info("camera started: %dx%d %s", cam.width, cam.height, cam.dtype)
        last_fn = -1
        n = 0
        finish_by: float | None = None
        while True:
            if wiring.stop.is_set():  # end on a whole stack, so every stored frame is tracked
                if vb.frames_written % n_images == 0:
                    break
                finish_by = finish_by or time.monotonic() + _FINISH_STACK_S
                if time.monotonic() > finish_by:
                    logger.warning("stopped mid-stack: the last %d stored frames are not tracked",
                                   vb.frames_written % n_images)  # fmt: skip
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
            except BaseException:
                if slot is not None:
                    vb.abandon_write()
                raise
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
                frames.add(fn, ts, seq)
                if truth is not None:
                    t = camera_truth(cam, fn)
                    if t is not None:
                        for bead, (x, y, z) in enumerate(t):
                            truth.add(fn, bead, x, y, z)
                if (seq + 1) % n_images == 0:
                    frames.flush()  # frame rows reach the writer before the stack's tracks
                vb.commit_write(ts)
                stats.add("frames")
                stats.set("last_timestamp", ts)
            n += 1
            if n % _ROWS_FLUSH == 0:
                _flush(frames, dropped, truth)
                stats.set("buffer_level", vb.get_level())
    except BaseException as exc:
        wiring.events.put(("error", "producer", f"camera failed: {exc}"))
        logger.error("camera failed: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG))
        raise SystemExit(3) from None
    finally:
        _flush(frames, dropped, truth)
        if cam is not None:
            try:
                cam.close()
            except Exception as exc:  # closing a failed camera: report, don't mask
                logger.warning("closing the camera failed: %s", exc)
        stats.set("buffer_level", vb.get_level())
        for m in mats.values():
            m.close()
        vb.close()
        time.sleep(0)  # let the log queue's feeder run


def _flush(*rows: "_Rows | None") -> None:
    for r in rows:
        if r is not None:
            r.flush()
