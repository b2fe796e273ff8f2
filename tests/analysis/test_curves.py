"""Drift correction, the WLC fit of a simulated force-extension run, and rotation curves."""

import numpy as np
import pytest

from magacq.analysis import (
    correct_drift,
    equipartition_force,
    fit_rotation_curve,
    fit_spectrum,
    fit_wlc,
    wlc_force,
)
from simulators.fluctuations import camera_trace
from simulators.motion import MotionParams
from tests.analysis.conftest import simulate


def test_drift_of_the_reference_beads_is_removed() -> None:
    rng = np.random.default_rng(2)
    beads = simulate(3.0, 4, exposure_s=0.002, seed=11)
    n = beads.x.shape[1]
    t = np.arange(n) / beads.frame_rate
    drift = 2.0 * t + np.cumsum(rng.standard_normal(n)) * 0.5  # 2 nm/s plus a random walk
    refs = drift + rng.standard_normal((3, n)) * 1.0 + np.array([[100.0], [-50.0], [7.0]])
    refs[0, ::50] = np.nan  # a reference bead lost now and then
    drifting = beads.x + drift + 500.0
    corrected = correct_drift(drifting, refs)
    # the variance sees the drift (a softer trap); the segments' spectra hardly do
    raw = [equipartition_force(x, beads.length_nm, kt=beads.kt).force_pn for x in drifting]
    assert np.mean(raw) < 0.5 * 3.0
    fixed = [equipartition_force(x, beads.length_nm, kt=beads.kt).force_pn for x in corrected]
    spectral = [fit_spectrum(x, 200.0, beads.length_nm, exposure_s=0.002, kt=beads.kt).force_pn
                for x in corrected]  # fmt: skip
    assert np.mean(spectral) == pytest.approx(3.0, rel=0.08)
    assert np.mean(fixed) == pytest.approx(3.0, rel=0.1)  # blur of 2 ms at 3 pN: +2 %
    assert np.all(np.isfinite(corrected))
    assert np.array_equal(correct_drift(beads.x, np.empty((0, n))), beads.x)
    with pytest.raises(ValueError, match="frames"):
        correct_drift(beads.x, refs[:, :-1])


def test_wlc_fit_of_a_simulated_force_extension_run_recovers_the_tether() -> None:
    # a force-extension run: 8 plateaus from 0.1 to 20 pN, each bead's y calibrating the force
    # and its z (bead centre above the anchor, l + R) giving the extension
    truth = MotionParams()
    rng = np.random.default_rng(21)
    fs, w = 200.0, 0.002
    ext, force, err = [], [], []
    for f_true in np.geomspace(0.1, 20.0, 8):
        mp = MotionParams(force_pn=f_true)
        (k_xy, k_z), g = mp.stiffness, mp.drag
        n = max(20000, int(300 * g / k_xy * fs))
        y = camera_trace(n, fs, k_xy, g, exposure_s=w, kt=mp.kt, rng=rng)
        z = mp.extension_nm + mp.bead_radius_nm + camera_trace(n, fs, k_z, g, exposure_s=w,
                                                               kt=mp.kt, rng=rng)  # fmt: skip
        fit = fit_spectrum(y, fs, float(np.mean(z)), exposure_s=w, kt=mp.kt)
        ext.append(np.mean(z) - mp.bead_radius_nm)
        force.append(fit.force_pn)
        err.append(fit.force_err_pn)
    wlc = fit_wlc(np.array(ext), np.array(force), np.array(err), kt=truth.kt)
    assert abs(wlc.contour_nm - truth.contour_nm) < 2 * wlc.contour_err_nm
    assert abs(wlc.persistence_nm - truth.persistence_nm) < 2 * wlc.persistence_err_nm
    assert wlc.persistence_err_nm < 0.3 * truth.persistence_nm  # errors that say something
    assert wlc.chi2 / wlc.dof < 4
    assert np.allclose(wlc.force(np.array(ext)), force, rtol=0.3)


def test_wlc_needs_three_plateaus() -> None:
    with pytest.raises(ValueError, match="3 plateaus"):
        fit_wlc([1000.0, 2000.0], [0.1, 1.0], [0.01, 0.1])


def test_wlc_force_is_marko_siggia() -> None:
    mp = MotionParams(force_pn=5.0)
    assert wlc_force(mp.extension_nm, mp.contour_nm, mp.persistence_nm, mp.kt) == pytest.approx(5.0)


def test_rotation_curve_buckling_point_and_slope() -> None:
    rng = np.random.default_rng(4)
    turns = np.arange(-30, 31, 2.0)
    # a hat at 0.5 pN: flat to +-8 turns, then 60 nm per turn lost on the positive side and
    # 45 on the negative, around a top shifted to +1 turn
    n = turns - 1.0
    z = 2800 - np.where(n > 8, 60 * (n - 8), 0) - np.where(n < -8, 45 * (-n - 8), 0)
    z = z + rng.standard_normal(len(turns)) * 10
    fit = fit_rotation_curve(turns, z)
    assert fit.positive is not None and fit.negative is not None
    for side, nb, slope in ((fit.positive, 9.0, 60.0), (fit.negative, -7.0, 45.0)):
        assert abs(side.buckling_turns - nb) < max(3 * side.buckling_err_turns, 1.0)
        assert abs(side.slope_nm_per_turn - slope) < 3 * side.slope_err_nm_per_turn
        assert side.plateau_nm == pytest.approx(2800, abs=30)


def test_a_side_that_does_not_buckle_is_none() -> None:
    turns = np.arange(-10, 11, 1.0)  # high force: the negative side melts, stays flat
    z = 3000 - np.where(turns > 3, 50 * (turns - 3), 0.0)
    fit = fit_rotation_curve(turns, z + np.random.default_rng(1).standard_normal(len(z)))
    assert fit.positive is not None and fit.negative is None
    assert fit.positive.buckling_turns == pytest.approx(3.0, abs=0.5)
    assert (fit.positive_kind, fit.negative_kind) == ("buckling", "denaturing")


@pytest.mark.parametrize("seed", range(5))
def test_a_flat_side_is_not_given_a_buckling_point(seed: int) -> None:
    # the case of the issue: a side that melts (flat within 15 nm of noise, a slight slope of
    # 1.3 nm per turn) was given a buckling point at -10 +- 8 turns
    rng = np.random.default_rng(seed)
    turns = np.repeat(np.arange(-30, 31, 5.0), 2)  # swept there and back
    z = 2700 - np.where(turns > 20, 65 * (turns - 20), 0.0) + 1.3 * np.minimum(turns, 0)
    fit = fit_rotation_curve(turns, z + rng.standard_normal(len(z)) * 15)
    assert fit.negative is None and fit.negative_kind == "denaturing"
    assert fit.positive_kind == "buckling"
    assert fit.positive.buckling_turns == pytest.approx(20, abs=2.5)


def test_a_curve_not_twisted_far_enough_neither_buckles() -> None:
    turns = np.arange(-10, 11, 2.0)
    z = 2700 + np.random.default_rng(2).standard_normal(len(turns)) * 10
    fit = fit_rotation_curve(turns, z)
    assert (fit.positive, fit.negative) == (None, None)
    assert (fit.positive_kind, fit.negative_kind) == ("neither", "neither")
