"""Reading a run file (``magacq.run``) for offline analysis: tracks by bead, plateaus, timing."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from magacq.errors import ConfigError
from magacq.runfile._run import EVENTS_DTYPE, SCHEMA, SCHEMA_VERSION

__all__ = ["Plateau", "RunTracks", "plateaus", "read_run"]


@dataclass(frozen=True)
class RunTracks:
    """A run's tracked positions, by bead and frame.

    Attributes
    ----------
    path : Path
    frames : (n_frames,) int array
        Every camera frame number from the run's first tracked frame to its last.
    time_s : (n_frames,) float array
        Their times (NaN for frames never tracked).
    bead_ids : (n_beads,) int array
    reference : (n_beads,) bool array
        Stuck reference beads (``rois.reference``).
    xyz_nm : (n_beads, n_frames, 3) float array
        x, y, z; NaN where a frame was dropped or a coordinate was flagged. (A view of a
        ``(3, n_beads, n_frames)`` array: each bead's trace on one axis is contiguous.)
    frame_rate : float
        Frames per second, from the frames' timestamps.
    config : dict
        The run's configuration.
    events : array of EVENTS_DTYPE, or None
        The protocol's events, when the run had a protocol.
    exposure_s : float or None
        The camera's exposure as the run recorded it (its ``exposure_ms`` attribute, else the
        config's camera setting); None: unknown.
    bead_radius_nm : float or None
        The bead radius the run recorded (``beads.radius_nm``, or the simulated camera's);
        None: unknown.
    flags : (n_beads, n_frames) uint16 array, or None
        Each bead's tracking flags (:class:`magacq.tracking.TrackFlag`), 0 where untracked.
    magnets : (n_frames, 2) float array, or None
        Magnet height (mm) and rotation (turns) when each frame arrived (NaN: unknown).
    """

    path: Path
    frames: np.ndarray
    time_s: np.ndarray
    bead_ids: np.ndarray
    reference: np.ndarray
    xyz_nm: np.ndarray
    frame_rate: float
    config: dict[str, Any]
    events: np.ndarray | None
    exposure_s: float | None = None
    bead_radius_nm: float | None = None
    flags: np.ndarray | None = None
    magnets: np.ndarray | None = None


@dataclass(frozen=True)
class Plateau:
    """Frames ``[start, stop)`` (indices into :attr:`RunTracks.frames`) of one protocol step."""

    index: int
    label: str
    start: int
    stop: int
    turns: float
    magnet_mm: float
    target_force_pn: float


def read_run(path: str | Path) -> RunTracks:
    """Read a run file's tracks, beads, timing and events.

    Raises
    ------
    ConfigError
        No such file, not a magacq run file, a schema version this magacq cannot read, or a run
        with no tracked frames.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such run file: {path}")
    try:
        with h5py.File(path, "r", swmr=True) as f:
            schema = f.attrs.get("schema")
            if schema != SCHEMA:
                raise ConfigError(f"{path} is not a magacq run file (schema {schema!r})")
            version = int(f.attrs.get("schema_version", 0))
            if not 1 <= version <= SCHEMA_VERSION:  # 1 lacks only frames.host_time
                raise ConfigError(f"{path} has run-file schema version {version}; "
                                  f"this magacq reads versions 1 to {SCHEMA_VERSION}")  # fmt: skip
            table = f["tracks"]
            if len(table) == 0:
                raise ConfigError(f"{path} has no tracked frames")
            frames_table = f["frames"][:]
            rois = f["rois"][:]
            bead_ids = np.unique(rois["bead_id"])
            frames, xyz, time_s, flags = _pivot(table, frames_table["frame"], bead_ids)
            events = f["events"][:].astype(EVENTS_DTYPE) if "events" in f else None
            config = json.loads(f.attrs.get("config", "{}"))
            recorded = {k: _finite(f.attrs.get(k)) for k in ("exposure_ms", "bead_radius_nm")}
            magnets = _magnets(frames_table, frames)
            if "motors" in f and len(f["motors"]):
                magnets = _sampled(f["motors"][:], frames_table, frames, f.attrs, magnets)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    ref = np.isin(bead_ids, rois["bead_id"][rois["reference"]])
    settings = config.get("camera", {}).get("settings", {})  # runs from before the attributes
    exposure_ms = recorded["exposure_ms"] or _finite(settings.get("exposure_ms"))
    radius = (recorded["bead_radius_nm"] or _finite(config.get("beads", {}).get("radius_nm"))
              or _finite(settings.get("bead_radius_nm")))  # fmt: skip
    return RunTracks(path, frames, time_s, bead_ids, ref, xyz.transpose(1, 2, 0),
                     _frame_rate(frames_table, time_s), config, events,
                     None if exposure_ms is None else exposure_ms / 1000, radius, flags,
                     magnets)  # fmt: skip


#: Rows of the tracks table read at a time: each block's rows land in a short run of every
#: bead's row of the pivoted array (cache-friendly), and the table is never all in memory.
_BLOCK_ROWS = 1 << 20


def _pivot(table: h5py.Dataset, stored: np.ndarray,
           bead_ids: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """Every frame from the first tracked to the last, their ``(3, n_beads, n_frames)`` x, y, z
    (NaN where untracked; one contiguous row per bead and axis: the analysis reads beads'
    traces), their times and the ``(n_beads, n_frames)`` flags, from the ``tracks`` rows of
    beads in ``bead_ids``. The grid is
    first the span of the ``stored`` frames (the ``frames`` table), else of the tracks'."""
    span = (int(stored.min()), int(stored.max())) if len(stored) else None
    if span is None:
        frame = table.fields("frame")[:]
        span = (int(frame.min()), int(frame.max()))
    lookup = np.full(int(bead_ids.max(initial=-1)) + 1, -1, dtype=np.int64)
    lookup[bead_ids] = np.arange(len(bead_ids))
    n = span[1] - span[0] + 1
    xyz = np.full((3, len(bead_ids), n), np.nan)
    time_s = np.full(n, np.nan)
    flags = np.zeros((len(bead_ids), n), dtype=np.uint16)
    for start in range(0, len(table), _BLOCK_ROWS):
        rows = table[start : start + _BLOCK_ROWS]
        at = rows["frame"] - span[0]
        if at.min() < 0 or at.max() >= n:  # tracked frames the frames table lacks
            frame = table.fields("frame")[:]
            return _pivot(table, np.array([frame.min(), frame.max()]), bead_ids)
        ids = rows["bead_id"].astype(np.int64)
        col = np.where((ids >= 0) & (ids < len(lookup)), lookup[np.clip(ids, 0, len(lookup) - 1)],
                       -1)  # fmt: skip
        known = col >= 0  # rows of beads the rois table lists
        time_s[at] = rows["time"]
        flat = col[known] * n + at[known]
        for axis, name in enumerate(("x_nm", "y_nm", "z_nm")):
            xyz[axis].ravel()[flat] = rows[name][known]
        flags.ravel()[flat] = rows["flag"][known]
    tracked = np.flatnonzero(np.isfinite(time_s))
    keep = slice(tracked[0], tracked[-1] + 1)
    return (np.arange(span[0], span[1] + 1)[keep], xyz[:, :, keep], time_s[keep],
            flags[:, keep])  # fmt: skip


def _sampled(motors: np.ndarray, frames_table: np.ndarray, frames: np.ndarray, attrs: Any,
             fallback: np.ndarray) -> np.ndarray:  # fmt: skip
    """Magnet height and rotation when each frame was taken: the ``motors`` sample at or before
    its time on the host clock (``acquiring + timestamp - first_frame_timestamp``). The frames
    table's own columns are the sample when the frame *arrived*, up to the tracking latency
    later. ``fallback`` where the clocks are not recorded."""
    t0, c0 = _finite(attrs.get("acquiring")), _finite(attrs.get("first_frame_timestamp"))
    if t0 is None or c0 is None:
        return fallback
    out = np.full((len(frames), 2), np.nan)
    at = frames_table["frame"] - frames[0]
    ok = (at >= 0) & (at < len(frames)) & np.isfinite(frames_table["timestamp"])
    host = t0 + frames_table["timestamp"][ok] - c0
    order = np.argsort(motors["time"], kind="stable")
    times = motors["time"][order]
    last = np.searchsorted(times, host, side="right") - 1
    known = last >= 0
    for col, name in enumerate(("magnet_height_mm", "magnet_rotation_turns")):
        out[at[ok][known], col] = motors[name][order][last[known]]
    return out


def _magnets(frames_table: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Magnet height and rotation on each of ``frames`` (NaN where the table has no row)."""
    out = np.full((len(frames), 2), np.nan)
    at = frames_table["frame"] - frames[0]
    ok = (at >= 0) & (at < len(frames))
    for col, name in enumerate(("magnet_height_mm", "magnet_rotation_turns")):
        out[at[ok], col] = frames_table[name][ok]
    return out


def _finite(value: Any) -> float | None:
    """``value`` as a float, None when absent or not finite."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _frame_rate(frames_table: np.ndarray, time_s: np.ndarray) -> float:
    """Frames per second from the camera timestamps (tracked times if there are none)."""
    frame, stamp = frames_table["frame"], frames_table["timestamp"]
    if len(frame) < 2:
        frame, stamp = np.flatnonzero(np.isfinite(time_s)), time_s[np.isfinite(time_s)]
    if len(frame) < 2:
        raise ConfigError("a run of fewer than two frames has no frame rate")
    order = np.argsort(frame)
    rate = np.diff(frame[order]) / np.diff(stamp[order])
    return float(np.median(rate[np.isfinite(rate) & (rate > 0)]))


def plateaus(run: RunTracks) -> list[Plateau]:
    """The run's plateaus: each ``hold`` action of its protocol, from its ``start`` to its ``end``
    event; a run without events is one plateau."""
    n = len(run.frames)
    if run.events is None or len(run.events) == 0:
        return [Plateau(0, "run", 0, n, np.nan, np.nan, np.nan)]
    out = []
    first = int(run.frames[0])
    ev = run.events
    for start in ev[(ev["kind"] == b"start") & (ev["action"] == b"hold")]:
        ends = ev[(ev["kind"] == b"end") & (ev["step"] == start["step"])
                  & (ev["frame"] >= start["frame"])]  # fmt: skip
        stop = int(ends["frame"].min()) if len(ends) else first + n
        a = int(np.clip(start["frame"] - first, 0, n))
        b = int(np.clip(stop - first, 0, n))
        out.append(Plateau(int(start["step"]), start["label"].decode(errors="replace"), a, b,
                           float(start["turns"]), float(start["magnet_mm"]),
                           float(start["force_pn"])))  # fmt: skip
    return out
