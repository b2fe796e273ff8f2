"""Each tethered bead's height above the surface, from the Z-LUTs of beads stuck to it.

A Z-LUT gives a bead's z relative to its own height when the LUT was recorded, a height that
differs from bead to bead. All LUTs share one axis (the focus sweep), and beads of one kind look
alike at the same distance from the focal plane: where a tethered bead's plane ``z`` matches a
stuck bead's plane ``z'``, the tethered bead sat ``z' - z`` above the stuck one during the sweep,
and the stuck bead's centre is one radius above the surface. So a tethered bead's extension is
``z - z_stuck + (z' - z)`` at any moment (its z and the stuck beads' measured together, which
also takes out the drift): this needs a sweep long enough that the two beads' planes overlap.
"""

import numpy as np

__all__ = ["lut_offset"]

#: a plane matches when its mean squared difference (per radial bin, unit-RMS profiles) to the
#: other LUT's nearest plane is below this
MATCH_MSE = 0.05
#: planes that must match for an offset
MIN_MATCHES = 3


def lut_offset(
    planes: np.ndarray, reference: np.ndarray, z_nm: np.ndarray
) -> tuple[float, float, int]:
    """How far above the ``reference`` bead the bead of ``planes`` was during the sweep (nm).

    Parameters
    ----------
    planes, reference : (n_planes, n_radii) arrays
        Two beads' normalised Z-LUT planes on the shared axis ``z_nm``; NaN planes are skipped.
    z_nm : (n_planes,) array
        The planes' heights (a regular grid).

    Returns
    -------
    offset_nm, err_nm, matched : float, float, int
        The median of the matched planes' offsets (NaN when fewer than ``MIN_MATCHES`` match),
        its standard error (from their scatter) and how many planes matched.
    """
    dz = float(z_nm[1] - z_nm[0])
    ref_ok = np.isfinite(reference).all(axis=1)
    offsets = []
    for j in np.flatnonzero(np.isfinite(planes).all(axis=1)):
        mse = np.where(ref_ok, np.mean((reference - planes[j]) ** 2, axis=1), np.inf)
        k = int(np.argmin(mse))
        if not mse[k] < MATCH_MSE or k == 0 or k == len(mse) - 1:
            continue  # no match, or at the LUT's end (the true match may lie beyond it)
        a, b, c = mse[k - 1], mse[k], mse[k + 1]
        if not np.isfinite(a + c):
            continue
        curve = a - 2 * b + c
        u = 0.5 * (a - c) / curve if curve > 0 else 0.0
        offsets.append(z_nm[k] + u * dz - z_nm[j])
    n = len(offsets)
    if n < MIN_MATCHES:
        return float("nan"), float("nan"), n
    return float(np.median(offsets)), float(np.std(offsets) * np.sqrt(np.pi / 2 / n)), n
