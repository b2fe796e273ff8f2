"""The lock controllers: a Z-lock closes the loop on a drifting focus, an XY-lock re-centres."""

import numpy as np
import pytest

from magacq.protocol import XYLock, ZLock, sample_z, stage_sign


@pytest.mark.parametrize("stage_moves", ["objective", "sample"])
def test_z_lock_holds_a_drifting_reference_and_sample_z_stays_continuous(stage_moves) -> None:
    """A focus drifting 100 nm/min with 3 nm of noise per reading: held within the deadband."""
    s = stage_sign(stage_moves)
    rng = np.random.default_rng(1)
    lock = ZLock(sign=s, gain=0.7, deadband_nm=5, max_step_nm=50)
    drift, focus, focus0, height = 0.0, 0.0, 0.0, 1000.0  # the bead's true height (nm)
    seen, corrected = [], []
    for _ in range(600):  # one reading a second, 10 minutes
        drift += 100 / 60
        z_lut = height - s * (focus - focus0) - drift + rng.normal(0, 3)
        seen.append(z_lut)
        corrected.append(float(sample_z(z_lut, focus, focus0, s)))
        focus += lock.update(z_lut)
    seen = np.array(seen[60:])
    assert abs(seen.mean() - lock.target_nm) < 5
    assert seen.std() < 8  # without the lock it walks 900 nm
    # sample-frame z shows only the drift itself (what reference subtraction then removes)
    np.testing.assert_allclose(np.diff(corrected), 100 / 60, atol=25)


def test_z_lock_steps_are_bounded_and_ignore_lost_readings() -> None:
    lock = ZLock(sign=1.0, target_nm=0.0, gain=1.0, deadband_nm=5, max_step_nm=50)
    assert lock.update(3.0) == 0.0
    assert lock.update(500.0) == 50.0
    assert lock.update(-500.0) == -50.0
    assert lock.update(float("nan")) == 0.0
    assert ZLock(sign=-1.0, target_nm=0.0, gain=1.0).update(20.0) == -20.0


def test_xy_lock_recentres_inside_the_frame() -> None:
    lock = XYLock(roi_size=64, width=512, height=256, threshold_px=2)
    box = (100, 164, 50, 114)  # centre (132, 82)
    assert lock.update(box, 133.5, 81.0) is None
    assert lock.update(box, 140.0, 82.0) == (108, 172, 50, 114)
    assert lock.update((440, 504, 180, 244), 500.0, 250.0) == (448, 512, 192, 256)  # clipped
    assert lock.update(box, float("nan"), 82.0) is None
