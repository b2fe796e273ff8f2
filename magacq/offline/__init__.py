"""Offline work on run files: `magacq analyze` (forces, extensions, curves, figures) and
`magacq retrack` (re-tracking recorded video on Dask)."""

from magacq.offline._analyze import (
    AnalysisSettings,
    BeadAnalysis,
    PlateauResult,
    RunAnalysis,
    analyze_tracks,
)
from magacq.offline._retrack import RetrackJob, retrack, track_stack
from magacq.offline._run import analyze_run

__all__ = [
    "AnalysisSettings",
    "BeadAnalysis",
    "PlateauResult",
    "RetrackJob",
    "RunAnalysis",
    "analyze_run",
    "analyze_tracks",
    "retrack",
    "track_stack",
]
