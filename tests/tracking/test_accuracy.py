"""Issue 5's accuracy targets against the simulator's ground truth."""

import numpy as np
import pytest

from magacq.tracking import TrackFlag, XYMethod, track_rois

from .conftest import Z_RANGE, Z_STEP

NM_PER_PX = 100.0


def _random_positions(bead, n: int):
    x = 32 + bead.rng.uniform(-2, 2, n)
    y = 32 + bead.rng.uniform(-2, 2, n)
    z = bead.rng.uniform(Z_RANGE[0] + Z_STEP, Z_RANGE[1] - Z_STEP, n)
    return x, y, z


def test_rms_error_over_random_positions_and_heights(bead):
    x, y, z = _random_positions(bead, 300)
    res = track_rois(bead.stack(x, y, z), np.zeros(300, dtype=int), bead.zlut)
    assert (res.flags == 0).all()
    err_xy = np.hypot(res.x - x, res.y - y) * NM_PER_PX
    err_z = res.z - z
    assert np.sqrt(np.mean(err_xy**2)) <= 1.0
    assert np.sqrt(np.mean(err_z**2)) <= 5.0
    assert abs(err_z.mean()) <= 2.0


@pytest.mark.parametrize("z", [-1700.0, -1100.0, -450.0])
def test_precision_and_bias_at_a_fixed_position(bead, z):
    n = 150
    x, y = 31.7 + np.zeros(n), 32.4 + np.zeros(n)
    res = track_rois(bead.stack(x, y, np.full(n, z)), None, bead.zlut)
    assert (res.flags == 0).all()
    assert np.std(res.x) * NM_PER_PX <= 0.3
    assert np.std(res.y) * NM_PER_PX <= 0.3
    assert np.std(res.z) <= 0.4
    assert abs(res.z.mean() - z) <= 2.0
    assert abs(res.x.mean() - x[0]) * NM_PER_PX <= 1.0
    assert abs(res.y.mean() - y[0]) * NM_PER_PX <= 1.0


@pytest.mark.parametrize(
    ("method", "xy_rms_nm"),
    [(XYMethod.COM, 60.0), (XYMethod.AUTOCONV, 3.0), (XYMethod.QI, 1.0), (XYMethod.FIT, 1.0)],
)
def test_every_xy_method_finds_the_bead(bead, method, xy_rms_nm):
    x, y, z = _random_positions(bead, 60)
    res = track_rois(bead.stack(x, y, z), None, bead.zlut, method=method.name.lower())
    assert (res.flags & ~TrackFlag.XY_NOT_CONVERGED == 0).all()
    err = np.hypot(res.x - x, res.y - y) * NM_PER_PX
    assert np.sqrt(np.mean(err**2)) <= xy_rms_nm
