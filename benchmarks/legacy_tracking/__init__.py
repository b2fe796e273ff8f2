"""Frozen copy of magacq.tracking as of commit f3de644 (before issue 19's signal test and issue
20's faster kernel), kept only so that bench_tracking.py can measure the new kernel against the
old one in the same run. Not part of the package; delete once issue 20 has landed.
"""

from pathlib import Path

from ._cache import drop_stale_cache

drop_stale_cache(Path(__file__).parent)  # before any kernel is loaded from the cache

from ._flags import TrackFlag  # noqa: E402
from ._spec import ProfileSpec  # noqa: E402
from ._track import TrackResult, XYMethod, track_rois  # noqa: E402
from ._zlut import ZLut, build_zlut  # noqa: E402

__all__ = [
    "ProfileSpec",
    "TrackFlag",
    "TrackResult",
    "XYMethod",
    "ZLut",
    "build_zlut",
    "track_rois",
]
