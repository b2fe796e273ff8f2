"""The force fits on traces from an independent simulator (tweezepy's Langevin integrator,
sampled by our own camera average): the softest trap and the hardest camera."""

from functools import cache
from types import SimpleNamespace

import numpy as np
import pytest
from tweezepy.simulations import simulate_trace

from magacq.analysis import calibrate_force, fit_allan, fit_spectrum

GAMMA = 6 * np.pi * 1e-9 * 1400  # an M-270 bead in water, pN s / nm
KT = 4.1  # tweezepy's
FS = 60.0
#: the hardest camera: the corner at twice Nyquist (60 Hz at 60 frames/s)
HARD_KAPPA = 2 * np.pi * 60.0 * GAMMA


def _camera(kappa: float, seconds: float, exposure: float, seed: int, sub: int = 40,
            burn_s: float = 0.0) -> np.ndarray:  # fmt: skip
    """tweezepy's trace at ``sub`` x the frame rate, each frame the mean over its exposure;
    ``burn_s`` seconds dropped first (tweezepy starts the bead at the trap's centre, a real
    bead is in equilibrium when a hold starts)."""
    n, burn = int(seconds * FS), int(burn_s * FS)
    x = simulate_trace(GAMMA, kappa, FS * sub, (burn + n) * sub, seed)[burn * sub :]
    return x.reshape(n, sub)[:, : max(1, round(exposure * FS * sub))].mean(axis=1)


def test_softest_trap_is_unbiased_and_its_error_bars_cover_the_truth() -> None:
    # 0.05 pN at 10 um extension: a 6 s correlation time, 300 s at 60 Hz (50 of them). The
    # force `analyze` quotes here is the trace's exact likelihood (calibrate_force: under 200
    # correlation times) with its likelihood interval. On 800 of these traces (seeds 0-799) it
    # covers the truth in 67.4 % of fits (binomial sd 1.6 %; 18.6 % of intervals above the
    # truth, 14.0 % below), its ln F scatters by 0.209 (the spectrum's: 0.34), its variance is
    # unbiased (mean 1.004 x the truth) so its force's median is 1.026 x the truth. On the 240
    # here (seeds 0-239): 64.6 %. With 240 traces the fraction has sd 3.0 % at 68 %: the band
    # 0.59-0.77 is 68 % +- 3 sd (a false failure < 0.3 %). The spectrum and Allan fits, also in
    # the tables, are skewed and short here (61.3 % and 63.8 % on 800; 52.9 % and 57.1 % on
    # these 240): they keep their old band, 0.51-0.77, as a guard against getting worse.
    length = 10_000 + 1400
    kappa = 0.05 / length
    traces = [_camera(kappa, 300, 1 / FS, seed, sub=20, burn_s=60) for seed in range(240)]
    cals = [calibrate_force(x, FS, length, exposure_s=1 / FS, kt=KT) for x in traces]
    quoted = [c.force for c in cals]
    assert {q.method for q in quoted} == {"likelihood"}
    force = np.array([q.force_pn for q in quoted])
    assert np.exp(np.median(np.log(force / 0.05))) == pytest.approx(1.0, abs=0.1)
    covered = np.mean([q.force_lo_pn < 0.05 < q.force_hi_pn for q in quoted])
    assert 0.59 < covered < 0.77, covered
    for fits in ([c.spectrum for c in cals], [c.allan for c in cals]):
        force = np.array([f.force_pn for f in fits])
        assert np.exp(np.median(np.log(force / 0.05))) == pytest.approx(1.0, abs=0.1)
        z = np.log(force / 0.05) / np.array([f.force_err_pn / f.force_pn for f in fits])
        assert 0.51 < np.mean(np.abs(z) < 1) < 0.77, np.mean(np.abs(z) < 1)


@cache
def _hardest_traces() -> tuple[np.ndarray, ...]:
    """30 traces of the hardest camera, simulated once for both fits (5 s of the suite)."""
    return tuple(_camera(HARD_KAPPA, 100, 0.25 / FS, seed, sub=400) for seed in range(30))


def _quoted(x: np.ndarray, frame_rate: float, length: float, **kw: float) -> SimpleNamespace:
    """The force `analyze` quotes (:attr:`ForceCalibration.force`), with every fit's warnings."""
    cal = calibrate_force(x, frame_rate, length, **kw)
    return SimpleNamespace(force_pn=cal.force.force_pn, force_err_pn=cal.force.force_err_pn,
                           warnings=cal.warnings)  # fmt: skip


@pytest.mark.parametrize("fit", [fit_spectrum, fit_allan, _quoted])
def test_hardest_camera_gives_a_finite_error_or_a_named_failure(fit) -> None:
    # the corner at twice Nyquist, an exposure of a quarter frame: the samples are nearly
    # uncorrelated, var and tau hard to tell apart. No overflow (warnings are errors in the
    # tests), no NaN: a finite error, or infinite with the reason (the force quoted: the
    # spectrum's, 37700 correlation times)
    length = 3000.0
    named = 0
    for seed, x in enumerate(_hardest_traces()):
        res = fit(x, FS, length, exposure_s=0.25 / FS, kt=KT)
        assert not np.isnan(res.force_err_pn)
        if np.isinf(res.force_err_pn):
            assert any(w.startswith("force undetermined") for w in res.warnings)
            named += 1
        else:
            z = np.log(res.force_pn / (HARD_KAPPA * length)) / (res.force_err_pn / res.force_pn)
            assert abs(z) < 4, (seed, res.force_pn, res.force_err_pn)
    assert named < 30  # most give a force
