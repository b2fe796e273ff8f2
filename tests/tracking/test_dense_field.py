"""QI on a dense field: beads one ROI apart, whose neighbours' rings reach into each ROI.

There QI's step may go only part of the way to its fixed point (a fourth of it on some of the
sim microscope's beads): taken as measured, its steps shrink by a constant ratio, up to 7 passes
that stop a tenth of a pixel short of where they lead. ``magacq.tracking`` extrapolates such a
series (Aitken).
"""

import functools

import numpy as np
import pytest

from magacq.tracking import cut_rois, track_rois
from simulators.driver import SimCamera

ROI = 64
N_FRAMES = 4


@functools.cache
def _field() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROIs ``(frames x 100 beads, 64, 64)`` of the sim microscope's 100 beads 64 px apart, and
    each bead's true x, y within its ROI (pixel centres at integers)."""
    settings = {"width": 688, "height": 688, "n_beads": 100, "roi_size": ROI, "seed": 0}
    with SimCamera(settings) as cam:
        frames = np.empty((N_FRAMES, cam.height, cam.width), dtype=cam.dtype)
        cam.start(N_FRAMES)
        truth = []
        for f in frames:
            truth.append(cam.ground_truth(cam.read_frame(f, timeout=10.0).frame_number))
        cam.stop()
        px, corner = cam.pixel_size_nm, np.round(cam.bead_xy_px).astype(int) - ROI // 2
    rois = cut_rois(frames, corner[:, 0], corner[:, 1], ROI).reshape(-1, ROI, ROI)
    x = np.concatenate([t.x_nm / px - corner[:, 0] - 0.5 for t in truth])
    y = np.concatenate([t.y_nm / px - corner[:, 1] - 0.5 for t in truth])
    return rois, x, y


def test_qi_converges_within_three_passes_on_a_dense_field() -> None:
    rois, _, _ = _field()
    three = track_rois(rois, method="qi", iterations=3)
    ten = track_rois(rois, method="qi", iterations=10)
    assert np.array_equal(three.x, ten.x) and np.array_equal(three.y, ten.y)


@pytest.mark.parametrize("method, rms_px", [("qi", 0.032), ("fit", 0.012)])
def test_xy_error_on_a_dense_field(method: str, rms_px: float) -> None:
    """Against the simulator's truth (QI's steps as measured: 0.039 px rms, extrapolated 0.028)."""
    rois, x, y = _field()
    res = track_rois(rois, method=method)
    assert np.isfinite(res.x).all()
    assert np.sqrt(np.mean((res.x - x) ** 2 + (res.y - y) ** 2)) <= rms_px
