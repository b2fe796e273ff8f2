"""Force calibration on simulated beads of known force: accuracy, uncertainty, bias of the
models that ignore the camera, and the warnings."""

import numpy as np
import pytest

from magacq.analysis import (
    allan_covariance,
    allan_variance,
    calibrate_force,
    equipartition_force,
    fit_allan,
    fit_spectrum,
)
from tests.analysis.conftest import Beads, simulate

FORCES = (0.1, 0.3, 1.0, 3.0, 10.0, 20.0)


def _spectral(beads: Beads, **kw) -> list:
    return [fit_spectrum(x, beads.frame_rate, beads.length_nm, exposure_s=beads.exposure_s,
                         kt=beads.kt, **kw) for x in beads.x]  # fmt: skip


@pytest.mark.parametrize("force", FORCES)
def test_spectral_force_within_5_percent_on_average(force: float) -> None:
    beads = simulate(force, 20, exposure_s=0.002, seed=int(force * 10))
    assert beads.corner_hz < beads.frame_rate / 2
    fits = _spectral(beads)
    ratio = np.mean([f.force_pn for f in fits]) / force
    assert abs(ratio - 1) < 0.05, ratio
    assert not any(f.warnings for f in fits), fits[0].warnings


def test_reported_uncertainty_covers_the_truth_at_95_percent() -> None:
    # 240 beads over the force range; the 95 % interval is F exp(+-1.96 err / F)
    z = []
    for i, force in enumerate(FORCES):
        beads = simulate(force, 40, exposure_s=0.003, taus=100, min_frames=4000, seed=100 + i)
        for fit in _spectral(beads):
            z.append(np.log(fit.force_pn / force) / (fit.force_err_pn / fit.force_pn))
    inside = np.mean(np.abs(z) < 1.96)
    # binomial: 240 beads at p = 0.95 gives 0.95 +- 0.014
    assert 0.91 < inside < 0.99, inside
    assert np.std(z) == pytest.approx(1.0, abs=0.15)


def test_allan_uncertainty_covers_the_truth_at_95_percent() -> None:
    # the octave estimates are correlated: the sandwich error (their exact covariance) holds
    z = []
    for i, force in enumerate(FORCES):
        beads = simulate(force, 40, exposure_s=0.003, taus=100, min_frames=4000, seed=200 + i)
        for x in beads.x:
            fit = fit_allan(x, beads.frame_rate, beads.length_nm, exposure_s=beads.exposure_s,
                            kt=beads.kt)  # fmt: skip
            z.append(np.log(fit.force_pn / force) / (fit.force_err_pn / fit.force_pn))
    inside = np.mean(np.abs(z) < 1.96)
    assert 0.91 < inside < 0.99, inside
    assert np.std(z) == pytest.approx(1.0, abs=0.15)


def test_allan_covariance_is_the_scatter_of_the_estimates() -> None:
    beads = simulate(3.0, 300, exposure_s=0.002, taus=100, min_frames=4000, seed=9)
    m, _, _ = allan_variance(beads.x[0], beads.frame_rate)
    avs = np.array([allan_variance(x, beads.frame_rate)[2] for x in beads.x])
    var, tau = beads.kt * beads.length_nm / beads.force_pn, 1 / (2 * np.pi * beads.corner_hz)
    model = allan_covariance(m, beads.x.shape[1], var, tau, beads.frame_rate, beads.exposure_s)
    seen = np.cov(avs.T)
    # 300 beads: a standard deviation is known to +-4 %, a correlation to +-0.04
    assert np.sqrt(np.diag(seen) / np.diag(model)) == pytest.approx(1.0, abs=0.12)
    corr = [c / np.sqrt(np.outer(np.diag(c), np.diag(c))) for c in (seen, model)]
    assert np.diag(corr[0], 1) == pytest.approx(np.diag(corr[1], 1), abs=0.1)
    assert np.all(np.diag(corr[1], 1) > 0.4)  # far from independent


def test_ignoring_blur_and_aliasing_is_biased_at_high_force() -> None:
    # 20 pN: corner at 26 Hz, frames at 200 Hz
    blurred = simulate(20.0, 20, exposure_s=0.005, seed=7)  # exposure = the frame period
    camera = np.mean([f.force_pn for f in _spectral(blurred)]) / 20
    lorentz = np.mean([f.force_pn for f in _spectral(blurred, model="lorentzian")]) / 20
    equip = np.mean([equipartition_force(x, blurred.length_nm, kt=blurred.kt).force_pn
                     for x in blurred.x]) / 20  # fmt: skip
    assert abs(camera - 1) < 0.03
    assert lorentz > 1.08  # blur hides variance: the force comes out high
    assert equip > 1.2
    sharp = simulate(20.0, 20, exposure_s=0.0, seed=8)
    lorentz = np.mean([f.force_pn for f in _spectral(sharp, model="lorentzian")]) / 20
    assert lorentz < 0.85  # aliasing folds power back below Nyquist: the force comes out low
    assert abs(np.mean([f.force_pn for f in _spectral(sharp)]) / 20 - 1) < 0.03


def test_the_camera_model_matters_little_where_fc_is_low() -> None:
    beads = simulate(0.3, 10, exposure_s=0.005, seed=9)
    camera = np.array([f.force_pn for f in _spectral(beads)])
    lorentz = np.array([f.force_pn for f in _spectral(beads, model="lorentzian")])
    assert np.allclose(camera, lorentz, rtol=0.03)


@pytest.mark.parametrize("force", (0.3, 3.0, 20.0))
def test_allan_force_within_5_percent_on_average(force: float) -> None:
    beads = simulate(force, 20, exposure_s=0.004, seed=int(force * 10) + 1)
    fits = [fit_allan(x, beads.frame_rate, beads.length_nm, exposure_s=beads.exposure_s,
                      kt=beads.kt) for x in beads.x]  # fmt: skip
    assert abs(np.mean([f.force_pn for f in fits]) / force - 1) < 0.05


def test_corner_near_nyquist_is_warned_about() -> None:
    fast = simulate(20.0, 1, frame_rate=60.0, seed=3)  # corner 26 Hz, Nyquist 30 Hz
    (fit,) = _spectral(fast)
    assert any("Nyquist" in w for w in fit.warnings)
    short = simulate(0.1, 1, min_frames=2000, taus=1, seed=4)  # 10 s of a 0.8 s corner
    assert any("correlation times" in w for w in calibrate_force(
        short.x[0], short.frame_rate, short.length_nm, kt=short.kt).warnings)  # fmt: skip


def test_calibration_gives_all_three_and_the_corner() -> None:
    beads = simulate(3.0, 1, exposure_s=0.002, seed=5)
    cal = calibrate_force(beads.x[0], beads.frame_rate, beads.length_nm,
                          exposure_s=beads.exposure_s, kt=beads.kt)  # fmt: skip
    for est in (cal.spectrum, cal.allan, cal.equipartition):
        assert est.force_pn == pytest.approx(3.0, rel=0.15)
        assert 0 < est.force_err_pn < 0.15 * 3.0
    assert cal.spectrum.corner_hz == pytest.approx(beads.corner_hz, rel=0.15)
    f = cal.spectrum.freq_hz
    assert np.all(np.diff(f) > 0) and len(f) == len(cal.spectrum.psd_nm2_hz)
    assert np.all(cal.spectrum.model_psd(f) > 0)


@pytest.mark.parametrize(
    ("trace", "match"),
    [(np.zeros(10), "at least 64"), (np.full(500, np.nan), "NaN"), (np.zeros(500), "move")],
)
def test_bad_traces_are_refused(trace: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_spectrum(trace, 100.0, 3000.0)
