"""The run file (HDF5, schema ``magacq.run`` v1): its layout, and the writing side.

File layout (all tables are 1-D compound datasets, appended as the run goes):

- ``tracks``: time (s), frame, bead_id, x_nm, y_nm, z_nm, flag: one row per bead per frame, in
  the order stacks were tracked (sort by frame to get time order);
- ``frames``: frame, timestamp, magnet_height_mm, magnet_rotation_turns, focus_z_nm: every
  frame stored in the video buffer, with where the magnets and the focus stage were when it
  arrived (their latest sample; NaN without them);
- ``dropped``: frame, timestamp, reason (0: video buffer full, 1: lost by the camera);
- ``rois``: bead_id, x0, x1, y0, y1 (pixels, x along columns), reference; ``roi_moves`` (runs
  with an XY-lock): frame, bead_id, x0, x1, y0, y1: each re-centring (:data:`ROI_MOVES_DTYPE`);
- ``drift``: frame, dx_nm, dy_nm, dz_nm: the reference beads' mean motion, computed live; its
  attribute ``references`` lists them (empty: no drift correction, the table stays empty).
  With a Z-lock, ``tracks.z_nm`` is in the sample's frame (attribute ``z_frame`` "sample": the
  Z-LUT z corrected for the focus moves, :func:`magacq.protocol.sample_z`), else "lut";
- ``truth`` (simulated runs): frame, bead_id, x_nm, y_nm, z_nm, force_pn, extension_nm,
  magnet_height_mm, magnet_rotation_turns, sim_bead: the simulator's ground truth (positions
  averaged over the exposure; the tether's mean extension at that force and twist; NaN magnets
  without any); ``bead_id`` is the tracked bead whose ROI held the simulated bead ``sim_bead``
  at the first frame (-1: in no ROI), so ``truth`` and ``tracks`` join on (frame, bead_id);
- ``motors`` (runs with magnets or a focus stage): time, magnet_height_mm,
  magnet_rotation_turns, focus_z_nm: the stages sampled by the devices process (time: host
  ``time.monotonic()`` seconds, the clock of the ``acquiring`` root attribute; NaN for a
  device or axis the run does not have);
- ``events`` (runs with a protocol or locks): time, frame, step, kind (start/end/off), action,
  label, magnet_mm, turns, focus_nm, force_pn, source: each protocol action's start and end
  (:data:`EVENTS_DTYPE`); each lock action (action ``zlock``: a focus correction, kind start,
  focus_nm its target; kind off: the lock switched off, the label says why; ``xylock``: an ROI
  re-centred, the label names the bead; either, label "on (switched on)" or "off: switched off":
  a user switched it, e.g. in ``magacq view``);
- ``video`` (``output.video.mode: frames``) or ``roi_video`` (``rois``): an external link to the
  dataset of the same name in the recorder's video file (:mod:`magacq.runfile._video`);
  ``video_frames``: frame, timestamp of each of its frames, in order; ``video_skipped``: frame,
  timestamp of those the recorder left out (``output.video.on_backlog: drop_video``, or after it
  died). A file made otherwise (tests, conversions) may hold ``video`` itself, one frame a chunk;
- ``retracked`` (files written by `magacq retrack`): start, stop (indices into the source's
  ``video``), tracks (rows of ``tracks`` once that stack's were written): the stacks done, so an
  interrupted re-tracking resumes;
- root attributes: schema, schema_version, state (running/complete/failed), config (JSON),
  software versions, camera geometry, run counters and latency percentiles.

The file is written in HDF5 SWMR mode and flushed every ``FLUSH_S`` seconds, so it can be read
(``h5py.File(path, "r", swmr=True)``) while the run goes on, and after a crash it holds
everything up to the last flush. ``DISK_RESERVE`` bytes are set aside beside it (a hidden
``.NAME.reserve`` file) and given back when the disk fills, and an append that would leave less
room than closing needs is refused (ENOSPC), so the file can still be closed and its state and
error written.
"""

import errno
import json
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from magacq.tracking import TrackFlag

#: Bytes set aside beside a run file while it is written (another program may fill the disk
#: too), given back to close it when the disk is full.
DISK_RESERVE = 1 << 20
_CLOSE_METADATA = 256 * 1024  # metadata written when the file is flushed and closed, at most

SCHEMA = "magacq.run"
SCHEMA_VERSION = 2  # 2: frames.host_time
FLUSH_S = 0.5
TRACKS_DTYPE = np.dtype(
    [
        ("time", "f8"),
        ("frame", "i8"),
        ("bead_id", "i4"),
        ("x_nm", "f8"),
        ("y_nm", "f8"),
        ("z_nm", "f8"),
        ("flag", "u2"),
    ]
)
FRAMES_DTYPE = np.dtype(
    [
        ("frame", "i8"),
        ("timestamp", "f8"),
        ("magnet_height_mm", "f8"),
        ("magnet_rotation_turns", "f8"),
        ("focus_z_nm", "f8"),
        ("host_time", "f8"),  # host time.monotonic() when the frame reached the producer
    ]
)
VIDEO_FRAMES_DTYPE = np.dtype([("frame", "i8"), ("timestamp", "f8")])
DROPPED_DTYPE = np.dtype([("frame", "i8"), ("timestamp", "f8"), ("reason", "u1")])
ROIS_DTYPE = np.dtype(
    [("bead_id", "i4"), ("x0", "i4"), ("x1", "i4"), ("y0", "i4"), ("y1", "i4"), ("reference", "?")]
)
TRUTH_DTYPE = np.dtype(
    [
        ("frame", "i8"),
        ("bead_id", "i4"),
        ("x_nm", "f8"),
        ("y_nm", "f8"),
        ("z_nm", "f8"),
        ("force_pn", "f8"),
        ("extension_nm", "f8"),
        ("magnet_height_mm", "f8"),
        ("magnet_rotation_turns", "f8"),
        ("sim_bead", "i4"),
    ]
)
MOTORS_DTYPE = np.dtype(
    [
        ("time", "f8"),
        ("magnet_height_mm", "f8"),
        ("magnet_rotation_turns", "f8"),
        ("focus_z_nm", "f8"),
    ]
)

#: ``events``: a protocol action's start or end (kind ``start``/``end``): the first frame on or
#: after it, the action's index (``step``), what it does (``action``: move, ramp, hold, mark),
#: its label, its targets (NaN where it sets none), the nominal force, and the index of the
#: protocol step (or recipe item) it comes from (``source``). A plateau is a ``hold``.
EVENTS_DTYPE = np.dtype(
    [
        ("time", "f8"),
        ("frame", "i8"),
        ("step", "i4"),
        ("kind", "S8"),
        ("action", "S8"),
        ("label", "S64"),
        ("magnet_mm", "f8"),
        ("turns", "f8"),
        ("focus_nm", "f8"),
        ("force_pn", "f8"),
        ("source", "i4"),
        ("by", "S8"),  # who asked: protocol, script, lock, cli, view, python
    ]
)

RETRACKED_DTYPE = np.dtype([("start", "i8"), ("stop", "i8"), ("tracks", "i8")])
#: ``roi_moves``: an ROI the XY-lock re-centred, its new box, and the first frame tracked in it
#: (at the latest: the newest stored frame when the writer saw the move, plus one).
ROI_MOVES_DTYPE = np.dtype(
    [("frame", "i8"), ("bead_id", "i4"), ("x0", "i4"), ("x1", "i4"), ("y0", "i4"), ("y1", "i4")]
)
#: ``drift``: per frame, the reference beads' mean motion from their first position (nm).
DRIFT_DTYPE = np.dtype([("frame", "i8"), ("dx_nm", "f8"), ("dy_nm", "f8"), ("dz_nm", "f8")])


def software_versions() -> dict[str, str]:
    """Versions recorded in every file."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("magacq", "numpy", "h5py", "pydantic"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def to_records(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.empty(len(rows), dtype=dtype)
    for i, name in enumerate(dtype.names or ()):
        col = rows[:, i]
        if dtype[name].kind in "iu":
            col = np.nan_to_num(col, nan=-1 if dtype[name].kind == "i" else 0)
        out[name] = col
    return out


class RunFile:
    """One run's HDF5 file, open for appending (the writer process's side).

    Parameters
    ----------
    path : Path
        File to create.
    attrs : dict
        Root attributes written before SWMR starts (config, geometry, ...).
    rois : ndarray of ROIS_DTYPE
        The bead ROIs.
    with_truth : bool
        Create the ``truth`` table.
    with_motors : bool
        Create the ``motors`` table.
    with_events : bool
        Create the ``events`` table (a run with a protocol or locks).
    with_locks : bool
        Create the ``roi_moves`` table (a run with an XY-lock).
    video_shape : (height, width, dtype), optional
        Create the ``video`` dataset for raw frames.
    retrack : bool
        Create the ``retracked`` table (a file of `magacq retrack`).
    video_link : (file name, dataset name), optional
        Link the recorder's video dataset (a file beside this one) and create ``video_frames``
        and ``video_skipped``.
    """

    def __init__(
        self,
        path: Path,
        attrs: dict[str, Any],
        rois: np.ndarray,
        *,
        with_truth: bool,
        with_motors: bool = False,
        with_events: bool = False,
        with_locks: bool = False,
        video_shape: tuple[int, int, str] | None = None,
        retrack: bool = False,
        video_link: tuple[str, str] | None = None,
    ) -> None:
        self.path = path
        self._reserve: Path | None = path.with_name(f".{path.name}.reserve")
        try:
            with self._reserve.open("wb") as r:
                os.posix_fallocate(r.fileno(), 0, DISK_RESERVE)
            self._f = h5py.File(path, "w", libver="latest")
        except BaseException:
            self.release_reserve()
            raise
        f = self._f
        f.attrs["schema"] = SCHEMA
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["state"] = "running"
        for key, value in software_versions().items():
            f.attrs[f"version_{key}"] = value
        for key, value in attrs.items():
            f.attrs[key] = value
        self.tables: dict[str, h5py.Dataset] = {}
        for name, dtype, chunk in (
            ("tracks", TRACKS_DTYPE, 16384),
            ("frames", FRAMES_DTYPE, 8192),
            ("dropped", DROPPED_DTYPE, 1024),
            *((("truth", TRUTH_DTYPE, 16384),) if with_truth else ()),
            *((("motors", MOTORS_DTYPE, 4096),) if with_motors else ()),
            *((("events", EVENTS_DTYPE, 256),) if with_events else ()),
            *((("roi_moves", ROI_MOVES_DTYPE, 256),) if with_locks else ()),
            ("drift", DRIFT_DTYPE, 8192),
            *((("retracked", RETRACKED_DTYPE, 1024),) if retrack else ()),
        ):
            self.tables[name] = f.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(chunk,)
            )
        f.create_dataset("rois", data=rois, maxshape=(None,), chunks=(256,))
        self.video: h5py.Dataset | None = None
        if video_shape is not None:
            h, w, dtype = video_shape
            self.video = f.create_dataset(
                "video", shape=(0, h, w), maxshape=(None, h, w), dtype=dtype, chunks=(1, h, w)
            )
        if video_link is not None:
            file_name, dataset = video_link
            f[dataset] = h5py.ExternalLink(file_name, "/" + dataset)
            self.tables["video_skipped"] = self._frames_table("video_skipped")
        if video_shape is not None or video_link is not None:
            self.tables["video_frames"] = self._frames_table("video_frames")
        self.tables["rois"] = f["rois"]
        f["tracks"].attrs["columns"] = ",".join(TRACKS_DTYPE.names or ())
        f["tracks"].attrs["units"] = "time s, x_nm y_nm z_nm nm, flag magacq.tracking.TrackFlag"
        f["tracks"].attrs["flags"] = json.dumps({flag.name: int(flag) for flag in TrackFlag})
        if with_motors:
            f["motors"].attrs["units"] = "time s (host monotonic), height mm, rotation turns, z nm"
        f.swmr_mode = True
        self._last_flush = time.monotonic()
        # what closing may still have to write: one new chunk of every dataset, and metadata
        self._margin = _CLOSE_METADATA + sum(
            int(np.prod(ds.chunks)) * ds.dtype.itemsize
            for ds in (*self.tables.values(), *((self.video,) if self.video else ()))
        )

        self._unflushed = 0  # bytes appended since the last flush (HDF5 may not have written them)

    def _room_for(self, nbytes: int) -> None:
        """Refuse (ENOSPC) an append that would leave too little room to close the file."""
        st = os.statvfs(self.path.parent)
        if st.f_bavail * st.f_frsize < self._unflushed + nbytes + self._margin:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        self._unflushed += nbytes

    def _frames_table(self, name: str) -> h5py.Dataset:
        return self._f.create_dataset(
            name, shape=(0,), maxshape=(None,), dtype=VIDEO_FRAMES_DTYPE, chunks=(4096,)
        )

    def append(self, name: str, records: np.ndarray) -> None:
        if len(records) == 0:
            return
        ds = self.tables[name]
        if records.dtype != ds.dtype:  # an older file's table (re-tracking): fields by name
            records = _converted(records, ds.dtype)
        self._room_for(records.nbytes)
        n = ds.shape[0]
        ds.resize((n + len(records),))
        ds[n:] = records

    def append_frames(
        self, frames: np.ndarray, frame_numbers: np.ndarray, timestamps: np.ndarray
    ) -> None:
        """Frames ``(n, height, width)`` (cast to the video's dtype) and their numbers and
        timestamps into ``video`` and ``video_frames``."""
        if len(frames) == 0 or self.video is None:
            return
        n, (_, h, w) = self.video.shape[0], self.video.shape
        self._room_for(len(frames) * h * w * self.video.dtype.itemsize)
        self.video.resize((n + len(frames), h, w))
        self.video[n:] = frames.astype(self.video.dtype, copy=False)
        self.append("video_frames", to_records(np.column_stack([frame_numbers, timestamps]),
                                               VIDEO_FRAMES_DTYPE))  # fmt: skip

    def maybe_flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_S:
            self._f.flush()
            self._last_flush = now
            self._unflushed = 0

    def release_reserve(self) -> None:
        """Give the disk reserve back (the disk is full: what closing the file needs)."""
        if self._reserve is not None:
            self._reserve.unlink(missing_ok=True)
            self._reserve = None

    def close(self, final_attrs: dict[str, Any]) -> None:
        """Close the SWMR file, then reopen it once to write the final attributes."""
        self.release_reserve()
        try:
            self._f.flush()
        finally:
            self._f.close()
        with h5py.File(self.path, "r+", libver="latest") as f:
            for key, value in final_attrs.items():
                f.attrs[key] = value


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full (h5py raises OSError or
    RuntimeError, the errno in the message)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return any(f"errno = {e}," in text for e in (errno.ENOSPC, errno.EDQUOT)) or (
        "No space left on device" in text
    )


def run_attrs(config_json: str, config_path: str, geometry: Mapping[str, Any]) -> dict[str, Any]:
    """Root attributes describing the run, written when the file is created."""
    return {
        "config": config_json,
        "config_file": config_path,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "geometry": json.dumps(geometry),
        **{k: v for k, v in geometry.items() if isinstance(v, int | float | str)},
    }


def _converted(records: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``records`` as ``dtype``: common fields copied, new float fields NaN, others zero."""
    out = np.zeros(len(records), dtype=dtype)
    for name in dtype.names or ():
        if records.dtype.names and name in records.dtype.names:
            out[name] = records[name]
        elif dtype[name].kind == "f":
            out[name] = np.nan
    return out
