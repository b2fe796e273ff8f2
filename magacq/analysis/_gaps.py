"""Frames a tracker lost, filled in so that a trace can be fitted."""

import numpy as np

__all__ = ["fill_gaps"]


def fill_gaps(trace: np.ndarray, max_lost: float = 0.05) -> tuple[np.ndarray, int]:
    """``trace`` with its NaN frames filled in linearly, and how many there were.

    Raises
    ------
    ValueError
        More than ``max_lost`` (a fraction) of the frames are NaN.
    """
    trace = np.asarray(trace, dtype=np.float64)
    bad = ~np.isfinite(trace)
    lost = int(bad.sum())
    if lost == 0:
        return trace, 0
    if lost > max_lost * len(trace):
        raise ValueError(f"{lost / len(trace):.0%} of its frames were not tracked")
    idx = np.arange(len(trace))
    out = trace.copy()
    out[bad] = np.interp(idx[bad], idx[~bad], trace[~bad])
    return out, lost
