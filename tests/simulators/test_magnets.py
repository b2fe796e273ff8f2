"""The simulated magnets and their physics: force law, twist, moves, blur, ground truth."""

import math
import time

import numpy as np
import pytest

from hal import DeviceError, UnsupportedSettingError
from simulators.driver import SimCamera, SimMagnets
from simulators.magnetics import FORCE_LAWS, ForceLaw, moment_factors
from simulators.motion import KT_PN_NM_PER_K, MotionParams, TetheredBeads, wlc_extension
from simulators.trajectory import Trajectory
from simulators.twist import buckling_turns, plectoneme_nm_per_turn, twisted_extension

KT = KT_PN_NM_PER_K * 296.0
SMALL = {"width": 192, "height": 128, "n_beads": 4, "roi_size": 48, "seed": 3}


# --- force law ------------------------------------------------------------------------------
def test_force_law_is_the_double_exponential_and_falls_with_height():
    law = ForceLaw(10.0, 0.5, 2.0, 2.0)
    assert law(0.0) == pytest.approx(12.0)
    assert law(1.0) == pytest.approx(10 * math.exp(-2) + 2 * math.exp(-0.5))
    h = np.linspace(0.3, 20, 200)
    for name, law in FORCE_LAWS.items():
        f = law(h)
        assert (np.diff(f) < 0).all() and (f > 0).all(), name
        # slower than one exponential far away (the second term dominates)
        assert law(8.0) / law(7.0) > law(1.0) / law(0.0), name


def test_force_magnitudes_of_the_two_bead_types():
    myone, m270 = FORCE_LAWS["MyOne"], FORCE_LAWS["M270"]
    assert 2 < myone(1.0) < 6 and 0.05 < myone(6.0) < 0.3
    assert 15 < m270(1.0) < 40 and 0.5 < m270(6.0) < 2
    assert m270(3.0) / myone(3.0) == pytest.approx(7.0)  # same field, a larger moment


def test_moment_spread():
    f = moment_factors(20_000, 0.05, np.random.default_rng(0))
    assert f.mean() == pytest.approx(1.0, abs=0.002) and f.std() == pytest.approx(0.05, rel=0.03)
    assert (moment_factors(5, 0.0, np.random.default_rng(0)) == 1.0).all()


# --- twist ----------------------------------------------------------------------------------
TWIST = {"contour_nm": 3400.0, "persistence_nm": 50.0, "twist_nm": 100.0, "kt": KT}


def _hat(force: float, turns: np.ndarray) -> np.ndarray:
    ext0 = wlc_extension(force, 3400.0, 50.0, KT)
    return np.array(
        [
            twisted_extension(
                np.array([ext0]), np.array([force]), n, **TWIST, denature_force_pn=0.5
            )[0]
            for n in turns
        ]
    )


def test_twist_flat_until_buckling_then_linear():
    force = 1.0
    n_b = float(buckling_turns(np.array(force), 3400.0, 50.0, 100.0, KT))
    slope = float(plectoneme_nm_per_turn(np.array(force), 50.0, KT))
    assert 15 < n_b < 40 and 40 < slope < 90  # the measured magnitudes at 1 pN, 10 kbp
    ext0 = wlc_extension(force, 3400.0, 50.0, KT)
    turns = np.array([0.0, 0.5 * n_b, 0.99 * n_b, n_b + 5, n_b + 10])
    ext = _hat(force, turns)
    np.testing.assert_allclose(ext[:3], ext0)
    assert ext[3] - ext[4] == pytest.approx(5 * slope)
    assert ext0 - ext[3] == pytest.approx(5 * slope)
    assert _hat(force, np.array([n_b + 1e4]))[0] == 0.0  # never below the surface


def test_twist_symmetric_at_low_force_and_not_above_denaturation():
    turns = np.array([5.0, 20.0, 40.0])
    low = 0.2
    np.testing.assert_allclose(_hat(low, -turns), _hat(low, turns))
    high = 2.0
    ext0 = wlc_extension(high, 3400.0, 50.0, KT)
    np.testing.assert_allclose(_hat(high, -turns * 3), ext0)
    assert _hat(high, turns * 3)[-1] < ext0
    # buckling comes later and plectonemes are tighter at higher force
    assert buckling_turns(np.array(2.0), 3400, 50, 100, KT) > buckling_turns(
        np.array(0.5), 3400, 50, 100, KT
    )
    assert plectoneme_nm_per_turn(np.array(2.0), 50, KT) < plectoneme_nm_per_turn(
        np.array(0.5), 50, KT
    )


# --- tension on the beads -------------------------------------------------------------------
def test_set_tension_moves_the_mean_and_the_stiffness():
    p = MotionParams(force_pn=0.2)
    beads = TetheredBeads(
        np.zeros((3, 2)), np.array([False, False, True]), p, np.random.default_rng(1)
    )
    var_low = beads.variance.copy()
    beads.set_tension(np.array([5.0, 10.0, 5.0]), 0.0)
    for i, f in enumerate((5.0, 10.0)):
        assert beads.mean[i, 2] == pytest.approx(wlc_extension(f, 3400, 50, p.kt) + 1400)
    assert beads.mean[2, 2] == 1400 and beads.extension_nm[2] == 0  # stuck
    assert (beads.variance[:2] < var_low[:2]).all()  # stiffer at the higher force
    assert beads.stiffness[1, 0] > beads.stiffness[0, 0]
    # the bead relaxes to the new mean over its correlation time, not at once
    before = beads.positions[0, 2]
    assert before < beads.mean[0, 2] - 300
    for _ in range(200):
        beads.step(beads.tau[0, 2])
    assert abs(beads.positions[0, 2] - beads.mean[0, 2]) < 5 * math.sqrt(beads.variance[0, 2])


def test_exposure_blur_averages_the_motion():
    """Positions averaged over an exposure much longer than the correlation time fluctuate
    less than instantaneous ones (Wong & Halvorsen): the variance ratio matches theory."""
    from simulators.camera import from_settings
    from simulators.microscope import SimMicroscope
    from simulators.optics import OpticsParams

    def scope(substeps):
        settings = SimCamera.Settings(**SMALL)
        return SimMicroscope(
            64,
            64,
            optics=from_settings(OpticsParams, settings),
            motion=MotionParams(force_pn=2.0),
            bead_xy_px=np.full((1, 2), 32.0),
            stuck=np.zeros(1, bool),
            roi_size=48,
            photons=1000,
            read_noise_e=0,
            offset_adu=0,
            bit_depth=16,
            rng=np.random.default_rng(2),
            exposure_substeps=substeps,
        )

    sharp, blurred = scope(1), scope(50)
    tau = sharp.beads.tau[0, 2]
    exposure = 5 * tau
    z = {
        k: np.array([s.expose(20 * tau, exposure)[0, 2] for _ in range(3000)])
        for k, s in (("sharp", sharp), ("blurred", blurred))
    }
    a = exposure / tau
    theory = 2 / a - 2 / a**2 * (1 - math.exp(-a))  # variance of the time average of an OU
    assert z["sharp"].var() == pytest.approx(sharp.beads.variance[0, 2], rel=0.1)
    assert z["blurred"].var() / z["sharp"].var() == pytest.approx(theory, rel=0.15)


# --- trajectories ---------------------------------------------------------------------------
def test_trapezoid_and_triangle_moves():
    t = Trajectory.move(0.0, 10.0, 100.0, velocity=2.0, acceleration=4.0)
    assert t.end_time == pytest.approx(100.0 + 0.5 + 4.5 + 0.5)
    assert t.position(99.0) == 0 and t.position(200.0) == 10.0
    assert t.velocity(103.0) == pytest.approx(2.0) and t.position(100.5) == pytest.approx(0.5)
    ts = np.linspace(100, t.end_time, 500)
    x = np.array([t.position(u) for u in ts])
    assert (np.diff(x) >= 0).all() and x[-1] == pytest.approx(10.0)
    short = Trajectory.move(5.0, 4.0, 0.0, velocity=10.0, acceleration=4.0)  # a triangle
    assert short.end_time == pytest.approx(2 * math.sqrt(0.25))
    assert abs(short.velocity(0.5)) == pytest.approx(2.0)
    stop = t.stopped(103.0, 4.0)
    assert stop.end == pytest.approx(t.position(103.0) + 2.0**2 / (2 * 4.0))
    assert not stop.moving(103.5)


# --- the device -----------------------------------------------------------------------------
def _snap(cam: SimCamera):
    """The truth of one frame taken now (frames show the magnets as they were at the frame's
    timestamp, so a frame of an acquisition started before a move may predate it)."""
    out = np.empty((cam.height, cam.width), cam.dtype)
    cam.start(1)
    cam.read_frame(out)
    cam.stop()
    return cam.ground_truth(0)


def test_magnets_set_the_force_and_truth_of_the_camera():
    with (
        SimCamera(SMALL | {"fraction_stuck": 0.25}) as cam,
        SimMagnets(
            {"bead_type": "MyOne", "height_mm": 6.0, "height_velocity_mm_s": 20.0}, camera=cam
        ) as mag,
    ):
        far = _snap(cam)
        law = FORCE_LAWS["MyOne"]
        tethered = ~cam.stuck_beads
        assert far.magnet_height_mm == 6.0 and far.magnet_rotation_turns == 0.0
        factors = far.force_pn[tethered] / law(6.0)
        assert 0.8 < factors.min() and factors.max() < 1.2 and factors.std() > 0  # spread
        assert (far.force_pn[~tethered] == 0).all()
        mag.move_to("height", 1.0)
        mag.wait(timeout=30)
        near = _snap(cam)
        assert near.magnet_height_mm == 1.0
        np.testing.assert_allclose(near.force_pn[tethered] / law(1.0), factors)
        ext = wlc_extension(near.force_pn[tethered], 3400.0, 50.0, MotionParams().kt)
        np.testing.assert_allclose(near.extension_nm[tethered], ext)
        assert (near.extension_nm[tethered] > far.extension_nm[tethered] + 800).all()
        mag.move_to("rotation", -60.0, velocity=50.0)  # above denaturation: no shortening
        mag.wait(timeout=30)
        np.testing.assert_allclose(_snap(cam).extension_nm, near.extension_nm)
        mag.move_to("rotation", 60.0, velocity=50.0)
        mag.wait(timeout=30)
        twisted = _snap(cam)
        assert twisted.magnet_rotation_turns == 60.0
        assert (twisted.extension_nm[tethered] < near.extension_nm[tethered] - 100).all()


def test_one_axis_magnets_and_faults():
    with SimMagnets({"axes": ["height"], "fail_after_moves": 1}) as mag:
        assert mag.axes == ("height",)
        with pytest.raises(UnsupportedSettingError, match="no rotation axis"):
            mag.move_to("rotation", 1.0)
        assert math.isnan(mag.positions().rotation_turns)
        mag.move_to("height", 5.9)
        with pytest.raises(DeviceError, match="injected"):
            mag.move_to("height", 5.0)
    with pytest.raises(UnsupportedSettingError, match="outside its limits"):
        SimMagnets({"height_mm": 50.0})
    with pytest.raises(DeviceError, match="SimCamera only"):
        SimMagnets(camera=object())  # type: ignore[arg-type]


def test_position_is_cheap_to_sample():
    """Reading the position is a computation, not a wait: 1000 reads return (no timing
    assertion here; benchmarks/bench_magnets.py prints the rate)."""
    with SimMagnets() as mag:
        mag.move_to("height", 1.0)
        values = [mag.position("height") for _ in range(1000)]
        mag.stop()
        time.sleep(0)
    assert values[0] >= values[-1]
