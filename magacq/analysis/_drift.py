"""Drift correction: subtract the mean motion of stuck reference beads."""

import numpy as np

__all__ = ["correct_drift"]


def correct_drift(traces: np.ndarray, references: np.ndarray) -> np.ndarray:
    """``traces`` minus the reference beads' mean motion, frame by frame.

    Parameters
    ----------
    traces : (n_beads, n_frames) or (n_frames,) array
        Positions (nm) of the beads to correct, one axis.
    references : (n_ref, n_frames) array
        Positions (nm) of stuck reference beads on the same frames. Each is taken about its own
        mean (their offsets do not matter); a NaN (lost frame) leaves the frame's other
        references to average. With no reference the traces come back unchanged.

    Returns
    -------
    numpy.ndarray
        Corrected traces, shape of ``traces``; NaN where every reference is NaN.
    """
    traces = np.asarray(traces, dtype=np.float64)
    refs = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if refs.size == 0:
        return traces.copy()
    if refs.shape[-1] != traces.shape[-1]:
        raise ValueError(f"{refs.shape[-1]} reference frames for {traces.shape[-1]} bead frames")
    centred = refs - np.nanmean(refs, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        drift = np.nanmean(np.where(np.isfinite(centred), centred, np.nan), axis=0)
    return traces - drift
