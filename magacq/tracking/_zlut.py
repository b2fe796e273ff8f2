"""Z look-up tables: per-bead normalised radial profiles on a regular z grid."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._spec import ProfileSpec
from ._zmatch import normalize_profile, search_tables


@dataclass(frozen=True)
class ZLut:
    """Per-bead Z-LUTs sharing one z grid and one profile geometry.

    Attributes
    ----------
    planes : ndarray, shape (n_luts, n_planes, n_radii), float64
        Normalised profiles (zero mean, unit RMS); a plane with no data is all NaN.
    z0_nm : float
        Height of plane 0 in nm.
    dz_nm : float
        Spacing of the planes in nm.
    spec : ProfileSpec
        The sampling geometry the profiles were made with; tracking must use the same.
    """

    planes: np.ndarray
    z0_nm: float
    dz_nm: float
    spec: ProfileSpec

    def __post_init__(self) -> None:
        p = self.planes
        if p.ndim != 3 or p.shape[2] != self.spec.n_radii or p.dtype != np.float64:
            raise ValueError(
                f"Z-LUT planes must be float64 (n_luts, n_planes, {self.spec.n_radii}), "
                f"got {p.dtype} {p.shape}"
            )
        if not self.dz_nm > 0:
            raise ValueError(f"Z-LUT step must be positive, got {self.dz_nm}")

    @property
    def n_luts(self) -> int:
        return self.planes.shape[0]

    @cached_property
    def search(self) -> tuple[np.ndarray, np.ndarray]:
        """The nearest-plane search's tables (:func:`._zmatch.search_tables`), made once."""
        radii = self.spec.radii
        return search_tables(self.planes, radii / radii.mean())

    @property
    def z_nm(self) -> np.ndarray:
        """Height of each plane in nm, shape (n_planes,)."""
        return self.z0_nm + self.dz_nm * np.arange(self.planes.shape[1])


def build_zlut(
    profiles: np.ndarray,
    z_nm: np.ndarray,
    z_step_nm: float,
    spec: ProfileSpec,
    z_start_nm: float | None = None,
) -> ZLut:
    """Build Z-LUTs from calibration profiles: average per z step, then normalise.

    Parameters
    ----------
    profiles : ndarray, shape (n_samples, n_radii) or (n_beads, n_samples, n_radii)
        Raw radial profiles (as ``track_rois`` returns them); NaN rows are skipped.
    z_nm : ndarray, shape (n_samples,)
        Height of each sample in nm (e.g. the focus stage position).
    z_step_nm : float
        Plane spacing; each sample goes to the nearest plane.
    spec : ProfileSpec
        The geometry the profiles were sampled with.
    z_start_nm : float, optional
        Height of plane 0; default ``min(z_nm)``.

    Returns
    -------
    ZLut
        With one LUT per bead (one in all for 2-D input).
    """
    prof = np.asarray(profiles, dtype=np.float64)
    if prof.ndim == 2:
        prof = prof[None]
    z = np.asarray(z_nm, dtype=np.float64)
    if prof.ndim != 3 or prof.shape[2] != spec.n_radii or prof.shape[1] != z.shape[0]:
        raise ValueError(
            f"profiles {np.shape(profiles)} do not match z_nm {z.shape} and {spec.n_radii} radii"
        )
    if not z_step_nm > 0:
        raise ValueError(f"z step must be positive, got {z_step_nm}")
    z0 = float(np.min(z)) if z_start_nm is None else float(z_start_nm)
    idx = np.round((z - z0) / z_step_nm).astype(np.int64)
    if idx.min() < 0:
        raise ValueError("z_start_nm lies above some sample heights")
    n_planes = int(idx.max()) + 1
    planes = np.full((prof.shape[0], n_planes, spec.n_radii), np.nan)
    tmp = np.empty(spec.n_radii)
    for b in range(prof.shape[0]):
        ok = ~np.isnan(prof[b]).any(axis=1)
        sums = np.zeros((n_planes, spec.n_radii))
        np.add.at(sums, idx[ok], prof[b][ok])
        n = np.bincount(idx[ok], minlength=n_planes)
        for j in np.flatnonzero(n):
            if normalize_profile(sums[j] / n[j], tmp):
                planes[b, j] = tmp
    return ZLut(planes, z0, float(z_step_nm), spec)
