"""Force ramps: each tethered bead's extension against the force along the ramp.

A ramp (a ``ramp`` action of the protocol, from its ``start`` to its ``end`` event) is the data
itself: the magnets move all along it, so no force is fitted from the fluctuations. The ramp is
cut into stretches of ``STRETCH_S``; on each, the bead's mean extension (and its standard
error) is set against the magnets' measured height there and the force the run's force table
gives at that height (the table the protocol ramped by; NaN outside it or without one).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magacq.analysis import correlated_mean
from magacq.protocol import ForceCurve, ForceTable, load_force_table
from magacq.runfile import RunTracks

__all__ = ["Ramp", "RampPoint", "find_ramps", "ramp_points", "ramp_segments", "run_force_curve"]

#: seconds of ramp per point of a bead's curve
STRETCH_S = 0.5
#: fewest frames with a z a stretch needs
MIN_STRETCH = 8


@dataclass(frozen=True)
class Ramp:
    """Frames ``[start, stop)`` of the ramp action ``index`` labelled ``label``."""

    index: int
    label: str
    start: int
    stop: int


@dataclass(frozen=True)
class RampPoint:
    """A bead's mean extension on one stretch of a ramp, at the magnets' height and force;
    ``time_s``: the stretch's mean time since the ramp began."""

    ramp: Ramp
    start: int
    stop: int
    time_s: float
    magnet_mm: float
    force_pn: float
    extension_nm: float
    extension_err_nm: float


def find_ramps(run: RunTracks) -> list[Ramp]:
    """The run's ramps, from its ``ramp`` actions' start and end events (none without)."""
    ev = run.events
    if ev is None or len(ev) == 0:
        return []
    n, first = len(run.frames), int(run.frames[0])
    out = []
    for start in ev[(ev["kind"] == b"start") & (ev["action"] == b"ramp")]:
        ends = ev[(ev["kind"] == b"end") & (ev["step"] == start["step"])
                  & (ev["frame"] >= start["frame"])]  # fmt: skip
        stop = int(ends["frame"].min()) if len(ends) else first + n
        a, b = (int(np.clip(f - first, 0, n)) for f in (start["frame"], stop))
        if b > a:
            out.append(Ramp(int(start["step"]), start["label"].decode(errors="replace"), a, b))
    return out


def run_force_curve(run: RunTracks) -> ForceCurve | None:
    """The force table the run's protocol used (relative paths from the run file's folder when
    not found as written); None when it had none or the file is gone."""
    spec = (run.config.get("protocol") or {}).get("force_table")
    if not spec:
        return None
    if isinstance(spec, dict):
        return load_force_table(ForceTable(**spec))
    path = next((p for p in (Path(spec), run.path.parent / Path(spec).name) if p.is_file()), None)
    return None if path is None else load_force_table(path)


def _force(curve: ForceCurve | None, height_mm: float) -> float:
    """The table's force at ``height_mm``; NaN without a table or outside it."""
    if curve is None or not curve.heights_mm[0] <= height_mm <= curve.heights_mm[-1]:
        return math.nan
    return curve.force(height_mm)


def ramp_segments(ramps: list[Ramp], parts: int = 4) -> list[tuple[int, int]]:
    """Each ramp cut into ``parts`` frame ranges (where the force differs: stuck beads)."""
    out: list[tuple[int, int]] = []
    for r in ramps:
        edges = np.linspace(r.start, r.stop, parts + 1).astype(int).tolist()
        out += list(zip(edges[:-1], edges[1:], strict=True))
    return out


def ramp_points(z: np.ndarray, zero: float, run: RunTracks, ramp: Ramp,
                curve: ForceCurve | None) -> list[RampPoint]:  # fmt: skip
    """A bead's curve along ``ramp``: ``z`` its drift-corrected heights (all frames), ``zero``
    its height at the surface; stretches with too few z are left out."""
    size = max(MIN_STRETCH, int(round(STRETCH_S * run.frame_rate)))
    times = run.time_s[ramp.start : ramp.stop]
    t0 = times[np.isfinite(times)][0] if np.isfinite(times).any() else math.nan
    out = []
    for a in range(ramp.start, ramp.stop - MIN_STRETCH + 1, size):
        b = min(a + size, ramp.stop)
        ok = np.isfinite(z[a:b])
        if ok.sum() < MIN_STRETCH:
            continue
        ext, err, _ = correlated_mean(z[a:b][ok] - zero)
        mag = run.magnets[a:b, 0] if run.magnets is not None else np.full(b - a, np.nan)
        height = float(np.median(mag[np.isfinite(mag)])) if np.isfinite(mag).any() else math.nan
        t = run.time_s[a:b][ok] - t0
        out.append(RampPoint(ramp, a, b, float(np.mean(t)), height, _force(curve, height), ext,
                             err))  # fmt: skip
    return out
