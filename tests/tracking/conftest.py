"""A simulated bead, its Z-LUT and noisy test stacks, shared by the tracking tests.

Issue 5's conditions: 64x64 px ROI, 100 nm/px, Z-LUT step 25 nm, 4000 photons/px background.
The LUT spans z = -2000..-200 nm (bead nearer the objective than focus, rings well inside the
ROI, no 16-bit saturation); each plane averages 20 noisy frames at random sub-pixel positions.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from magacq.tracking import ProfileSpec, TrackFlag, ZLut, build_zlut, track_rois
from simulators.noise import to_counts
from simulators.optics import BeadImager, OpticsParams

ROI = 64
PHOTONS = 4000.0
READ_NOISE_E = 2.0
Z_STEP = 25.0
Z_RANGE = (-2000.0, -200.0)
FRAMES_PER_PLANE = 20


@dataclass
class Bead:
    imager: BeadImager
    zlut: ZLut
    rng: np.random.Generator

    def stack(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, photons=PHOTONS) -> np.ndarray:
        """Noisy uint16 ROIs of the bead at ``(x[i], y[i], z[i])`` (pixels, pixels, nm)."""
        img = np.stack([self.imager.render(a, b, c) for a, b, c in zip(x, y, z, strict=True)])
        return to_counts(img, photons, READ_NOISE_E, 16, self.rng)


def calibrate(imager: BeadImager, rng: np.random.Generator, spec: ProfileSpec) -> ZLut:
    """A Z-LUT made the way `magacq calibrate` makes one: track sweep frames, build_zlut."""
    z = np.repeat(np.arange(Z_RANGE[0], Z_RANGE[1] + 1, Z_STEP), FRAMES_PER_PLANE)
    xy = ROI / 2 + rng.uniform(-0.5, 0.5, (2, len(z)))
    img = np.stack([imager.render(a, b, c) for a, b, c in zip(xy[0], xy[1], z, strict=True)])
    res = track_rois(to_counts(img, PHOTONS, READ_NOISE_E, 16, rng), spec=spec)
    assert (res.flags == TrackFlag.NO_LUT).all()
    return build_zlut(res.profiles, z, Z_STEP, spec)


@pytest.fixture(scope="session")
def bead() -> Bead:
    rng = np.random.default_rng(5)
    imager = BeadImager(OpticsParams(), ROI)
    return Bead(imager, calibrate(imager, rng, ProfileSpec.for_roi(ROI)), rng)
