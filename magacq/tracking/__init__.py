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

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._flags import TrackFlag  # numba-free: reading or writing a run file needs the flags only

if TYPE_CHECKING:
    from ._cut import cut_rois
    from ._detect import Bead, detect_beads
    from ._quality import bead_set_difference, zlut_verdict
    from ._spec import ProfileSpec
    from ._track import TrackResult, XYMethod, track_rois
    from ._tracker import Tracker, centroid
    from ._zlut import ZLut, build_zlut

    KERNEL_CACHE: Path | None

#: The names that load with the kernels, and their modules: imported together on the first use
#: of any of them (numba is slow to import; a process that only writes or reads run files does
#: without it), inside :func:`._cache.kernel_cache`, so numba caches them per user. Code that
#: imports a kernel's module directly uses one of these names first.
_KERNELS = {
    "cut_rois": "._cut",
    "Bead": "._detect",
    "detect_beads": "._detect",
    "bead_set_difference": "._quality",
    "zlut_verdict": "._quality",
    "ProfileSpec": "._spec",
    "TrackResult": "._track",
    "XYMethod": "._track",
    "track_rois": "._track",
    "Tracker": "._tracker",
    "centroid": "._tracker",
    "ZLut": "._zlut",
    "build_zlut": "._zlut",
}


def __getattr__(name: str) -> Any:
    if name != "KERNEL_CACHE" and name not in _KERNELS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ._cache import kernel_cache

    with kernel_cache(Path(__file__).parent) as cache:
        found = {n: getattr(importlib.import_module(m, __name__), n) for n, m in _KERNELS.items()}
    globals().update(found, KERNEL_CACHE=cache)
    return globals()[name]


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
