"""`magacq calibrate`: record a per-bead Z-LUT by sweeping the focus stage.

A calibration is a run (:mod:`magacq.pipeline.supervisor`: the same session, buffers,
roster and supervision as `magacq run`) with a sweep plan and no writer: the producer steps the
focus stage through the plan's positions, taking ``profiles_per_step`` frames at each, and the
profilers (the run's trackers) write every bead's radial profile into a ZLUTSweepDataset
(:mod:`magacq.pipeline.processes.sweep`). Once the sweep is done this module builds one LUT per
bead (``build_luts``), checks each and saves the file (:mod:`magacq.runfile`). Ctrl-C, a hung
or dead process: the stage is back at its start, nothing is saved.
"""

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from magacq.config import CalibrationConfig, RunConfig, format_name
from magacq.errors import ConfigError, RunError
from magacq.runfile import QUALITY_DTYPE, load_zlut, save_zlut_file

if TYPE_CHECKING:
    from magacq.pipeline.wiring import Geometry

__all__ = ["build_luts", "load_zlut", "run_calibration", "sweep_positions"]

logger = logging.getLogger("magacq.calibrate")

DATASET = "ZLUTSweepDataset"


def sweep_positions(c: CalibrationConfig) -> np.ndarray:
    """Stage positions of the sweep, from ``start_nm`` towards ``stop_nm`` every ``step_nm``."""
    span = c.stop_nm - c.start_nm
    n = int(np.floor(abs(span) / c.step_nm + 1e-9)) + 1
    if n < 3:
        raise ConfigError("calibration: the sweep needs at least 3 positions (start, stop, step)")
    return c.start_nm + np.sign(span) * c.step_nm * np.arange(n)


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
        The camera, the stage or a process failed, or hung; nothing is saved.
    KeyboardInterrupt
        Ctrl-C or SIGTERM: the stage is back at its start, nothing is saved.
    """
    from magacq.pipeline.plan import place_rois, probe_camera, run_namespace
    from magacq.pipeline.supervisor import Run, remove_stale, run_session, supervise
    from magacq.pipeline.wiring import SweepSpec, VideoSpec

    c = cfg.calibration
    if c is None:
        raise ConfigError("magacq calibrate needs a 'calibration' section in the config")
    if cfg.focus_stage is None:
        raise ConfigError("magacq calibrate needs a 'focus_stage' section in the config")
    positions = sweep_positions(c)
    path = output_path(cfg, config_path, output)
    # the profilers' settings: no Z-LUT (the one being made)
    tracking = cfg.tracking.model_copy(update={"zlut": None})
    with run_session(tracking, debug, extra_locks=(DATASET,)) as session:
        run: Run | None = None
        try:
            geometry, image, _ = probe_camera(cfg, opened=session.kernels.compile)
            rois = place_rois(cfg, geometry, image)
            path.parent.mkdir(parents=True, exist_ok=True)
            session.logs.add_file(path.with_suffix(".log"))
            remove_stale()
            n_beads, per_step = len(rois), c.profiles_per_step
            n_stacks = max(4, cfg.buffers.n_stacks or 16)  # a step's profiles a stack
            ctx = session.ctx
            sweep = SweepSpec(
                positions=tuple(float(z) for z in positions),
                settle_s=c.settle_s,
                profiles_per_step=per_step,
                dataset=DATASET,
                tags=ctx.RawArray("d", 2 * n_stacks * per_step),
                counters=ctx.Array("d", 3 * n_beads),
                saturation=float(2**geometry.bit_depth - 1),
                move_timeout_s=cfg.focus_stage.move_timeout_s,
            )
            wiring = session.wiring(
                namespace=run_namespace(),
                camera=cfg.camera,
                geometry=geometry,
                video=VideoSpec(n_stacks, per_step),
                rois=rois,
                tracking=tracking,
                focus_stage=cfg.focus_stage,
                supervision=cfg.supervision,
                sweep=sweep,
            )
            wiring.stats.set("sweep_home_nm", math.nan)
            run = Run(cfg, wiring, session)
            run.create_buffers()
            logger.info(
                "calibrating %d beads: %d positions %.0f..%.0f nm, %d profiles each -> %s",
                n_beads, len(positions), positions[0], positions[-1], per_step, path,
            )  # fmt: skip
            state = supervise(run, session)
            if state == "interrupted":
                raise KeyboardInterrupt
            data, counters, home = _profiles(run, len(positions))
            bead_ids = np.array([r[0] for r in rois])
            mode = "hardware sequence" if wiring.stats.get("sweep_sequence") else "steps"
            return _save(cfg, c, config_path, path, data, positions, bead_ids, counters, home,
                         np.asarray(rois, dtype=np.int64), geometry, mode)  # fmt: skip
        except BaseException:
            if run is not None and run.dataset is not None and not run.dataset._closed:
                run.dataset.set_state(run.dataset.STATE_FAILED)
            raise
        finally:
            if run is not None:
                run.close()


def _profiles(run: Any, n_steps: int) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """The sweep's profiles, per-bead counters and home z, checked complete."""
    if run.error:
        raise RunError(f"calibration failed: {run.error}")
    stats, ds, sweep = run.wiring.stats, run.dataset, run.wiring.sweep
    done, home = int(stats.get("sweep_steps")), stats.get("sweep_home_nm")
    if done < n_steps or not math.isfinite(home):
        raise RunError(f"the sweep stopped after {done} of {n_steps} positions")
    ds.set_state(ds.STATE_COMPLETE)
    data = ds.peak()
    # a stack profiled twice (its profiler killed after writing it): each row once
    rows = np.column_stack([data["bead_ids"], data["step_indices"], data["timestamps"]])
    _, first = np.unique(rows, axis=0, return_index=True)
    data = {k: v[np.sort(first)] for k, v in data.items()}
    expected = n_steps * sweep.profiles_per_step * len(run.wiring.rois)
    if len(first) != expected:
        raise RunError(f"the profilers recorded {len(first)} of {expected} profiles")
    counters = np.asarray(sweep.counters[:]).reshape(len(run.wiring.rois), 3)
    return data, counters, float(home)


def _save(
    cfg: RunConfig, c: CalibrationConfig, config_path: Path, path: Path,
    data: dict[str, np.ndarray], positions: np.ndarray, bead_ids: np.ndarray,
    counters: np.ndarray, home: float, rois: np.ndarray, geometry: "Geometry", sweep_mode: str,
) -> Path:  # fmt: skip
    """Build, check and save the Z-LUTs (and the quality figure); the file's path."""
    from magacq.runfile import software_versions
    from magacq.tracking import ProfileSpec, zlut_verdict

    spec = ProfileSpec.for_roi(cfg.tracking.roi_size)
    zlut, quality, means = build_luts(data, positions, bead_ids, counters, c, spec, home)
    for q in quality:
        if not q["good"]:
            logger.warning(
                "bead %d %s: %s", q["bead_id"],
                "dropped" if c.drop_bad_beads else "flagged", q["reason"].decode(),
            )  # fmt: skip
    reasons = [q["reason"].decode() for q in quality]
    usable, verdict = zlut_verdict(bead_ids, quality["good"], reasons)
    _quality_figure(path, zlut, bead_ids, quality["good"], reasons)
    if not usable:
        raise RunError(f"{verdict} (Z-LUT not saved; the quality figure: "
                       f"{path.with_suffix('.quality.png')})")  # fmt: skip
    if verdict:
        logger.warning("%s", verdict)
    save_zlut_file(
        path,
        zlut=zlut,
        stage_z_nm=_stage_axis(positions, home, c),
        rois=rois,
        reference=np.isin(bead_ids, cfg.beads.reference),
        roi_size=cfg.tracking.roi_size,
        quality=quality,
        mean_profiles=means,
        attrs={
            "home_z_nm": home,
            "sweep_mode": sweep_mode,
            "stage_moves": c.stage_moves,
            "settings": c.model_dump(mode="json"),
            "config": cfg.model_dump(mode="json"),
            "config_path": str(config_path),
            "camera": geometry.attrs(),
            "software": software_versions(),
            "n_good": int(quality["good"].sum()),
        },
    )
    logger.info("Z-LUT of %d/%d good beads saved to %s", quality["good"].sum(), len(bead_ids),
                path)  # fmt: skip
    return path


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
