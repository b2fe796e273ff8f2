"""The recorder process: whole stacks straight from the VideoBuffer into the run's video file.

It claims every stack in the ``recorder`` consumer group (the trackers claim the same stacks in
theirs; a stack's slots go back to the producer only once both released it), writes the kept
frames of the shared-memory view to the video file (:class:`magacq.runfile.VideoFile`: direct
chunk writes, no copy), releases the stack and tells the writer, through the ``recorded``
MatrixBuffer, which frames it kept or skipped (sequence number, timestamp, 0 kept / 1 skipped).

Back-pressure (``output.video.on_backlog``): ``drop_video`` skips the video of a stack when more
than half the ring waits for the recorder, so the trackers never wait for the disk;
``drop_frames`` always writes, so a slow disk fills the ring and the producer drops frames. Less
free disk than ``reserve_mb`` (or a write failing) ends the run with the reason. Restarted with
``discard=True`` (``on_recorder_exit: continue``), it releases every stack unwritten, as skipped.
"""

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from magacq.pipeline.channels.heartbeat import RECORDER as RECORDER_SLOT
from magacq.pipeline.wiring import RECORDER, RunWiring

logger = logging.getLogger("magacq.recorder")

#: Exit code of a recorder that stopped the run (disk full, a failed write).
EXIT_FAILED = 3
_DRAIN_S = 2.0  # after the stop, record the stacks still queued this long, then list as skipped


class DiskFull(Exception):
    """Less free space than the reserve."""


def run_recorder(wiring: RunWiring, discard: bool = False) -> None:
    """Entry point of the recorder process (``discard``: release stacks unwritten)."""
    from magacq.runfile import VideoFile, is_disk_full

    wiring.enter_child("recorder", RECORDER_SLOT)
    spec = wiring.recorder
    assert spec is not None
    video, stats = spec.video, wiring.stats
    vb = wiring.attach_video()
    recorded = wiring.attach_matrices("recorded")["recorded"]
    path = Path(spec.path)
    vf = None
    if not discard:
        vf = VideoFile(
            path, mode=spec.mode, frame_shape=(wiring.geometry.height,
                                                   wiring.geometry.width),
            dtype=wiring.geometry.dtype, n_images=wiring.video.n_images,
            every=video.every, compression=video.compression, rois=wiring.rois_array(),
        )  # fmt: skip
    wiring.ready.release()  # the camera starts once the video file is open
    every, delay = video.every, video.debug_delay_s
    drop_video = video.on_backlog == "drop_video"
    half = max(1, wiring.video.n_stacks // 2)
    reserve = video.reserve_mb * 2**20
    stop_seen: float | None = None
    kept: list[np.ndarray] = []  # rows of frames written since the last flush
    try:
        while True:
            wiring.beats.beat(RECORDER_SLOT)
            if stop_seen is None and wiring.workers_stop.is_set():
                stop_seen = time.monotonic()
            late = stop_seen is not None and time.monotonic() - stop_seen > _DRAIN_S
            claim = vb.claim_stack(timeout=0.0 if stop_seen else 0.25, group=RECORDER)
            lag = vb.get_unread_stack_count(group=RECORDER)
            stats.set("recorder_lag", lag + (claim is not None))
            if claim is None:
                if stop_seen is not None:
                    break
                continue
            seqs, stamps = claim.frame_numbers, claim.timestamps
            keep = (seqs % every == 0) & np.isfinite(stamps)  # no filler (a last stack's)
            skip = discard or late or (drop_video and lag >= half)
            frames = None
            try:
                if not skip:
                    assert vf is not None
                    frames = claim.stack.T  # (n_images, height, width), zero-copy
                    _check_disk(path, reserve)  # one statvfs a stack
                    vf.append(frames if keep.all() else frames[keep], seqs[keep], stamps[keep])
                    if delay:
                        time.sleep(delay)  # testing aid: a slow disk
            finally:
                del frames
                vb.release_stack(claim)
            rows = np.column_stack([seqs[keep], stamps[keep], np.full(keep.sum(), float(skip))])
            if skip:
                _report(recorded, rows, wiring)
                stats.add("video_skipped", len(rows))
            else:  # listed once on disk: a recorder killed before its flush loses them unlisted
                kept.append(rows)
                if vf is not None and vf.maybe_flush():
                    _report(recorded, np.concatenate(kept), wiring)
                    stats.add("video_frames", sum(map(len, kept)))
                    kept.clear()
    except (DiskFull, OSError) as exc:
        if isinstance(exc, DiskFull):
            message = f"recording stopped: {exc}"
        elif is_disk_full(exc):
            message = f"recording stopped: disk full: no space left on the device of {path.parent}"
        else:
            message = f"recording stopped: writing {path.name} failed: {' '.join(str(exc).split())}"
        wiring.events.put(("error", "recorder", message))
        logger.error("%s", message)
        raise SystemExit(EXIT_FAILED) from None
    finally:
        wiring.beats.starting(RECORDER_SLOT)  # leaving: closing and exiting may take a while
        if vf is not None:
            try:
                vf.close()
                if kept:
                    _report(recorded, np.concatenate(kept), wiring)
                    stats.add("video_frames", sum(map(len, kept)))
            except (OSError, RuntimeError) as exc:  # a full disk fails the last flush too
                # (h5py raises RuntimeError for a failed flush); its frames are then unlisted
                logger.warning("closing %s: %s", path.name, exc)
        recorded.close()
        vb.close()
        time.sleep(0)  # let the log queue's feeder run


def _report(recorded: Any, rows: np.ndarray, wiring: RunWiring) -> None:
    """Rows to the writer; while its buffer is full, wait for it (the rows are kept)."""
    from buffers import BufferOverflow

    while True:
        try:
            recorded.write(rows)
            return
        except BufferOverflow:
            wiring.beats.beat(RECORDER_SLOT)
            if wiring.writer_finish.wait(0.01):
                return


def _check_disk(path: Path, reserve: float) -> None:
    free = shutil.disk_usage(path.parent).free
    if free < reserve:
        raise DiskFull(
            f"disk full: {free / 2**20:.0f} MiB left on {path.parent} "
            f"(output.video.reserve_mb {reserve / 2**20:g})"
        )
