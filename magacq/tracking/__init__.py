"""Bead tracking: pure functions on batches of ROIs (n = frames x beads).

``track_rois`` turns a stack of ROIs into x, y (pixels within the ROI, pixel centres at
integers), z (nm, from the bead's own Z-LUT), ``TrackFlag`` bits and radial profiles;
``build_zlut`` turns calibration profiles into Z-LUTs; ``detect_beads`` finds ring-symmetric
beads in an image. Per ROI: background-subtracted centre of mass, then the symmetric
self-convolution of the row and column profiles, then (``XYMethod``) quadrant interpolation or a
least-squares fit of the image by its own radial profile; the profile is the mean of bilinear
samples on circles about the centre; z is where the normalised profile best fits a quadratic
through the nearest Z-LUT planes. numba, single-threaded, cached on disk (:mod:`._cache`).
"""

from pathlib import Path

from ._cache import kernel_cache

with kernel_cache(Path(__file__).parent) as KERNEL_CACHE:  # decorated here: cached per user
    from ._cut import cut_rois
    from ._detect import Bead, detect_beads
    from ._flags import TrackFlag
    from ._quality import bead_set_difference, zlut_verdict
    from ._spec import ProfileSpec
    from ._track import TrackResult, XYMethod, track_rois
    from ._tracker import Tracker, centroid
    from ._zlut import ZLut, build_zlut

__all__ = [
    "KERNEL_CACHE",
    "bead_set_difference",
    "cut_rois",
    "Bead",
    "ProfileSpec",
    "TrackFlag",
    "TrackResult",
    "Tracker",
    "XYMethod",
    "ZLut",
    "build_zlut",
    "centroid",
    "detect_beads",
    "track_rois",
    "zlut_verdict",
]
