"""Bead tracking: pure functions on batches of ROIs (n = frames x beads).

``track_rois`` turns a stack of ROIs into x, y (pixels within the ROI, pixel centres at
integers), z (nm, from the bead's own Z-LUT), ``TrackFlag`` bits and radial profiles;
``build_zlut`` turns calibration profiles into Z-LUTs. Per ROI: background-subtracted centre of
mass, then the symmetric self-convolution of the row and column profiles, then (``XYMethod``)
quadrant interpolation or a least-squares fit of the image by its own radial profile; the profile
is the mean of bilinear samples on circles about the centre; z is where the normalised profile
best fits a quadratic through the nearest Z-LUT planes. numba, single-threaded, cached on disk.
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
