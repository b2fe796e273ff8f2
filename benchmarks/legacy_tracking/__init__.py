"""Frozen copy of magacq.tracking's kernel as of commit ab18cdd (before issue 30's faster
kernel), kept only so that bench_tracking.py can measure the new kernel against the previous
one in the same run: its ``_track``, ``_xy``, ``_sampling``, ``_simd`` and ``_zmatch``; flags,
geometry and Z-LUTs come from magacq.tracking. Not part of the package.
"""

from ._track import track_rois

__all__ = ["track_rois"]
