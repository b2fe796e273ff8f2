"""Bead images from two optical models: our simulator's and magtrack's, written independently.

Both return relative intensity (background 1) for ROIs of ``roi`` pixels at 100 nm/px, beads
at ``(x[i], y[i])`` (ROI pixels, pixel centres at integers) and ``z[i]`` nm from focus.
"""

import warnings

import numpy as np

from simulators.noise import to_counts
from simulators.optics import BeadImager, OpticsParams

MODELS = ("simulator", "magtrack")
READ_NOISE_E = 2.0


def render(model: str, roi: int, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Noise-free ROIs ``(n, roi, roi)`` of one bead per ROI."""
    if model == "simulator":
        imager = BeadImager(OpticsParams(), roi)
        return np.stack([imager.render(a, b, c) for a, b, c in zip(x, y, z, strict=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # magtrack warns that CuPy is absent
        from magtrack.simulation import simulate_beads
    # magtrack: 1.5 um radius, 550 nm light; centre at pixel roi // 2, background 0.4
    xyz = np.column_stack([(x - roi // 2) * 100.0, (y - roi // 2) * 100.0, z])
    return np.moveaxis(simulate_beads(xyz, size_px=roi), -1, 0) / 0.4


def counts(
    model: str,
    roi: int,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    photons: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """uint16 camera counts of :func:`render`'s ROIs at ``photons`` per background pixel."""
    return to_counts(render(model, roi, x, y, z), photons, READ_NOISE_E, 16, rng)
