"""The verdict on a calibration's Z-LUTs: which beads can track z, and whether a run's beads
are the ones the Z-LUTs were made for."""

import numpy as np

__all__ = ["bead_set_difference", "zlut_verdict"]

#: positions named in a difference, at most
NAMED = 4


def zlut_verdict(bead_ids: np.ndarray, good: np.ndarray, reasons: list[str]) -> tuple[bool, str]:
    """Whether any bead has a good Z-LUT, and one line naming each bead that has not and why.

    Parameters
    ----------
    bead_ids : (n,) int array
    good : (n,) bool array
    reasons : list of str
        Why each bead is not good ("" for a good one).

    Returns
    -------
    usable, line : bool, str
        ``usable`` is False when no bead is good; ``line`` is "" when every bead is.
    """
    bad = [f"bead {int(b)} ({r or 'no reason given'})"
           for b, g, r in zip(bead_ids, good, reasons, strict=True) if not g]  # fmt: skip
    if not bad:
        return True, ""
    n_good = int(np.sum(good))
    if n_good == 0:
        return False, f"no bead yields a good Z-LUT: {'; '.join(bad)}"
    return True, f"{n_good}/{len(good)} beads with a good Z-LUT; not: {'; '.join(bad)}"


def bead_set_difference(run_xy: np.ndarray, lut_xy: np.ndarray, tolerance_px: float) -> str:
    """How a run's beads differ from those of a Z-LUT file ("" when they are the same).

    Parameters
    ----------
    run_xy, lut_xy : (n, 2) arrays
        The beads' ROI corners (px), the run's and the file's.
    tolerance_px : float
        A run bead is a file bead when their corners are this close on both axes.
    """
    run_xy = np.asarray(run_xy, dtype=np.float64).reshape(-1, 2)
    lut_xy = np.asarray(lut_xy, dtype=np.float64).reshape(-1, 2)
    near = np.all(np.abs(run_xy[:, None, :] - lut_xy[None, :, :]) <= tolerance_px, axis=2)
    parts = []
    if len(run_xy) != len(lut_xy):
        parts.append(f"this run has {len(run_xy)} beads, the Z-LUT file {len(lut_xy)}")
    for who, xy, found in (("of this run", run_xy, near.any(axis=1)),
                           ("of the Z-LUT file", lut_xy, near.any(axis=0))):  # fmt: skip
        missing = xy[~found]
        if len(missing):
            named = ", ".join(f"({x:.0f}, {y:.0f})" for x, y in missing[:NAMED])
            more = f" and {len(missing) - NAMED} more" if len(missing) > NAMED else ""
            parts.append(f"{len(missing)} bead(s) {who} not in the other (ROI corners {named}"
                         f"{more})")  # fmt: skip
    return "; ".join(parts)
