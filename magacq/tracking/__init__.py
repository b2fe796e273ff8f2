"""Bead tracking: pure functions on batches of ROIs (n = frames x beads).

``track_rois`` turns a stack of ROIs into x, y (pixels within the ROI), z (nm from the bead's
Z-LUT), quality flags and radial profiles; ``build_zlut`` turns calibration profiles into Z-LUTs.
"""

from ._flags import TrackFlag
from ._spec import ProfileSpec
from ._track import TrackResult, XYMethod, track_rois
from ._zlut import ZLut, build_zlut

__all__ = [
    "ProfileSpec",
    "TrackFlag",
    "TrackResult",
    "XYMethod",
    "ZLut",
    "build_zlut",
    "track_rois",
]
