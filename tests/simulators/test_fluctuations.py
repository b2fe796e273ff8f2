"""The camera-sampled bead generator against the exact covariance of a blurred, sampled OU."""

import numpy as np
import pytest

from magacq.analysis._camera import camera_covariance
from simulators.fluctuations import camera_trace, trap
from simulators.motion import MotionParams


@pytest.mark.parametrize("exposure_s", [0.0, 0.002, 0.005])
def test_frames_have_the_exact_covariance(exposure_s: float) -> None:
    # 20 pN: tau = 6 ms, comparable to the 5 ms frame period, where blur and aliasing are large
    mp = MotionParams(force_pn=20.0)
    k, g = trap(mp)
    x = camera_trace(4000, 200.0, np.full(100, k), g, exposure_s=exposure_s, kt=mp.kt,
                     rng=np.random.default_rng(1))  # fmt: skip
    c0, amp, r = camera_covariance(mp.kt / k, g / k, 200.0, exposure_s)
    assert np.mean(x * x) == pytest.approx(c0, rel=0.01)
    for lag in (1, 2):
        assert np.mean(x[:, lag:] * x[:, :-lag]) == pytest.approx(amp * r**lag, rel=0.03)
    if exposure_s:  # the blur is visible: the frames vary less than the bead
        assert c0 < 0.95 * mp.kt / k


def test_scalar_in_scalar_out_and_bad_exposure() -> None:
    rng = np.random.default_rng(0)
    assert camera_trace(10, 100.0, 1e-3, 2e-5, rng=rng).shape == (10,)
    with pytest.raises(ValueError, match="exposure"):
        camera_trace(10, 100.0, 1e-3, 2e-5, exposure_s=0.02, rng=rng)
