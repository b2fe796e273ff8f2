"""Quality flags: what tracking reports when a bead leaves its ROI or its Z-LUT's range."""

import numpy as np
import pytest

from magacq.tracking import TrackFlag, track_rois

from .conftest import Z_RANGE


def test_out_of_lut_range_is_nan_and_flagged(bead):
    z = np.array([Z_RANGE[0] - 150.0, Z_RANGE[1] + 150.0, -1000.0])
    res = track_rois(bead.stack(np.full(3, 32.2), np.full(3, 31.9), z), None, bead.zlut)
    assert res.flags[0] == TrackFlag.Z_BELOW_RANGE and np.isnan(res.z[0])
    assert res.flags[1] == TrackFlag.Z_ABOVE_RANGE and np.isnan(res.z[1])
    assert res.flags[2] == TrackFlag.NONE and abs(res.z[2] + 1000.0) < 5.0
    assert np.isfinite(res.x).all() and np.isfinite(res.y).all()


def test_far_outside_the_lut_or_across_focus_is_never_a_wrong_z(bead):
    """Without a match-quality check these gave z = -1351, -200, -200, -585 and -1037 nm."""
    z = np.array([-6000.0, -5000.0, 200.0, 500.0, 1000.0])
    res = track_rois(bead.stack(np.full(5, 32.2), np.full(5, 31.9), z), None, bead.zlut)
    assert np.isnan(res.z).all()
    assert (res.flags == TrackFlag.Z_POOR_MATCH).all()
    assert np.isfinite(res.x).all() and np.isfinite(res.y).all()


def test_dim_beads_inside_the_lut_still_match(bead):
    z = np.linspace(Z_RANGE[0] + 10.0, Z_RANGE[1] - 10.0, 30)
    xy = 32.0 + bead.rng.uniform(-0.5, 0.5, (2, len(z)))
    res = track_rois(bead.stack(xy[0], xy[1], z, photons=300.0), None, bead.zlut)
    assert not (res.flags & TrackFlag.Z_POOR_MATCH).any()
    assert np.isfinite(res.z).all() and np.abs(res.z - z).max() < 15.0


def test_bead_near_and_beyond_the_roi_edge(bead):
    # 12 px from the edge: some circles clipped, z still good; 6 px: x, y still good, but over
    # a third of the samples are outside, so no z; centre beyond the ROI: nothing to report.
    x = np.array([12.0, 6.0, -3.0])
    res = track_rois(bead.stack(x, np.full(3, 32.0), np.full(3, -1000.0)), None, bead.zlut)
    assert res.flags[0] == TrackFlag.PROFILE_CLIPPED
    assert abs(res.x[0] - 12.0) < 0.02 and abs(res.z[0] + 1000.0) < 5.0
    assert res.flags[1] == TrackFlag.PROFILE_CLIPPED | TrackFlag.PROFILE_INCOMPLETE
    assert abs(res.x[1] - 6.0) < 0.05 and np.isnan(res.z[1])
    assert np.isnan(res.z[2]) and np.isnan(res.x[2])
    assert res.flags[2] & (TrackFlag.OUTSIDE_ROI | TrackFlag.NO_SIGNAL)


def test_blank_roi_has_no_signal(bead):
    blank = bead.rng.poisson(4000.0, (2, 64, 64)).astype(np.uint16)
    blank[1] = 4000  # perfectly flat
    res = track_rois(blank, None, bead.zlut)
    assert np.isnan(res.z).all()
    assert (res.flags[1] & TrackFlag.NO_SIGNAL) and np.isnan(res.x[1])


def test_per_roi_lut_index(bead):
    stack = bead.stack(np.full(2, 32.0), np.full(2, 32.0), np.full(2, -900.0))
    res = track_rois(stack, np.array([0, -1]), bead.zlut)
    assert res.flags[1] == TrackFlag.NO_LUT and np.isnan(res.z[1]) and np.isfinite(res.x[1])
    assert abs(res.z[0] + 900.0) < 5.0
    with pytest.raises(ValueError, match="Z-LUT"):
        track_rois(stack, np.array([0, 1]), bead.zlut)
    with pytest.raises(ValueError, match="shape"):
        track_rois(stack, np.array([0]), bead.zlut)
    with pytest.raises(ValueError):
        track_rois(stack[:, :10], None, bead.zlut)


@pytest.mark.parametrize("method", ["autoconv", "qi"])
def test_a_feature_on_one_row_only_is_found(bead, method):
    # The refinements start from a centre of mass over every second row, then over all rows if
    # that finds nothing: a feature on an odd row alone is still a signal.
    roi = bead.rng.poisson(4000.0, (1, 64, 64)).astype(np.uint16)
    roi[0, 33, 29:36] = 9000
    res = track_rois(roi, method=method)
    assert not res.flags[0] & TrackFlag.NO_SIGNAL
    assert abs(res.y[0] - 33.0) < 0.5 and abs(res.x[0] - 32.0) < 0.5
