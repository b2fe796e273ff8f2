"""Run files of known forces: simulated bead traces written through the run-file writer
(used by tests/offline and benchmarks/bench_analysis.py).

Each plateau holds every tethered bead at one force (and magnet rotation): its lateral
coordinates are exact camera samples of its trap (simulators.fluctuations), its z is its
extension plus an offset of its own (a Z-LUT's z is relative to the bead's height at
calibration) plus its axial fluctuations; a plateau labelled ``surface`` has the beads down on
the surface (extension 0, still). Reference beads sit still; every bead drifts with the stage.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from magacq.runfile import EVENTS_DTYPE, FRAMES_DTYPE, ROIS_DTYPE, TRACKS_DTYPE, RunFile
from magacq.tracking import TrackFlag
from simulators.fluctuations import camera_trace
from simulators.motion import MotionParams

FS = 200.0
EXPOSURE_S = 0.002
RADIUS = MotionParams().bead_radius_nm


@dataclass(frozen=True)
class Step:
    """A plateau: ``frames`` at ``force_pn`` (None: on the surface), ``turns``, and the
    extension (default: the WLC's at that force)."""

    label: str
    frames: int
    force_pn: float | None = None
    turns: float = np.nan
    extension_nm: float | None = None


def write_run(path: Path, steps: list[Step], *, tethered: int = 4, references: int = 2,
              seed: int = 0, lose: dict[int, float] | None = None,
              lose_span: dict[int, tuple[int, int]] | None = None,
              clip: dict[int, float] | None = None, magnet_mm: np.ndarray | None = None,
              mark_references: bool = True) -> Path:  # fmt: skip
    """Write a run file of ``tethered`` + ``references`` beads through ``steps``.

    ``lose`` maps a bead id to the fraction of its frames to drop (NaN positions), at random;
    ``lose_span`` to frames ``start:stop`` it loses in one burst; ``clip`` to
    the fraction flagged ``PROFILE_CLIPPED``, their z spoilt (500 nm too high);
    ``magnet_mm``: the magnet height of each frame (default NaN: no magnets);
    ``mark_references``: the reference beads marked as such in ``rois``.
    """
    rng = np.random.default_rng(seed)
    n_beads = tethered + references
    total = sum(s.frames for s in steps)
    xyz = np.zeros((n_beads, total, 3))
    offsets = rng.uniform(-500, 500, n_beads)
    events, start = [], 0
    for i, s in enumerate(steps):
        sl = slice(start, start + s.frames)
        if s.force_pn is not None:
            mp = MotionParams(force_pn=s.force_pn)
            ext = mp.extension_nm if s.extension_nm is None else s.extension_nm
            k_xy = s.force_pn / (ext + RADIUS)
            k_z = mp.stiffness[1]
            for axis, k in ((0, k_xy), (1, k_xy), (2, k_z)):
                xyz[:tethered, sl, axis] = camera_trace(
                    s.frames, FS, np.full(tethered, k), mp.drag, exposure_s=EXPOSURE_S,
                    kt=mp.kt, rng=rng)  # fmt: skip
            xyz[:tethered, sl, 2] += ext
        for kind, frame in ((b"start", start), (b"end", start + s.frames)):
            force = np.nan if s.force_pn is None else s.force_pn
            events.append((frame / FS, frame, i, kind, b"hold", s.label.encode(), np.nan,
                           s.turns, np.nan, force, i, b"protocol"))  # fmt: skip
        start += s.frames
    xyz[:, :, 2] += offsets[:, None]
    xyz[:, :, :2] += rng.uniform(2000, 40000, (n_beads, 1, 2))
    drift = (
        np.cumsum(rng.standard_normal((total, 3)) * 0.3, axis=0)
        + np.linspace(0, 20, total)[:, None]
    )
    xyz += drift
    xyz[tethered:] += rng.standard_normal((references, total, 3)) * 1.0  # tracking noise
    for bead, fraction in (lose or {}).items():
        xyz[bead, rng.random(total) < fraction] = np.nan
    for bead, (start, stop) in (lose_span or {}).items():
        xyz[bead, start:stop] = np.nan
    flags = np.zeros((n_beads, total), dtype=np.uint16)
    for bead, fraction in (clip or {}).items():
        hit = rng.random(total) < fraction
        flags[bead, hit] = TrackFlag.PROFILE_CLIPPED
        xyz[bead, hit, 2] += 500.0
    magnets = np.full(total, np.nan) if magnet_mm is None else np.asarray(magnet_mm, float)
    events = np.array(events, dtype=EVENTS_DTYPE)
    _write(path, xyz, tethered if mark_references else n_beads, events, flags, magnets)
    return path


def _write(path: Path, xyz: np.ndarray, tethered: int, events: np.ndarray, flags: np.ndarray,
           magnets: np.ndarray) -> None:  # fmt: skip
    n_beads, total, _ = xyz.shape
    rois = np.zeros(n_beads, dtype=ROIS_DTYPE)
    rois["bead_id"] = np.arange(n_beads)
    rois["reference"] = np.arange(n_beads) >= tethered
    config = {
        "camera": {
            "driver": "sim",
            "settings": {
                "frame_rate": FS,
                "bead_radius_nm": RADIUS,
                "exposure_ms": EXPOSURE_S * 1e3,
            },
        }
    }
    rf = RunFile(path, {"config": json.dumps(config)}, rois, with_truth=False)
    frames = np.zeros(total, dtype=FRAMES_DTYPE)
    frames["frame"] = np.arange(total)
    frames["timestamp"] = np.arange(total) / FS
    frames["magnet_height_mm"] = magnets
    frames["magnet_rotation_turns"] = np.nan
    rf.append("frames", frames)
    tracks = np.zeros(n_beads * total, dtype=TRACKS_DTYPE)
    tracks["frame"] = np.repeat(np.arange(total), n_beads)
    tracks["time"] = tracks["frame"] / FS
    tracks["bead_id"] = np.tile(np.arange(n_beads), total)
    for axis, name in enumerate(("x_nm", "y_nm", "z_nm")):
        tracks[name] = xyz[:, :, axis].T.ravel()
    tracks["flag"] = flags.T.ravel()
    rf.append("tracks", tracks)
    rf.close({"state": "complete"})
    with h5py.File(path, "r+") as f:
        f.create_dataset("events", data=events)


def force_extension_steps(frames: int = 24000) -> list[Step]:
    """The surface, then 8 forces from 0.1 to 20 pN."""
    steps = [Step("surface", 2000)]
    for f in np.geomspace(0.1, 20.0, 8):
        steps.append(Step(f"{f:.2g} pN", frames if f > 0.5 else 3 * frames, float(f)))
    return steps
