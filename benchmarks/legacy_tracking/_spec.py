"""The polar sampling geometry shared by tracking and Z-LUTs."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class ProfileSpec:
    """Where radial profiles are sampled around a bead's centre.

    Bin ``k`` is the mean of bilinear samples on the circle of radius ``(k + 0.5) * radial_step``
    pixels, spaced about ``arc_step`` pixels apart along the circle. The same samples, split into
    four quadrants (+x, +y, -x, -y), drive quadrant interpolation.

    Parameters
    ----------
    n_radii : int
        Number of radial bins.
    radial_step : float
        Bin spacing in pixels.
    arc_step : float
        Approximate spacing of samples along each circle, in pixels.
    """

    n_radii: int
    radial_step: float = 1.0
    arc_step: float = 1.0

    def __post_init__(self) -> None:
        if self.n_radii < 4 or self.radial_step <= 0 or self.arc_step <= 0:
            raise ValueError(f"bad profile geometry: {self}")

    @classmethod
    def for_roi(
        cls, roi_size: int, radial_step: float = 1.0, arc_step: float = 1.0
    ) -> "ProfileSpec":
        """The largest circles that stay 2 px inside a centred ``roi_size`` ROI."""
        r_max = (roi_size - 1) / 2 - 2.0
        return cls(int(r_max / radial_step), radial_step, arc_step)

    @property
    def radii(self) -> np.ndarray:
        """Radius of each bin in pixels, shape (n_radii,)."""
        return (np.arange(self.n_radii) + 0.5) * self.radial_step

    @cached_property
    def samples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sample offsets ``dx, dy`` (pixels), grouped by bin ``quadrant * n_radii + k``.

        Returns ``dx, dy, starts, reach``: bin ``b`` owns samples ``starts[b]:starts[b + 1]``,
        all within ``reach[b]`` pixels of the centre. Quadrants are +x, +y, -x, -y.
        """
        dx, dy, n = [], [], []
        for q in range(4):
            for r in self.radii:
                n_ang = max(2, int(np.ceil(0.5 * np.pi * r / self.arc_step)))
                theta = 0.5 * np.pi * (q + (np.arange(n_ang) + 0.5) / n_ang - 0.5)
                dx.append(r * np.cos(theta))
                dy.append(r * np.sin(theta))
                n.append(n_ang)
        starts = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
        reach = np.tile(self.radii, 4) + 1e-9
        return np.concatenate(dx), np.concatenate(dy), starts, reach
