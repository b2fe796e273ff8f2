"""A calibration run (``magacq calibrate``): the producer follows the sweep plan, profilers
record every bead's radial profile.

- The **producer** (:func:`magacq.pipeline.processes.devices.run_producer`) owns the camera and
  the focus stage (one CMMCore for mmcore; the sim stage moves the sim camera's focal plane, so
  both live in one process) and calls :func:`follow_sweep`: for each position, move, wait until
  settled (plus ``settle_s``), then take exactly ``profiles_per_step`` frames. No frame is taken
  while the stage moves and none is dropped: it waits for free slots. Each frame's step and
  measured stage z are tagged by its slot (:class:`~magacq.pipeline.wiring.SweepSpec`). On any
  exit (end, stop, error) the stage goes back to where it started.
- **Profilers** (:func:`run_profiler`, the trackers of a calibration) claim stacks, compute every
  bead's radial profile and append rows (bead id, step, timestamp, stage z, validity, profile)
  to the ZLUTSweepDataset.

Both beat their heartbeats; the supervisor watches them as any run's children.
"""

import logging
import time
from typing import Any

import numpy as np

from hal import HalError, HalTimeoutError
from magacq.pipeline.channels.heartbeat import PRODUCER, TRACKER0
from magacq.pipeline.hardware import open_accessory
from magacq.pipeline.wiring import RunWiring, SweepSpec

logger = logging.getLogger("magacq.sweep")


class StageFault(Exception):
    """The focus stage failed during the sweep: the calibration ends with this message."""


def follow_sweep(wiring: RunWiring, cam: Any, vb: Any, devices: list[Any]) -> None:
    """The producer's sweep (see the module); the stage is opened into ``devices``.

    A stage that runs hardware sequences (``FocusStage.supports_sequence``) is given the
    positions as sequences, each frame stepping it (the sequence holds each position once per
    frame taken there), in as many sequences as its ``sequence_max_length`` needs; any other is
    moved and waited for step by step."""
    sweep, beats, stats = wiring.sweep, wiring.beats, wiring.stats
    assert sweep is not None and wiring.focus_stage is not None
    try:
        stage = open_accessory("focus_stage", wiring.focus_stage, cam, wiring.camera.driver)
    except HalError as exc:
        raise StageFault(f"focus stage failed to open: {exc}") from None
    devices.append(stage)
    home = float(stage.position_nm)
    stats.set("sweep_home_nm", home)
    stats.set("camera_resting", 1)  # but while it reads a frame: moves, settling, waiting slots
    stats.set("acquiring", time.monotonic())
    per_sequence = stage.sequence_max_length // sweep.profiles_per_step  # steps per sequence
    try:
        if per_sequence:
            stats.set("sweep_sequence", 1)
            logger.info("the focus stage runs hardware sequences: %d positions per sequence",
                        per_sequence)  # fmt: skip
            _by_sequence(wiring, sweep, cam, vb, stage, per_sequence)
        else:
            _by_steps(wiring, sweep, cam, vb, stage)
    finally:
        beats.starting(PRODUCER)  # going home may take longer than a heartbeat's limit
        try:
            back = _move(stage, home, sweep, lambda: beats.starting(PRODUCER))
            logger.info("focus stage back at %.1f nm (its start)", back)
        except StageFault as exc:
            logger.error("the focus stage did not return to %.1f nm: %s", home, exc)


def _by_steps(wiring: RunWiring, sweep: SweepSpec, cam: Any, vb: Any, stage: Any) -> None:
    """Move, settle, take the step's frames; position after position."""
    for step, z in enumerate(sweep.positions):
        if wiring.stop.is_set():
            return
        z_now = _move(stage, z, sweep, lambda: wiring.beats.beat(PRODUCER))
        if _pause(wiring, sweep.settle_s):
            return
        if not _take(wiring, cam, vb, [(step, z_now)] * sweep.profiles_per_step):
            return
        wiring.stats.set("sweep_steps", step + 1)
        wiring.stats.set("sweep_z_nm", z_now)


def _by_sequence(
    wiring: RunWiring, sweep: SweepSpec, cam: Any, vb: Any, stage: Any, per_sequence: int
) -> None:
    """Load ``per_sequence`` positions at a time as a hardware sequence, stepped by the
    camera's frames; each frame is tagged with the position the sequence put it at."""
    n, per = len(sweep.positions), sweep.profiles_per_step
    for first in range(0, n, per_sequence):
        steps = range(first, min(first + per_sequence, n))
        tags = [(s, sweep.positions[s]) for s in steps for _ in range(per)]
        try:
            stage.load_sequence([z for _, z in tags])
            stage.start_sequence()  # at its first position once settled
        except HalError as exc:
            raise StageFault(f"focus stage failed: {exc}") from None
        try:
            _settle(stage, sweep, lambda: wiring.beats.beat(PRODUCER), tags[0][1])
            if _pause(wiring, sweep.settle_s) or not _take(wiring, cam, vb, tags):
                return
        finally:
            stage.stop_sequence()
        wiring.stats.set("sweep_steps", steps[-1] + 1)
        wiring.stats.set("sweep_z_nm", sweep.positions[steps[-1]])


def _move(stage: Any, z: float, sweep: SweepSpec, beat: Any) -> float:
    """Move the stage to ``z`` and wait until it has settled (beating); its measured z."""
    try:
        stage.move_to(z)
    except HalError as exc:
        raise StageFault(f"focus stage failed: {exc}") from None
    return _settle(stage, sweep, beat, z)


def _settle(stage: Any, sweep: SweepSpec, beat: Any, z: float) -> float:
    """Wait until the stage, on its way to ``z``, has settled (beating); its measured z."""
    try:
        stage.wait(sweep.move_timeout_s, tick=beat)
        return float(stage.position_nm)
    except HalTimeoutError:
        raise StageFault(
            f"focus stage still moving to {z:.0f} nm after {sweep.move_timeout_s:g} s"
        ) from None
    except HalError as exc:
        raise StageFault(f"focus stage failed: {exc}") from None


def _pause(wiring: RunWiring, seconds: float) -> bool:
    """Wait ``seconds`` (beating); True when the run is asked to stop meanwhile."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        wiring.beats.beat(PRODUCER)
        if wiring.stop.wait(min(left, 0.1)):
            return True
    return wiring.stop.is_set()


def _take(wiring: RunWiring, cam: Any, vb: Any, tags: list[tuple[int, float]]) -> bool:
    """Take one frame per ``(step, z)`` tag, each into a slot (waiting for one), tagged;
    False on a stop."""
    from buffers import BufferOverflow

    assert wiring.sweep is not None
    ring = vb.n_total_images
    cam.start(len(tags))
    try:
        for step, z in tags:
            slot = None
            while slot is None:  # a calibration never drops: wait for the profilers
                wiring.beats.beat(PRODUCER)
                if wiring.stop.is_set():
                    return False
                try:
                    slot = vb.begin_write(0.25)
                except BufferOverflow:
                    pass
            wiring.stats.set("camera_resting", 0)
            try:
                info = cam.read_frame(slot, timeout=5.0)
            except BaseException:
                vb.abandon_write()
                raise
            finally:
                wiring.stats.set("camera_resting", 1)
            wiring.sweep.tag(vb.frames_written, ring, step, z)
            vb.commit_write(float(info.timestamp))
            wiring.stats.add("frames")
    finally:
        cam.stop()
    return True


def run_profiler(wiring: RunWiring, index: int) -> None:
    """Entry point of profiler ``index``: every bead's profiles into the sweep's dataset."""
    from buffers import ZLUTSweepDataset
    from magacq.tracking import TrackFlag, cut_rois, track_rois

    # A clipped profile (a bead a few pixels off its ROI's centre) is the mean of the samples
    # inside, as good for a Z-LUT as for tracking; one missing too much is PROFILE_INCOMPLETE.
    bad = int(TrackFlag.NO_SIGNAL | TrackFlag.OUTSIDE_ROI | TrackFlag.PROFILE_INCOMPLETE)
    slot = TRACKER0 + index
    wiring.enter_child(f"tracker {index}", slot)
    sweep = wiring.sweep
    assert sweep is not None
    vb = wiring.attach_video()
    ds = ZLUTSweepDataset.attach(locks=wiring.locks, name=sweep.dataset,
                                 namespace=wiring.namespace)  # fmt: skip
    ring = vb.n_total_images
    rois = wiring.rois_array()
    side = wiring.tracking.roi_size
    method = "com" if wiring.tracking.algorithm == "centroid" else wiring.tracking.algorithm
    options = dict(wiring.tracking.options)
    try:
        # compile for the camera's dtype before the sweep starts
        wiring.await_kernels(slot)
        track_rois(np.zeros((1, side, side), dtype=vb.dtype), method=method, **options)
        wiring.ready.release()
        while True:
            wiring.beats.beat(slot)
            stopping = wiring.workers_stop.is_set()
            claim = vb.claim_stack(timeout=0.0 if stopping else 0.25)
            if claim is None:
                if stopping:  # every stack is profiled: a calibration drops nothing
                    break
                continue
            try:  # profiled and written while claimed: a profiler killed meanwhile loses
                # nothing, its stack is requeued (a stack written twice is deduplicated)
                frames = claim.stack.T  # (n_images, height, width), zero-copy
                cut = cut_rois(frames, rois[:, 1], rois[:, 3], side)
                del frames
                steps = sweep.tags_of(claim.frame_numbers, ring)
                _write(ds, sweep, cut, rois[:, 0], steps, claim.timestamps,
                       track_rois(cut, method=method, **options), bad)  # fmt: skip
            finally:
                vb.release_stack(claim)
            wiring.stats.add_stacks(index)
    finally:
        wiring.beats.starting(slot)  # leaving: closing and exiting may take a while
        ds.close()
        vb.close()


def _write(
    ds: Any, sweep: SweepSpec, cut: np.ndarray, bead_ids: np.ndarray, steps: np.ndarray,
    timestamps: np.ndarray, res: Any, bad: int,
) -> None:  # fmt: skip
    """Append a stack's profiles (frame-major, bead-minor) and count them per bead."""
    n_beads = len(bead_ids)
    n_frames = len(cut) // n_beads
    saturated = cut.reshape(len(cut), -1).max(axis=1) >= sweep.saturation
    invalid = ((res.flags & bad) != 0) | ~np.isfinite(res.profiles).all(axis=1)
    ds.write(
        bead_ids=np.tile(bead_ids, n_frames),
        step_indices=np.repeat(steps[:, 0].astype(np.int64), n_beads),
        timestamps=np.repeat(timestamps, n_beads),
        motor_z_values=np.repeat(steps[:, 1], n_beads),
        valid_flags=(~invalid & ~saturated).astype(np.uint8),
        profiles=np.nan_to_num(res.profiles, nan=0.0) if invalid.any() else res.profiles,
    )
    per_bead = np.stack(
        [np.full(len(cut), 1.0), invalid, saturated], axis=1
    ).reshape(n_frames, n_beads, 3).sum(axis=0)  # fmt: skip
    with sweep.counters.get_lock():
        for i, v in enumerate(per_bead.ravel()):
            sweep.counters[i] += v
