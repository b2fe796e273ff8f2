"""Plateaus checked against what the magnets did and which frames the run holds.

A hold's label says what the protocol asked for; the frames' magnet samples say what happened.
A plateau whose magnets moved (another command, a stage that drifted) is split where they
moved, each part analysed at its own measured position, never reported under the label; one
whose frames do not cover the hold (the run ended first, frames dropped) is flagged. A move
another program asked for during a hold (a ``move`` event not by the protocol) splits it there
even where the magnets' samples do not show it (at a hold's ends, or none recorded).
"""

from dataclasses import replace

import numpy as np

from magacq.runfile import Plateau, RunTracks

__all__ = ["check_plateaus"]

#: magnets within this of a part's start are still (mm, turns)
HEIGHT_TOL_MM = 0.02
ROTATION_TOL_TURNS = 0.05
#: fewest frames a part needs to be analysed
MIN_PART = 256
#: a hold's frames missing above this fraction are a problem
EDGE = 0.05
#: seconds at a hold's ends that may still show a move's samples (magnets sampled at 10 Hz at
#: rest, each frame stamped with the latest sample)
EDGE_S = 0.3


def _parts(mag: np.ndarray) -> list[tuple[int, int]]:
    """Frame ranges over which the magnets stayed within tolerance of the range's first sample."""
    tol = np.array([HEIGHT_TOL_MM, ROTATION_TOL_TURNS])
    parts, start, ref = [], 0, mag[0]
    for i, row in enumerate(mag):
        ok = np.isfinite(row) & np.isfinite(ref)
        if np.any(np.abs(row - ref)[ok] > tol[ok]):
            parts.append((start, i))
            start, ref = i, row
        elif not np.isfinite(ref).all():
            ref = np.where(np.isfinite(ref), ref, row)
    parts.append((start, len(mag)))
    return parts


def check_plateaus(
    run: RunTracks, plates: list[Plateau]
) -> tuple[list[Plateau], list[tuple[int, int, str]]]:
    """The plateaus to analyse and the problems found: ``(-1, plateau index, message)``.

    A plateau whose magnets moved becomes its parts of at least ``MIN_PART`` frames (labelled
    ``"label [part k]"``, at their measured height and rotation, no target force); samples of
    the moves before and after it at its ends (up to ``EDGE_S``) are trimmed silently.
    """
    out: list[Plateau] = []
    problems: list[tuple[int, int, str]] = []
    ended = _ended(run)
    others = _moves_by_others(run)
    for p in plates:
        name = f"plateau {p.index} ({p.label})"
        if p.index not in ended:
            problems.append((-1, p.index, f"{name}: the run ended before the hold did"))
        if p.stop - p.start == 0:
            continue
        lost = np.isnan(run.time_s[p.start : p.stop]).mean()
        if lost > EDGE:
            problems.append((-1, p.index, f"{name}: {lost:.0%} of its frames are missing"))
        cuts = [int(f) - p.start for f in others if p.start < f < p.stop]
        mag = (run.magnets[p.start : p.stop] if run.magnets is not None
               else np.full((p.stop - p.start, 2), np.nan))  # fmt: skip
        every = _parts(mag) if np.isfinite(mag).any() else [(0, p.stop - p.start)]
        if len(every) == 1 and not cuts:
            out.append(p)
            continue
        edge = EDGE_S * run.frame_rate
        while len(every) > 1 and every[0][1] <= edge:  # the move's last samples, at the start
            every = every[1:]
        while len(every) > 1 and len(mag) - every[-1][0] <= edge:  # the next move's first
            every = every[:-1]
        if len(every) == 1 and cuts:  # the samples missed it: split where it was asked for
            edges = [every[0][0], *(c for c in cuts if every[0][0] < c < every[0][1]),
                     every[0][1]]  # fmt: skip
            every = list(zip(edges[:-1], edges[1:], strict=True))
        if len(every) == 1:
            a, b = every[0]
            out.append(replace(p, start=p.start + a, stop=p.start + b))
            continue
        parts = [(a, b) for a, b in every if b - a >= MIN_PART]
        spans = [f"{what} {v[np.isfinite(v)].min():.3g}-{v[np.isfinite(v)].max():.3g} {unit}"
                 for what, v, unit in (("height", mag[:, 0], "mm"),
                                       ("rotation", mag[:, 1], "turns"))
                 if np.isfinite(v).any()]  # fmt: skip
        moved = f"{name}: the magnets moved during the hold " + (
            f"({', '.join(spans)})" if spans else "(asked for by another program)")  # fmt: skip
        if not parts:
            problems.append((-1, p.index, f"{moved}: no still part long enough, not analysed"))
            continue
        problems.append((-1, p.index, f"{moved}: analysed as {len(parts)} parts at the "
                                      "measured positions"))  # fmt: skip
        for k, (a, b) in enumerate(parts, 1):
            h_k, r_k = (float(np.median(c[np.isfinite(c)])) if np.isfinite(c).any() else np.nan
                        for c in mag[a:b].T)  # fmt: skip
            out.append(replace(p, label=f"{p.label} [part {k}]", start=p.start + a,
                               stop=p.start + b, magnet_mm=float(h_k), turns=float(r_k),
                               target_force_pn=np.nan))  # fmt: skip
    return out, problems


def _moves_by_others(run: RunTracks) -> np.ndarray:
    """Frame indices (into the run's frames) of magnet moves neither the protocol nor its script
    made (the motion process records each as a ``move`` event labelled ``"by: axis ..."``)."""
    ev = run.events
    if ev is None or len(ev) == 0:
        return np.empty(0, dtype=np.int64)
    mine = np.isin(ev["by"], [b"protocol", b"script"])
    focus = np.char.find(ev["label"], b": focus ") >= 0
    other = ev[(ev["kind"] == b"start") & (ev["action"] == b"move") & ~mine & ~focus]
    return other["frame"].astype(np.int64) - int(run.frames[0])


def _ended(run: RunTracks) -> set[int]:
    """Steps whose hold has an ``end`` event (all of them for a run without events)."""
    ev = run.events
    if ev is None or len(ev) == 0:
        return {0}
    return {int(s) for s in ev["step"][(ev["kind"] == b"end") & (ev["action"] == b"hold")]}
