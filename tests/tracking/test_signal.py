"""A bead whose rings show is tracked across the simulator's +-5 um; an ROI without one is not.

Issue 19: the noise used to come from the spread of the ROI's border, which the rings of a bead
3-4.5 um below focus fill, so visible beads came back NO_SIGNAL and Z-LUTs had holes. Images
from two independent optical models (ours and magtrack's), 300-4000 photons per pixel.
"""

import numpy as np
import pytest

from magacq.tracking import ProfileSpec, TrackFlag, build_zlut, track_rois
from simulators.noise import to_counts

from ._models import MODELS, READ_NOISE_E, counts

Z_FULL = np.linspace(-5000.0, 5000.0, 21)
PHOTONS = (300.0, 1000.0, 4000.0)
LOST = TrackFlag.NO_SIGNAL | TrackFlag.OUTSIDE_ROI


def _beads_at(roi: int, offset: tuple[float, float], rng: np.random.Generator):
    """Every height of Z_FULL at every photon budget, centres ``offset`` px from the middle."""
    z = np.tile(Z_FULL, len(PHOTONS))
    r = rng.uniform(*offset, len(z))
    angle = rng.uniform(0, 2 * np.pi, len(z))
    return roi / 2 + r * np.cos(angle), roi / 2 + r * np.sin(angle), z


def _stack(model, roi, x, y, z, rng):
    per = len(Z_FULL)
    parts = [
        counts(model, roi, x[i * per : (i + 1) * per], y[i * per : (i + 1) * per],
               z[i * per : (i + 1) * per], p, rng)
        for i, p in enumerate(PHOTONS)
    ]  # fmt: skip
    return np.concatenate(parts)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("roi", [64, 48, 32])
def test_visible_beads_are_tracked_from_5_um_below_to_5_um_above_focus(model, roi):
    rng = np.random.default_rng(roi)
    x, y, z = _beads_at(roi, (0.0, 2.0), rng)
    res = track_rois(_stack(model, roi, x, y, z, rng))
    assert not (res.flags & LOST).any(), z[(res.flags & LOST) != 0]
    assert np.hypot(res.x - x, res.y - y).max() < 0.2  # px (0.1 px at most, measured)
    assert np.isfinite(res.profiles).all()


@pytest.mark.parametrize("model", MODELS)
def test_beads_whose_rings_the_roi_edge_cuts_are_tracked(model):
    rng = np.random.default_rng(3)
    x, y, z = _beads_at(64, (12.0, 20.0), rng)  # 12-20 px from the edge: rings cut off
    res = track_rois(_stack(model, 64, x, y, z, rng))
    assert not (res.flags & LOST).any(), z[(res.flags & LOST) != 0]
    assert (res.flags & TrackFlag.PROFILE_CLIPPED).all()
    assert np.hypot(res.x - x, res.y - y).max() < 0.1


@pytest.mark.parametrize("roi", [64, 32, 16])
def test_an_roi_without_a_bead_has_no_signal(roi):
    rng = np.random.default_rng(roi)
    blank = np.concatenate(
        [to_counts(np.ones((100, roi, roi)), p, READ_NOISE_E, 16, rng) for p in PHOTONS]
        + [np.full((1, roi, roi), 4000, np.uint16), np.zeros((1, roi, roi), np.uint16)]
    )
    res = track_rois(blank)
    assert (res.flags == TrackFlag.NO_SIGNAL).all()
    assert np.isnan(res.x).all() and np.isnan(res.y).all() and np.isnan(res.profiles).all()


def test_a_bead_centred_outside_the_roi_is_not_given_a_centre_inside():
    """Its outer rings show (not NO_SIGNAL), but no centre inside the ROI fits them."""
    rng = np.random.default_rng(4)
    z = np.tile([-4500.0, -3000.0, -1000.0, 1000.0, 3000.0], 2)
    x = np.repeat([-3.0, -6.0], 5)
    res = track_rois(counts("simulator", 64, x, np.full(10, 32.0), z, 2000.0, rng))
    assert (res.flags & TrackFlag.OUTSIDE_ROI).all()
    assert np.isnan(res.x).all()


@pytest.mark.parametrize("model", MODELS)
def test_a_zlut_swept_over_the_full_range_has_no_holes(model):
    """A calibration sweep over +-5 um at 2000 photons/px: every plane filled, z good all over."""
    rng = np.random.default_rng(5)
    roi, step, per_plane = 64, 50.0, 4
    z_cal = np.repeat(np.arange(-5000.0, 5000.0 + 1, step), per_plane)
    xy = roi / 2 + rng.uniform(-0.5, 0.5, (2, len(z_cal)))
    spec = ProfileSpec.for_roi(roi)
    cal = track_rois(counts(model, roi, xy[0], xy[1], z_cal, 2000.0, rng), spec=spec)
    assert (cal.flags == TrackFlag.NO_LUT).all()
    lut = build_zlut(cal.profiles, z_cal, step, spec)
    assert np.isfinite(lut.planes).all()
    z = rng.uniform(-5000.0 + step, 5000.0 - step, 100)
    xy = roi / 2 + rng.uniform(-2, 2, (2, len(z)))
    res = track_rois(counts(model, roi, xy[0], xy[1], z, 2000.0, rng), None, lut)
    assert (res.flags == 0).all(), (z[res.flags != 0], res.flags[res.flags != 0])
    err = res.z - z
    assert np.sqrt(np.mean(err**2)) < 5.0 and np.abs(err).max() < 25.0
