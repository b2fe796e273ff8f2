"""The verdict on a calibration's Z-LUTs, bead by bead: which can track z, and why not."""

import numpy as np

__all__ = ["zlut_verdict"]


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
