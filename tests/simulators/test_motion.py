"""Bead motion: WLC extension, OU statistics (variance kT/k, correlation time), stuck beads."""

import numpy as np
import pytest

from simulators.motion import MotionParams, StageDrift, TetheredBeads, wlc_extension, wlc_force


def test_wlc_inverse_and_monotonic():
    kt = 4.09
    for f in (0.1, 1.0, 5.0, 20.0):
        ext = wlc_extension(f, 3400.0, 50.0, kt)
        assert wlc_force(ext, 3400.0, 50.0, kt) == pytest.approx(f, rel=1e-6)
    assert wlc_extension(1.0, 3400, 50, kt) < wlc_extension(5.0, 3400, 50, kt) < 3400


def test_stiffer_at_higher_force():
    lo, hi = MotionParams(force_pn=0.5).stiffness, MotionParams(force_pn=5.0).stiffness
    assert hi[0] > lo[0] and hi[1] > lo[1]


def test_ou_variance_and_correlation_match_theory():
    p = MotionParams(force_pn=2.0)
    n = 4000
    beads = TetheredBeads(np.zeros((n, 2)), np.zeros(n, bool), p, np.random.default_rng(0))
    tau = beads.tau[0]  # every bead has the same force here
    dt = 0.5 * tau.min()
    x0 = beads.positions - beads.mean
    x1 = beads.step(dt) - beads.mean
    k_theory = np.array(p.stiffness)
    var = x1.var(axis=0)
    np.testing.assert_allclose(var, p.kt / k_theory[[0, 0, 1]], rtol=0.08)
    rho = [np.corrcoef(x0[:, i], x1[:, i])[0, 1] for i in range(3)]
    np.testing.assert_allclose(rho, np.exp(-dt / tau), atol=0.05)


def test_mean_height_is_extension_plus_radius_and_stuck_beads_still():
    p = MotionParams()
    stuck = np.array([True, False])
    beads = TetheredBeads(np.array([[0.0, 0.0], [5000.0, 0.0]]), stuck, p, np.random.default_rng(1))
    first = beads.positions.copy()
    for _ in range(10):
        pos = beads.step(0.01)
    np.testing.assert_array_equal(pos[0], first[0])
    assert pos[0, 2] == p.bead_radius_nm
    assert beads.mean[1, 2] == pytest.approx(p.extension_nm + p.bead_radius_nm)
    assert not np.array_equal(pos[1], first[1])


def test_frozen_beads_do_not_move():
    beads = TetheredBeads(
        np.zeros((3, 2)),
        np.zeros(3, bool),
        MotionParams(),
        np.random.default_rng(2),
        brownian=False,
    )
    np.testing.assert_array_equal(beads.step(1.0), beads.mean)


def test_drift_velocity():
    d = StageDrift((1.0, -2.0, 0.5), 0.0, np.random.default_rng(3))
    for _ in range(10):
        off = d.step(0.1)
    np.testing.assert_allclose(off, [1.0, -2.0, 0.5])
