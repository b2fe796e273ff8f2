"""`magacq analyze RUN.h5`: read the run, analyse it, write the tables and figures."""

import logging
from collections.abc import Callable
from pathlib import Path

from magacq.errors import ConfigError
from magacq.offline._analyze import (
    AnalysisSettings,
    BeadAnalysis,
    RunAnalysis,
    SurfaceLuts,
    analyze_tracks,
)
from magacq.offline._outputs import FigureWriter, write_tables
from magacq.offline._ramps import run_force_curve
from magacq.runfile import RunTracks, read_run, read_zlut_file

__all__ = ["analyze_run", "run_luts"]

logger = logging.getLogger("magacq.offline")


def run_luts(run: RunTracks) -> SurfaceLuts | None:
    """The Z-LUTs the run tracked with (its config's ``tracking.zlut``, relative to the run
    file when not found as written); None when it had none or the file is gone."""
    name = (run.config.get("tracking") or {}).get("zlut")
    if not name:
        return None
    path = Path(name)
    for candidate in (path, run.path.parent / path.name):
        if candidate.is_file():
            try:
                lut = read_zlut_file(candidate)
            except ConfigError as exc:
                logger.warning("the run's Z-LUT: %s", exc)
                return None
            return SurfaceLuts(lut.rois[:, 0], lut.zlut.planes, lut.zlut.z_nm)
    logger.warning("the run's Z-LUT %s is gone: no surface from the stuck beads", path)
    return None


def analyze_run(
    path: str | Path,
    out_dir: str | Path | None = None,
    settings: AnalysisSettings | None = None,
    *,
    figures: bool = True,
    progress: Callable[[BeadAnalysis, int], None] | None = None,
) -> tuple[RunAnalysis, list[Path]]:
    """Analyse the run file ``path``; write into ``out_dir`` (default ``<run>_analysis/`` beside
    it). ``progress`` is called with each bead done and the number of beads. Returns the
    analysis and the files written."""
    run = read_run(path)
    out = Path(out_dir) if out_dir is not None else run.path.with_name(f"{run.path.stem}_analysis")
    luts = run_luts(run)
    with FigureWriter(out, len(run.bead_ids), draw=figures) as pages:

        def done(bead: BeadAnalysis) -> None:
            pages.bead(bead)
            if progress is not None:
                progress(bead, len(run.bead_ids))

        res = analyze_tracks(run, settings, luts=luts, force_curve=run_force_curve(run),
                             on_bead=done)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        written = write_tables(res, out)
        return res, written + pages.finish(res)
