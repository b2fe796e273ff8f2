"""`magacq calibrate`: record a per-bead Z-LUT by sweeping the focus stage.

The processes are those of a run, minus the writer:

- The **sweep producer** owns the camera *and* the focus stage (one CMMCore for mmcore; the sim
  stage moves the sim camera's focal plane, so both must live in one process). It executes the
  sweep plan the supervisor hands it: for each position, move, wait until settled (plus
  ``settle_s``), then start the camera for exactly ``profiles_per_step`` frames and stop it. No
  frame is taken while the stage moves. Each frame goes into the VideoBuffer with a tag (step
  index, measured stage z) in a shared array indexed by the frame's sequence number. On any exit
  (end, stop, error) it moves the stage back to where it started.
- **Sweep workers** claim stacks, compute every bead's radial profile (``track_rois``) and append
  rows (bead id, step, timestamp, stage z, validity, profile) to the ZLUTSweepDataset.
- The **supervisor** creates the dataset (READY -> CAPTURING -> COMPLETE, or FAILED), shows a
  progress bar, then builds one LUT per bead (``build_zlut``), checks each and saves the file
  (:mod:`magacq.runfile`). Ctrl-C: stage back at its start, dataset FAILED and destroyed.
"""

import logging
import queue
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from magacq.config import CalibrationConfig, RunConfig, format_name
from magacq.errors import ConfigError, RunError
from magacq.pipeline.wiring import DeviceSpec, RunWiring, control_primitives
from magacq.runfile import QUALITY_DTYPE, load_zlut, save_zlut_file

__all__ = ["build_luts", "load_zlut", "run_calibration", "sweep_positions"]

logger = logging.getLogger("magacq.calibrate")

DATASET = "ZLUTSweepDataset"
_STAGE_TIMEOUT_S = 30.0
_JOIN_S = 5.0


def sweep_positions(c: CalibrationConfig) -> np.ndarray:
    """Stage positions of the sweep, from ``start_nm`` towards ``stop_nm`` every ``step_nm``."""
    span = c.stop_nm - c.start_nm
    n = int(np.floor(abs(span) / c.step_nm + 1e-9)) + 1
    if n < 3:
        raise ConfigError("calibration: the sweep needs at least 3 positions (start, stop, step)")
    return c.start_nm + np.sign(span) * c.step_nm * np.arange(n)


@dataclass
class SweepWiring(RunWiring):
    """A run's wiring plus the sweep plan and the shared per-frame tags and per-bead counters."""

    positions: list[float] = field(default_factory=list)
    settle_s: float = 0.0
    profiles_per_step: int = 1
    focus_stage: DeviceSpec | None = None
    tags: Any = None  # ctx.RawArray('d', 2 * ring frames): step index, stage z of each slot
    counters: SynchronizedArray | None = None  # (n_beads * 3): rows, invalid, saturated
    saturation: float = np.inf  # a pixel at or above this is saturated


# --- child processes -----------------------------------------------------------------------


def run_sweep_producer(wiring: SweepWiring) -> None:
    """Entry point of the sweep producer: camera and focus stage, the sweep plan, tagged frames."""
    from buffers import BufferOverflow
    from hal import HalError
    from magacq.pipeline.hardware import open_accessory, open_camera

    wiring.enter_child("producer")
    # the sweep's own events: (kind, values...), read by _sweep
    events: Queue[Any] = wiring.events
    vb = wiring.attach_video()
    ring = vb.n_total_images
    cam = stage = None
    home: float | None = None
    try:
        cam = open_camera(wiring.camera["driver"], wiring.camera["settings"])
        stage = open_accessory("focus_stage", wiring.focus_stage, cam, wiring.camera["driver"])
        home = float(stage.position_nm)
        events.put(("home", home))
        n = wiring.profiles_per_step
        for step, z in enumerate(wiring.positions):
            if wiring.stop.is_set():
                break
            stage.move_to(z)
            stage.wait(_STAGE_TIMEOUT_S)
            if wiring.stop.wait(wiring.settle_s):
                break
            z_now = float(stage.position_nm)
            cam.start(n)
            try:
                for _ in range(n):
                    slot = None
                    while slot is None:  # calibration never drops: wait for the workers
                        if wiring.stop.is_set():
                            break
                        try:
                            slot = vb.begin_write(0.25)
                        except BufferOverflow:
                            pass
                    if slot is None:
                        break
                    try:
                        info = cam.read_frame(slot, timeout=5.0)
                    except BaseException:
                        vb.abandon_write()
                        raise
                    k = vb.frames_written % ring
                    wiring.tags[2 * k] = step
                    wiring.tags[2 * k + 1] = z_now
                    vb.commit_write(float(info.timestamp))
            finally:
                cam.stop()
            if wiring.stop.is_set():
                break
            events.put(("step", step, z_now))
    except (HalError, OSError, ValueError, RuntimeError) as exc:
        events.put(("error", f"{type(exc).__name__}: {exc}"))
        logger.error("sweep failed: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG))
        raise SystemExit(3) from None
    finally:
        try:
            if stage is not None and home is not None and stage.is_open:
                stage.move_to(home)
                stage.wait(_STAGE_TIMEOUT_S)
                back = float(stage.position_nm)
                logger.info("focus stage back at %.1f nm (its start)", back)
                events.put(("restored", back))
        finally:
            for dev in (stage, cam):
                if dev is not None:
                    try:
                        dev.close()
                    except Exception as exc:  # closing a failed device: report, don't mask
                        logger.warning("closing %s failed: %s", type(dev).__name__, exc)
            vb.close()
            time.sleep(0)


def run_sweep_worker(wiring: SweepWiring, index: int) -> None:
    """Entry point of sweep worker ``index``: profiles of every bead into the dataset."""
    from buffers import ZLUTSweepDataset
    from magacq.tracking import TrackFlag, cut_rois, track_rois

    # A clipped profile (a bead a few pixels off its ROI's centre) is the mean of the samples
    # inside, as good for a Z-LUT as for tracking; one missing too much is PROFILE_INCOMPLETE.
    bad = int(TrackFlag.NO_SIGNAL | TrackFlag.OUTSIDE_ROI | TrackFlag.PROFILE_INCOMPLETE)
    wiring.enter_child(f"tracker {index}")
    vb = wiring.attach_video()
    ds = ZLUTSweepDataset.attach(locks=wiring.locks, name=DATASET, namespace=wiring.namespace)
    ring = vb.n_total_images
    rois = wiring.rois_array()
    n_beads, side = len(rois), int(wiring.tracking["roi_size"])
    method = wiring.tracking.get("algorithm", "qi")
    method = "com" if method == "centroid" else method
    options = dict(wiring.tracking.get("options") or {})
    try:
        # compile for the camera's dtype before the sweep starts
        track_rois(np.zeros((1, side, side), dtype=vb.dtype), method=method, **options)
        wiring.ready.release()
        while True:
            claim = vb.claim_stack(timeout=0.0 if wiring.workers_stop.is_set() else 0.25)
            if claim is None:
                if wiring.workers_stop.is_set():
                    break
                continue
            try:
                frames = claim.stack.T  # (n_images, height, width), zero-copy
                n_frames = len(frames)
                cut = cut_rois(frames, rois[:, 1], rois[:, 3], side)
                del frames
                # read the step tags while the claim holds the slots: once released, the
                # producer reuses them and overwrites their tags
                k = claim.frame_numbers % ring
                steps = np.asarray(wiring.tags[:], dtype=np.float64).reshape(-1, 2)[k]
            finally:
                vb.release_stack(claim)
            res = track_rois(cut, method=method, **options)
            saturated = cut.reshape(len(cut), -1).max(axis=1) >= wiring.saturation
            invalid = ((res.flags & bad) != 0) | ~np.isfinite(res.profiles).all(axis=1)
            valid = ~invalid & ~saturated
            ds.write(
                bead_ids=np.tile(rois[:, 0], n_frames),
                step_indices=np.repeat(steps[:, 0].astype(np.int64), n_beads),
                timestamps=np.repeat(claim.timestamps, n_beads),
                motor_z_values=np.repeat(steps[:, 1], n_beads),
                valid_flags=valid.astype(np.uint8),
                profiles=np.nan_to_num(res.profiles, nan=0.0) if invalid.any() else res.profiles,
            )
            per_bead = np.stack(
                [np.full(len(cut), 1.0), invalid, saturated], axis=1
            ).reshape(n_frames, n_beads, 3).sum(axis=0)  # fmt: skip
            assert wiring.counters is not None  # made by run_calibration
            with wiring.counters.get_lock():
                for i, v in enumerate(per_bead.ravel()):
                    wiring.counters[i] += v
    finally:
        ds.close()
        vb.close()


# --- LUTs from the dataset -----------------------------------------------------------------


def build_luts(
    data: dict[str, np.ndarray],
    positions: np.ndarray,
    bead_ids: np.ndarray,
    counters: np.ndarray,
    c: CalibrationConfig,
    spec: Any,
    home_nm: float,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """One Z-LUT per bead from the dataset's rows, checked.

    Parameters
    ----------
    data : the dataset's rows (``ZLUTSweepDataset.peak``)
    positions : the sweep's stage positions (step index -> stage z)
    bead_ids : the beads, in ROI order
    counters : (n_beads, 3) rows, invalid, saturated per bead
    c : the calibration settings
    spec : the ProfileSpec of the profiles
    home_nm : where the stage started; bead height 0 is the focus there

    Returns
    -------
    zlut, quality, mean_profiles
        The ZLut (planes on ascending bead height, dropped beads NaN), the per-bead checks
        (``QUALITY_DTYPE``) and the raw per-step mean profiles on the same axis.
    """
    from magacq.tracking import ZLut, build_zlut

    sign = -1.0 if c.stage_moves == "objective" else 1.0
    heights = sign * (np.asarray(positions, dtype=np.float64) - home_nm)
    order = np.argsort(heights)  # plane j <- step order[j]
    n_steps, n_r = len(positions), spec.n_radii
    z0 = float(heights[order[0]])
    planes = np.full((len(bead_ids), n_steps, n_r), np.nan)
    means = np.full((len(bead_ids), n_steps, n_r), np.nan)
    quality = np.zeros(len(bead_ids), dtype=QUALITY_DTYPE)
    for b, bead in enumerate(bead_ids):
        rows = (data["bead_ids"] == bead) & (data["valid_flags"] == 1)
        steps = data["step_indices"][rows].astype(np.int64)
        prof = data["profiles"][rows]
        total, invalid, saturated = counters[b]
        q = quality[b]
        q["bead_id"] = bead
        q["valid_fraction"] = rows.sum() / max(total, 1)
        q["saturated_fraction"] = saturated / max(total, 1)
        reasons = []
        if len(steps):
            lut = build_zlut(prof, heights[steps], c.step_nm, spec, z_start_nm=z0)
            planes[b, : lut.planes.shape[1]] = lut.planes[0]
            for j in range(n_steps):
                sel = steps == order[j]
                if sel.any():
                    means[b, j] = prof[sel].mean(axis=0)
            q["distinct_fraction"] = _distinct_fraction(prof, steps, order, planes[b])
        if saturated > 0:
            reasons.append("saturated")
        if 1 - q["valid_fraction"] > c.max_invalid_fraction:
            reasons.append("left its ROI or lost")
        if np.isnan(planes[b, :, 0]).any():
            reasons.append("planes missing")
        if q["distinct_fraction"] < c.min_distinct_fraction:
            reasons.append("planes not distinct")
        q["good"] = not reasons
        q["reason"] = ", ".join(reasons).encode()[:64]
        if reasons and c.drop_bad_beads:
            planes[b] = np.nan
    return ZLut(planes, z0, float(c.step_nm), spec), quality, means


def _distinct_fraction(
    prof: np.ndarray, steps: np.ndarray, order: np.ndarray, planes: np.ndarray
) -> float:
    """Fraction of neighbouring planes further apart than twice their standard error.

    The error of a plane is the RMS scatter of its normalised profiles over sqrt(count).
    """
    norm = prof - prof.mean(axis=1, keepdims=True)
    norm /= np.sqrt((norm**2).mean(axis=1, keepdims=True)) + 1e-300
    se = np.full(len(order), np.nan)
    for j, s in enumerate(order):
        sel = steps == s
        if sel.sum() >= 2:
            se[j] = np.sqrt((norm[sel] - planes[j]) ** 2).mean() / np.sqrt(sel.sum())
        elif sel.sum() == 1:
            se[j] = 0.0
    d = np.sqrt(((planes[1:] - planes[:-1]) ** 2).mean(axis=1))
    noise = np.sqrt(se[1:] ** 2 + se[:-1] ** 2)
    ok = np.isfinite(d) & np.isfinite(noise)
    if not ok.any():
        return 0.0
    return float((d[ok] > 2 * noise[ok]).sum() / len(d))


# --- the supervisor ------------------------------------------------------------------------


def output_path(cfg: RunConfig, config_path: Path, output: Path | None) -> Path:
    """The Z-LUT file: ``--output``, else ``calibration.output``, else one in output.dir."""
    assert cfg.calibration is not None
    path = output or cfg.calibration.output
    if path is None:
        name = format_name("zlut_{date}_{time}_{config}.h5", config=config_path.stem)
        path = Path(cfg.output.dir) / name
    return Path(path)


def run_calibration(
    cfg: RunConfig, *, config_path: Path, output: Path | None = None, debug: bool = False
) -> Path:
    """Sweep the focus, build and check one Z-LUT per bead, save them; return the file's path.

    Raises
    ------
    ConfigError
        No ``calibration`` or ``focus_stage`` section, or a sweep outside the stage.
    RunError
        The camera, the stage or a worker failed; nothing is saved.
    KeyboardInterrupt
        Ctrl-C or SIGTERM: the stage is back at its start, nothing is saved.
    """
    from buffers import VideoBuffer, ZLUTSweepDataset, make_locks, remove_stale_segments
    from magacq.logs import RunLogging
    from magacq.pipeline.plan import place_rois, probe_camera, run_namespace
    from magacq.pipeline.start_method import start_context
    from magacq.tracking import ProfileSpec

    c = cfg.calibration
    if c is None:
        raise ConfigError("magacq calibrate needs a 'calibration' section in the config")
    if cfg.focus_stage is None:
        raise ConfigError("magacq calibrate needs a 'focus_stage' section in the config")
    positions = sweep_positions(c)
    path = output_path(cfg, config_path, output)
    ctx = start_context()
    console = Console(stderr=True)
    logs = RunLogging(console, debug=debug, ctx=ctx)
    logs.start()
    events = ctx.Queue()
    owned: list[Any] = []
    procs: dict[str, Any] = {}
    dataset = None
    try:
        geometry, image, _ = probe_camera(cfg)
        rois = place_rois(cfg, geometry, image)
        path.parent.mkdir(parents=True, exist_ok=True)
        logs.add_file(path.with_suffix(".log"))
        namespace = run_namespace()
        remove_stale_segments(namespace)
        n_beads, per_step = len(rois), c.profiles_per_step
        spec = ProfileSpec.for_roi(cfg.tracking.roi_size)
        n_stacks = max(4, cfg.buffers.n_stacks)
        wiring = SweepWiring(
            namespace=namespace,
            locks=make_locks("VideoBuffer", DATASET, context=ctx),
            **control_primitives(ctx, logs, events),
            camera={"driver": cfg.camera.driver, "settings": dict(cfg.camera.settings)},
            geometry=geometry,
            video={"n_stacks": n_stacks, "n_images": per_step},
            rois=rois,
            tracking=cfg.tracking.model_dump(mode="json"),
            positions=[float(z) for z in positions],
            settle_s=c.settle_s,
            profiles_per_step=per_step,
            focus_stage={
                "driver": cfg.focus_stage.driver,
                "settings": dict(cfg.focus_stage.settings),
            },
            tags=ctx.RawArray("d", 2 * n_stacks * per_step),
            counters=ctx.Array("d", 3 * n_beads),
            saturation=float(2 ** geometry["bit_depth"] - 1),
        )
        video = VideoBuffer(
            create=True,
            locks=wiring.locks,
            n_stacks=n_stacks,
            width=geometry["width"],
            height=geometry["height"],
            n_images=per_step,
            bits=geometry["bits"],
            namespace=namespace,
        )
        owned.append(video)
        dataset = ZLUTSweepDataset.create(
            locks=wiring.locks,
            capacity=len(positions) * n_beads * per_step,
            profile_length=spec.n_radii,
            n_steps=len(positions),
            n_beads=n_beads,
            profiles_per_bead=per_step,
            name=DATASET,
            namespace=namespace,
        )
        owned.append(dataset)
        logger.info(
            "calibrating %d beads: %d positions %.0f..%.0f nm, %d profiles each -> %s",
            n_beads, len(positions), positions[0], positions[-1], per_step, path,
        )  # fmt: skip
        home = _sweep(wiring, dataset, procs, ctx, console, len(positions))
        dataset.set_state(dataset.STATE_COMPLETE)
        data = dataset.peak()
        assert wiring.counters is not None
        counters = np.asarray(wiring.counters[:]).reshape(n_beads, 3)
        bead_ids = np.array([r[0] for r in rois])
        zlut, quality, means = build_luts(data, positions, bead_ids, counters, c, spec, home)
        for q in quality:
            if not q["good"]:
                logger.warning(
                    "bead %d %s: %s", q["bead_id"],
                    "dropped" if c.drop_bad_beads else "flagged", q["reason"].decode(),
                )  # fmt: skip
        from magacq.tracking import zlut_verdict

        reasons = [q["reason"].decode() for q in quality]
        usable, verdict = zlut_verdict(bead_ids, quality["good"], reasons)
        _quality_figure(path, zlut, bead_ids, quality["good"], reasons)
        if not usable:
            raise RunError(f"{verdict} (Z-LUT not saved; the quality figure: "
                           f"{path.with_suffix('.quality.png')})")  # fmt: skip
        if verdict:
            logger.warning("%s", verdict)
        from magacq.runfile import software_versions

        save_zlut_file(
            path,
            zlut=zlut,
            stage_z_nm=_stage_axis(positions, home, c),
            rois=np.asarray(rois, dtype=np.int64),
            reference=np.isin(bead_ids, cfg.beads.reference),
            roi_size=cfg.tracking.roi_size,
            quality=quality,
            mean_profiles=means,
            attrs={
                "home_z_nm": home,
                "stage_moves": c.stage_moves,
                "settings": c.model_dump(mode="json"),
                "config": cfg.model_dump(mode="json"),
                "config_path": str(config_path),
                "camera": geometry,
                "software": software_versions(),
                "n_good": int(quality["good"].sum()),
            },
        )
        dataset.destroy()
        logger.info("Z-LUT of %d/%d good beads saved to %s", quality["good"].sum(), n_beads, path)
        return path
    except BaseException:
        if dataset is not None and not dataset._closed:
            dataset.set_state(dataset.STATE_FAILED)
        raise
    finally:
        _stop(procs, wiring if procs else None)
        for buf in reversed(owned):
            try:
                buf.close()
            except Exception as exc:  # keep closing the others
                logger.warning("closing %r failed: %s", buf, exc)
        events.close()
        events.join_thread()
        logs.stop()


def _quality_figure(path: Path, zlut: Any, bead_ids: np.ndarray, good: np.ndarray,
                    reasons: list[str]) -> None:  # fmt: skip
    """``<zlut>.quality.png``: each bead's Z-LUT, good or why not."""
    from magacq.analysis import zlut_quality_figure

    fig = zlut_quality_figure(zlut.z_nm, zlut.planes, bead_ids, good, reasons)
    fig.savefig(path.with_suffix(".quality.png"), dpi=90)
    logger.info("Z-LUT quality figure: %s", path.with_suffix(".quality.png"))


def _stage_axis(positions: np.ndarray, home: float, c: CalibrationConfig) -> np.ndarray:
    """Stage position of each LUT plane (planes ascend in bead height)."""
    sign = -1.0 if c.stage_moves == "objective" else 1.0
    return np.asarray(positions)[np.argsort(sign * (np.asarray(positions) - home))]


def _sweep(
    wiring: SweepWiring, dataset: Any, procs: dict[str, Any], ctx: Any, console: Console, n: int
) -> float:
    """Start the workers and the producer, follow the sweep to its end; return the home z."""
    from magacq.pipeline.supervisor import StopSignals

    def start(target: Any, *args: Any, name: str) -> None:
        procs[name] = ctx.Process(target=target, args=(wiring, *args), name=name, daemon=True)
        procs[name].start()

    workers = [f"tracker-{i}" for i in range(int(wiring.tracking["workers"]))]
    home: float | None = None
    with StopSignals() as signals:

        def check() -> None:
            if signals.received is not None:
                raise KeyboardInterrupt
            for name, p in procs.items():
                ended = name == "producer" or wiring.workers_stop.is_set()
                if not p.is_alive() and (p.exitcode or not ended):
                    raise RunError(
                        _event_error(wiring) or f"{name} failed (exit code {p.exitcode})"
                    )

        for i, name in enumerate(workers):
            start(run_sweep_worker, i, name=name)
        for _ in workers:  # trackers compile their kernels before the sweep starts
            while not wiring.ready.acquire(timeout=0.25):
                check()
        dataset.set_state(dataset.STATE_CAPTURING)
        start(run_sweep_producer, name="producer")
        progress = Progress(
            TextColumn("Z sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[z]}"),  # noqa: E501
            TimeElapsedColumn(), console=console, disable=not console.is_terminal,
        )  # fmt: skip
        task = progress.add_task("sweep", total=n, z="")
        done = 0
        with progress:
            while True:
                check()
                try:
                    ev = wiring.events.get(timeout=0.25)
                except queue.Empty:
                    if not procs["producer"].is_alive() and procs["producer"].exitcode == 0:
                        break
                    continue
                if ev[0] == "home":
                    home = float(ev[1])
                elif ev[0] == "step":
                    done += 1
                    progress.update(task, completed=done, z=f"stage {ev[2]:.0f} nm")
                    if not console.is_terminal and (done % max(1, n // 5) == 0 or done == n):
                        logger.info("sweep: %d/%d positions", done, n)
                elif ev[0] == "error":
                    raise RunError(f"calibration failed: {ev[1]}")
        if done < n or home is None:
            raise RunError(f"the sweep stopped after {done} of {n} positions")
        wiring.workers_stop.set()
        expected = dataset.capacity
        for name in workers:
            while procs[name].is_alive():
                procs[name].join(0.25)
                check()
        if dataset.get_count() != expected:
            raise RunError(f"the workers recorded {dataset.get_count()} of {expected} profiles")
    return home


def _event_error(wiring: SweepWiring) -> str | None:
    try:
        while True:
            ev = wiring.events.get(timeout=0.2)
            if ev[0] == "error":
                return f"calibration failed: {ev[1]}"
    except queue.Empty:
        return None


def _stop(procs: dict[str, Any], wiring: SweepWiring | None) -> None:
    """Stop the producer (it returns the stage home), then the workers."""
    if wiring is None:
        return
    wiring.stop.set()
    p = procs.get("producer")
    if p is not None:
        p.join(_STAGE_TIMEOUT_S)
    wiring.workers_stop.set()
    for p in procs.values():
        p.join(_JOIN_S)
        if p.is_alive():
            logger.warning("%s did not stop in time; killing it", p.name)
            p.kill()
            p.join(1.0)
