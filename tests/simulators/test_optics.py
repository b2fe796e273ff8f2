"""Bead image model: rings, z dependence over +-5 um, sub-pixel exactness and smoothness."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from simulators.optics import BeadImager, OpticsParams


@pytest.fixture(scope="module")
def imager() -> BeadImager:
    return BeadImager(OpticsParams(), 64)


@pytest.fixture(scope="module")
def lut(imager):
    """Profiles (to 32 px) every 25 nm over +-5 um, as a Z-LUT would hold them."""
    zs = np.arange(-5000.0, 5001.0, 25.0)
    n = int(32 / imager.DR_PX)
    return zs, np.array([imager.profile(z)[:n] for z in zs])


def test_background_is_one_far_from_bead(imager):
    img = imager.render(32.0, 32.0, -1500.0)
    assert img.shape == (64, 64) and img.dtype == np.float64
    assert abs(img[0, 0] - 1.0) < 0.2
    assert abs(img[32, 32] - 1.0) > 0.2


def test_rings(imager):
    for z in (-4000.0, -1500.0, 0.0, 3000.0):
        prof = imager.profile(z)[: int(25 / imager.DR_PX)]
        d = np.diff(prof)
        extrema = np.count_nonzero(np.sign(d[1:]) != np.sign(d[:-1]))
        assert extrema >= 4, f"no ring structure at z = {z}"


def test_pattern_changes_with_z_and_side_of_focus(imager):
    a, b = imager.profile(-2000.0), imager.profile(2000.0)
    assert np.sqrt(np.mean((a - b) ** 2)) > 0.05  # above and below focus differ


def test_lut_25nm_steps_distinct_and_unambiguous(lut):
    zs, p = lut
    dist = cdist(p, p) / np.sqrt(p.shape[1])  # RMS difference of every pair of profiles
    neighbour = np.diag(dist, 1)
    assert neighbour.min() > 2e-3  # each 25 nm step changes the profile
    n = len(zs)
    far = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) > 8  # > 200 nm apart
    for i in range(n):
        near = max(dist[i, max(i - 1, 0)], dist[i, min(i + 1, n - 1)])
        assert dist[i][far[i]].min() > 2 * near, f"z = {zs[i]} is ambiguous"


def test_smooth_in_z(lut):
    _, p = lut
    first = np.sqrt(((p[2:] - p[:-2]) ** 2).mean(axis=1)) / 2
    second = np.sqrt(((p[2:] - 2 * p[1:-1] + p[:-2]) ** 2).mean(axis=1))
    assert (second / first).max() < 0.5


def test_integer_shift_is_exact_translation(imager):
    a = imager.render(30.0, 31.0, -1000.0)
    b = imager.render(31.0, 31.0, -1000.0)
    np.testing.assert_allclose(b[:, 1:], a[:, :-1], atol=1e-12)


def test_half_pixel_position_is_mirror_symmetric(imager):
    img = imager.render(31.5, 32.0, -1000.0)
    np.testing.assert_allclose(img, img[:, ::-1], atol=1e-12)  # about column 31.5
    np.testing.assert_allclose(img[1:, :], img[1:, :][::-1, :], atol=1e-12)  # about row 32


def test_smooth_in_subpixel_x(imager):
    ts = np.linspace(0.0, 1.0, 41)
    imgs = np.array([imager.render(31.0 + t, 32.0, -1500.0) for t in ts])
    # No jumps (as shift-by-rounding would give): steps of 1/40 px change pixels smoothly.
    assert np.abs(np.diff(imgs, axis=0)).max() < 0.05
    assert np.abs(np.diff(imgs, 2, axis=0)).max() < 0.005


def test_render_beads_matches_render(imager):
    imager.prepare_table(-3000.0, 3000.0, 10.0)
    frame = np.ones((80, 96), np.float32)
    imager.render_beads(frame, np.array([40.3]), np.array([37.8]), np.array([-1234.0]))
    roi = imager.render(40.3 - 8, 37.8 - 5, -1234.0)  # ROI whose corner is frame (8, 5)
    np.testing.assert_allclose(frame[6:68, 9:71], roi[1:63, 1:63], atol=2e-3)


def test_params_validated():
    with pytest.raises(ValueError):
        OpticsParams(na=0)
    assert OpticsParams().camera_pixel_um == pytest.approx(10.0)
