"""Offline work on run files: `magacq retrack` (re-tracking recorded video on Dask)."""

from ._retrack import RetrackJob, retrack, track_stack

__all__ = ["RetrackJob", "retrack", "track_stack"]
