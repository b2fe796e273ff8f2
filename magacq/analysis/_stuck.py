"""Stuck beads found in the tracks: beads that neither fluctuate nor respond to force.

A tethered bead jitters tens of nanometres from frame to frame (its Brownian motion in a soft
trap), a bead stuck to the surface only by the tracking noise (a nanometre or two): the beads'
frame-to-frame jitter falls in two groups far apart. A bead of the quiet group is stuck when its
height also stays put from plateau to plateau (a tethered bead's changes by hundreds of
nanometres when the force does).
"""

import warnings

import numpy as np

__all__ = ["find_stuck_beads", "lateral_jitter"]

#: the quiet group's jitter is at most this fraction of the other group's
QUIET_RATIO = 0.25
#: with no other group: quiet beads jitter less than this (nm per frame)
QUIET_NM = 5.0
#: a stuck bead's height moves less than this between plateaus (nm), beyond the others' drift
STILL_NM = 100.0


def lateral_jitter(xyz: np.ndarray, segments: list[tuple[int, int]]) -> np.ndarray:
    """Each bead's frame-to-frame lateral jitter (nm): the median over ``segments`` of the RMS
    of its x and y steps over sqrt(2); NaN for a bead never tracked.

    Parameters
    ----------
    xyz : (n_beads, n_frames, 3) array
        Positions, NaN where not tracked.
    segments : list of (start, stop)
        Frame ranges (plateaus) over which the beads held still.
    """
    out = np.full(len(xyz), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN beads or segments
        per = [np.sqrt(np.nanmean(np.diff(xyz[:, a:b, :2], axis=1) ** 2, axis=(1, 2)) / 2)
               for a, b in segments if b - a > 2]  # fmt: skip
        if per:
            out = np.nanmedian(np.array(per), axis=0)
    return out


def find_stuck_beads(xyz: np.ndarray, segments: list[tuple[int, int]]) -> np.ndarray:
    """Which beads are stuck to the surface.

    Parameters
    ----------
    xyz : (n_beads, n_frames, 3) array
        Positions (nm), NaN where not tracked; z may be all NaN (no Z-LUT).
    segments : list of (start, stop)
        The plateaus' frame ranges.

    Returns
    -------
    numpy.ndarray
        ``(n_beads,)`` bool.
    """
    jitter = lateral_jitter(xyz, segments)
    ok = np.isfinite(jitter) & (jitter > 0)
    quiet = np.zeros(len(xyz), dtype=bool)
    if not ok.any():
        return quiet
    order = np.sort(np.log(jitter[ok]))
    gaps = np.diff(order)
    if len(gaps) and gaps.max() >= -np.log(QUIET_RATIO):
        cut = order[int(np.argmax(gaps))]
        quiet[ok] = np.log(jitter[ok]) <= cut
    else:
        quiet[ok] = jitter[ok] < QUIET_NM
    return quiet & _still(xyz[:, :, 2], segments, quiet)


def _still(z: np.ndarray, segments: list[tuple[int, int]], quiet: np.ndarray) -> np.ndarray:
    """Beads whose median height moves less than ``STILL_NM`` from plateau to plateau, about
    the quiet beads' common motion (True without z or with one plateau)."""
    if len(segments) < 2 or not quiet.any():
        return np.ones(len(z), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        levels = np.array([np.nanmedian(z[:, a:b], axis=1) for a, b in segments]).T
        common = np.nanmedian(levels[quiet], axis=0)
        moved = np.nanmax(levels - common, axis=1) - np.nanmin(levels - common, axis=1)
    return ~(moved > STILL_NM)  # NaN (no z): still
