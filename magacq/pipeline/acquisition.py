"""`magacq run`: plan the acquisition (:mod:`magacq.pipeline.plan`: probe the camera, place
the ROIs, expand the protocol, size the buffers), then run it under the supervisor
(:mod:`magacq.pipeline.supervisor`) in a session of its own."""

import logging
import math
from pathlib import Path

import numpy as np

from magacq._platform import raised_priority
from magacq.config import RunConfig
from magacq.errors import ConfigError, RunError
from magacq.pipeline.channels.live_force import live_force_spec
from magacq.pipeline.plan import (
    locks_spec,
    output_path,
    place_rois,
    probe_camera,
    protocol_spec,
    run_namespace,
)
from magacq.pipeline.roster import Spare
from magacq.pipeline.sizing import FrameSize, buffer_sizes, check_room
from magacq.pipeline.supervisor import Run, Session, remove_stale, run_session, supervise
from magacq.pipeline.wiring import (
    VIDEO_GROUPS,
    MagnetsSpec,
    RecorderSpec,
    WriterSpec,
)

logger = logging.getLogger("magacq")


def run_acquisition(cfg: RunConfig, *, config_path: Path, debug: bool = False) -> Path:
    """Run one acquisition to its end; return the HDF5 file's path.

    Raises
    ------
    ConfigError
        The config does not fit the camera (ROIs outside the frame, ...) or the machine
        (buffers larger than /dev/shm's free space or the memory).
    RunError
        The camera, the producer or the writer failed; what was acquired is saved.
    """
    recorder = cfg.output.video.mode != "none"
    # started before the plan (spawn): the producer imports the drivers it opens meanwhile
    sections = {"camera": cfg.camera, "focus_stage": cfg.focus_stage, "magnets": cfg.magnets}
    drivers = tuple((kind, s.driver) for kind, s in sections.items() if s is not None)
    spares = [Spare("producer", drivers=drivers),
              *(Spare("tracker", i) for i in range(cfg.tracking.workers)),
              Spare("writer"), *([Spare("recorder")] if recorder else [])]  # fmt: skip
    with (
        raised_priority(cfg.supervision.nice) as nice,
        run_session(cfg.tracking, debug, groups=VIDEO_GROUPS if recorder else (),
                    spares=spares) as session,
    ):  # fmt: skip
        logger.debug(
            "scheduling priority: nice %s", "unchanged (refused)" if nice is None else nice
        )
        run: Run | None = None
        path: Path | None = None
        try:
            run, path = _plan_run(cfg, config_path, session)
            run.create_buffers()
            ring = run.wiring.video
            logger.info("run %s: %d beads, %d workers, a ring of %d stacks of %d frames -> %s",
                        run.wiring.namespace, len(run.wiring.rois), cfg.tracking.workers,
                        ring.n_stacks, ring.n_images, path)  # fmt: skip
            state = supervise(run, session)
            if run.error:
                kept = "saved in" if path.exists() else "lost with"  # its folder removed
                raise RunError(f"{run.error}; data acquired so far {kept} {path}")
            if state == "interrupted":
                logger.info("stopped by signal; the file is closed, its state 'interrupted'")
            return path
        finally:
            if run is not None:
                run.close()
            if path is not None and path.exists() and path.stat().st_size == 0:  # no writer
                path.unlink()


def _plan_run(cfg: RunConfig, config_path: Path, session: Session) -> tuple[Run, Path]:
    """Probe the camera, place the ROIs, size the buffers: the run, not yet started."""
    from magacq.runfile import ROIS_DTYPE, run_attrs, video_path

    geometry, image, devices = probe_camera(cfg, opened=session.kernels.compile)
    if cfg.live_force is not None and not math.isfinite(geometry.bead_radius_nm):
        raise ConfigError("live_force needs the bead radius: set beads.radius_nm")
    protocol = protocol_spec(cfg, config_path, devices)
    rois = place_rois(cfg, geometry, image)
    if cfg.tracking.zlut is not None:  # the Z-LUT must be of this ROI size and bead set
        from magacq.runfile import rois_for_run

        rois = rois_for_run(
            cfg.tracking.zlut, rois, cfg.tracking.roi_size, explicit=bool(cfg.beads.rois)
        )
    remove_stale()
    sizes = buffer_sizes(
        cfg,
        FrameSize(geometry.width, geometry.height, geometry.bits // 8),
        n_beads=len(rois),
        simulated=geometry.simulated,
    )
    recorder = cfg.output.video.mode != "none"
    check_room(sizes, n_processes=cfg.tracking.workers + 3 + recorder)
    assert sizes.video is not None  # sized for the camera's frame
    path = output_path(cfg, config_path)
    session.logs.add_file(path.with_suffix(".log"))
    namespace = run_namespace()
    video = cfg.output.video
    locks = locks_spec(cfg)
    ref = set(cfg.beads.reference)
    rois_table = np.array(
        [(i, x0, x1, y0, y1, i in ref) for i, x0, x1, y0, y1 in rois], dtype=ROIS_DTYPE
    )
    wiring = session.wiring(
        namespace=namespace,
        matrix_rows=sizes.matrix_rows,
        camera=cfg.camera,
        geometry=geometry,
        video=sizes.video,
        rois=rois,
        tracking=cfg.tracking,
        focus_stage=cfg.focus_stage,
        **({"focus_timeout_s": cfg.focus_stage.move_timeout_s} if cfg.focus_stage else {}),
        magnets=(
            MagnetsSpec(cfg.magnets, protocol.plan.end_height_mm if protocol else None)
            if cfg.magnets is not None
            else None
        ),
        supervision=cfg.supervision,
        protocol=protocol,
        feedback=locks,
        writer=WriterSpec(
            path=str(path),
            attrs={
                **run_attrs(cfg.model_dump_json(), str(config_path), geometry.attrs()),
                "namespace": namespace,
                "n_beads": len(rois),
            },
            rois=rois_table,
            references=list(cfg.beads.reference),
            xy_lock=cfg.locks.xy_lock is not None,
            z_sign=locks.sign if locks is not None and cfg.locks.z_lock is not None else None,
            live_force=(
                live_force_spec(cfg, geometry.bead_radius_nm, geometry.exposure_ms)
                if cfg.live_force is not None
                else None
            ),
        ),
        recorder=RecorderSpec(str(video_path(path)), video) if video.mode != "none" else None,
    )
    return Run(cfg, wiring, session), path
