"""`magacq analyze RUN.h5`: read the run, analyse it, write the tables and figures."""

from pathlib import Path

from magacq.offline._analyze import AnalysisSettings, RunAnalysis, analyze_tracks
from magacq.offline._outputs import FigureWriter, write_tables
from magacq.runfile import read_run

__all__ = ["analyze_run"]


def analyze_run(
    path: str | Path,
    out_dir: str | Path | None = None,
    settings: AnalysisSettings | None = None,
    *,
    figures: bool = True,
) -> tuple[RunAnalysis, list[Path]]:
    """Analyse the run file ``path``; write into ``out_dir`` (default ``<run>_analysis/`` beside
    it). Returns the analysis and the files written."""
    run = read_run(path)
    out = Path(out_dir) if out_dir is not None else run.path.with_name(f"{run.path.stem}_analysis")
    if not figures:
        res = analyze_tracks(run, settings)
        out.mkdir(parents=True, exist_ok=True)
        return res, write_tables(res, out)
    with FigureWriter(out, len(run.bead_ids)) as pages:  # each page drawn as its bead is done
        res = analyze_tracks(run, settings, on_bead=pages.bead)
        out.mkdir(parents=True, exist_ok=True)
        written = write_tables(res, out)
        return res, written + pages.finish(res)
