"""One call tracks frames x beads, each bead against its own Z-LUT, whatever the ROI dtype."""

import dataclasses

import numpy as np
import pytest

from magacq.tracking import cut_rois, track_rois
from simulators.optics import BeadImager, OpticsParams

from .conftest import ROI, Bead, calibrate


def test_each_bead_is_measured_against_its_own_lut(bead):
    # A second, larger bead: different rings, so a different Z-LUT.
    rng = np.random.default_rng(7)
    imager_b = BeadImager(dataclasses.replace(OpticsParams(), bead_radius_nm=1600.0), ROI)
    bead_b = Bead(imager_b, calibrate(imager_b, rng, bead.zlut.spec), rng)
    luts = dataclasses.replace(
        bead.zlut, planes=np.concatenate([bead.zlut.planes, bead_b.zlut.planes])
    )
    n_frames = 20
    z = rng.uniform(-1800.0, -400.0, n_frames)
    xy = 32 + rng.uniform(-1, 1, (2, n_frames))
    # frames x beads, bead-minor, as the workers cut them
    stack = np.stack([bead.stack(*xy, z), bead_b.stack(*xy, z)], axis=1).reshape(-1, ROI, ROI)
    own = np.tile([0, 1], n_frames)
    res = track_rois(stack, own, luts)
    assert (res.flags == 0).all()
    assert np.abs(res.z - np.repeat(z, 2)).max() < 3.0
    swapped = track_rois(stack, 1 - own, luts)
    assert np.nanmax(np.abs(swapped.z - np.repeat(z, 2))) > 20.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32])
def test_rois_of_other_types_track_like_counts(bead, dtype):
    rois = bead.stack(np.array([31.2, 33.6]), np.array([32.9, 30.4]), np.array([-1500.0, -600.0]))
    a = track_rois(rois, None, bead.zlut)
    b = track_rois(rois.astype(dtype), None, bead.zlut)
    np.testing.assert_allclose(b.x, a.x, atol=1e-9)
    np.testing.assert_allclose(b.z, a.z, atol=1e-6)
    np.testing.assert_array_equal(b.flags, a.flags)
    np.testing.assert_allclose(b.profiles, a.profiles, rtol=1e-12)


def test_cut_rois_cuts_every_bead_of_every_frame_from_a_strided_stack():
    rng = np.random.default_rng(2)
    stack = rng.integers(0, 4096, (80, 60, 5), dtype=np.uint16)  # (width, height, frames)
    frames = stack.T  # (frames, height, width), not contiguous, as VideoBuffer hands them out
    # out of order, overlapping, two on the same rows: cut row by row down the frame
    x0, y0 = np.array([0, 47, 20, 14]), np.array([30, 0, 11, 11])
    cut = cut_rois(frames, x0, y0, 13)
    assert cut.shape == (20, 13, 13) and cut.flags.c_contiguous and cut.dtype == np.uint16
    for f in range(5):
        for b in range(4):
            np.testing.assert_array_equal(
                cut[f * 4 + b], frames[f, y0[b] : y0[b] + 13, x0[b] : x0[b] + 13]
            )
    assert cut_rois(frames, np.array([], int), np.array([], int), 13).shape == (0, 13, 13)
    with pytest.raises(ValueError, match="outside"):
        cut_rois(frames, np.array([68]), np.array([0]), 13)
    with pytest.raises(ValueError, match="outside"):
        cut_rois(frames, np.array([0]), np.array([-1]), 13)
