"""Simulated lateral traces of beads under known forces (simulators.fluctuations)."""

from dataclasses import dataclass

import numpy as np

from simulators.fluctuations import camera_trace, trap
from simulators.motion import MotionParams


@dataclass(frozen=True)
class Beads:
    """``x`` (n_beads, n_frames) nm of beads under ``force_pn``, with the truth to compare to."""

    x: np.ndarray
    force_pn: float
    length_nm: float
    corner_hz: float
    frame_rate: float
    exposure_s: float
    kt: float


def simulate(force_pn: float, n_beads: int, *, frame_rate: float = 200.0, exposure_s: float = 0.0,
             taus: float = 300, min_frames: int = 20000, seed: int = 0) -> Beads:  # fmt: skip
    """Beads of ``simulators.motion``'s default tether under ``force_pn``, ``taus`` tau long."""
    mp = MotionParams(force_pn=force_pn)
    k, g = trap(mp)
    n = max(min_frames, int(taus * g / k * frame_rate))
    x = camera_trace(n, frame_rate, np.full(n_beads, k), g, exposure_s=exposure_s, kt=mp.kt,
                     rng=np.random.default_rng(seed))  # fmt: skip
    return Beads(x, force_pn, mp.extension_nm + mp.bead_radius_nm, k / (2 * np.pi * g),
                 frame_rate, exposure_s, mp.kt)  # fmt: skip
