"""The lock controllers: a Z-lock closes the loop on a drifting focus, an XY-lock re-centres."""

import numpy as np
import pytest

from magacq.protocol import XYLock, ZLock, sample_z, stage_sign


@pytest.mark.parametrize("stage_moves", ["objective", "sample"])
def test_z_lock_holds_a_drifting_reference_despite_the_tracking_latency(stage_moves) -> None:
    """A focus drifting 100 nm/min, 3 nm of noise per reading at 100 Hz, readings 0.8 s late,
    a correction every 0.5 s: the bead's true Z-LUT z stays within a nanometre of its target."""
    s = stage_sign(stage_moves)
    rng = np.random.default_rng(1)
    lock = ZLock(sign=s, gain=1.0, deadband_nm=1.0, max_step_nm=50)
    rate, latency, dt, interval = 100 / 60, 0.8, 0.01, 0.5
    focus, focus0, height = 0.0, 0.0, 1000.0  # the bead's true height (nm)
    late: list[tuple[float, float, float]] = []  # readings on their way: t, z_lut, focus
    truth, corrected = [], []
    for k in range(int(600 / dt)):  # 10 minutes
        t = k * dt
        z_true = height - s * (focus - focus0) - rate * t
        truth.append(z_true)
        late.append((t, z_true + rng.normal(0, 3), focus))
        corrected.append(float(sample_z(late[-1][1], focus, focus0, s)))
        while late and late[0][0] <= t - latency:
            lock.add(*(np.array([v]) for v in late.pop(0)))
        if k % int(interval / dt) == 0:
            focus += lock.update(t + interval / 2, focus)
    held = np.array(truth[len(truth) // 10 :]) - lock.target_nm
    assert np.sqrt(np.mean(held**2)) < 1.0  # without the lock it walks 1000 nm
    # sample-frame z shows only the drift itself (what reference subtraction then removes)
    slope = np.polyfit(np.arange(len(corrected)) * dt, corrected, 1)[0]
    assert abs(slope + rate) < 0.01


def test_z_lock_steps_are_bounded_use_every_reading_and_ignore_lost_ones() -> None:
    def lock(**kw: float) -> ZLock:
        return ZLock(**{"sign": 1.0, "target_nm": 0.0, "gain": 1.0, "deadband_nm": 5.0,
                        "max_step_nm": 50.0, **kw})  # fmt: skip

    def fed(z: list[float], focus: float = 0.0, **kw: float) -> ZLock:
        out = lock(**kw)
        out.add(np.arange(len(z)) * 0.1, np.array(z), np.full(len(z), focus))
        return out

    assert fed([3.0, 3.0]).update(0.2, 0.0) == 0.0  # inside the deadband
    assert fed([500.0]).update(0.0, 0.0) == 50.0
    assert fed([-500.0]).update(0.0, 0.0) == -50.0
    assert fed([float("nan")]).update(0.0, 0.0) == 0.0  # no reading: no move
    assert fed([20.0], sign=-1.0).update(0.0, 0.0) == -20.0
    # readings taken before a 20 nm focus move count, as seen from the focus now
    assert fed([20.0] * 5).update(0.5, 20.0) == 0.0
    # the drift's rate is fitted over window_s and fed forward
    ramp = fed([10.0 * t for t in np.arange(20) * 0.1], deadband_nm=0.0, window_s=2.0)
    assert ramp.update(2.5, 0.0) == pytest.approx(25.0)
    engaging = fed([7.0, 7.0], target_nm=None)
    assert engaging.update(0.2, 0.0) == 0.0 and engaging.target_nm == pytest.approx(7.0)


def test_xy_lock_recentres_inside_the_frame() -> None:
    lock = XYLock(roi_size=64, width=512, height=256, threshold_px=2)
    box = (100, 164, 50, 114)  # centre (132, 82)
    assert lock.update(box, 133.5, 81.0) is None
    assert lock.update(box, 140.0, 82.0) == (108, 172, 50, 114)
    assert lock.update((440, 504, 180, 244), 500.0, 250.0) == (448, 512, 192, 256)  # clipped
    assert lock.update(box, float("nan"), 82.0) is None
