"""Drift correction: subtract the mean motion of stuck reference beads."""

import warnings

import numpy as np

__all__ = ["correct_drift", "reference_drift"]


def reference_drift(references: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
    """The reference beads' mean motion, frame by frame.

    Parameters
    ----------
    references : (n_ref, n_frames) array
        Positions (nm) of stuck reference beads, one axis; NaN where a bead was lost.
    origin : (n_ref,) array, optional
        Each reference's zero (e.g. its first position, for a drift computed as frames come);
        default: its mean over these frames.

    Returns
    -------
    numpy.ndarray
        ``(n_frames,)`` mean of the references' displacements; NaN where all are NaN.
    """
    refs = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if origin is None:
        origin = np.nanmean(refs, axis=1)
    centred = refs - np.asarray(origin, dtype=np.float64).reshape(-1, 1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames where every reference is NaN
        return np.nanmean(centred, axis=0)


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
    return traces - reference_drift(refs)
