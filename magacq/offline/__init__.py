"""Offline commands over run files: `magacq analyze` (forces, extensions, curves, figures)."""

from magacq.offline._analyze import (
    AnalysisSettings,
    BeadAnalysis,
    PlateauResult,
    RunAnalysis,
    analyze_tracks,
)
from magacq.offline._run import analyze_run

__all__ = [
    "AnalysisSettings",
    "BeadAnalysis",
    "PlateauResult",
    "RunAnalysis",
    "analyze_run",
    "analyze_tracks",
]
