"""Frozen copy of magacq.tracking's kernel as of commit f3de644 (before issue 19's signal test and
issue 20's faster kernel), kept only so that bench_tracking.py can measure the new kernel against
the old one in the same run: its ``_track``, ``_xy`` and ``_sampling``; flags, geometry, Z-LUTs
and the Z match come from magacq.tracking (unchanged since). Not part of the package; delete
once issue 20 has landed.
"""

from ._track import track_rois

__all__ = ["track_rois"]
