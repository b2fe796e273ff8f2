"""The run file (HDF5, schema ``magacq.run`` v1): its layout, and the writing side.

File layout (all tables are 1-D compound datasets, appended as the run goes):

- ``tracks``: time (s), frame, bead_id, x_nm, y_nm, z_nm, flag: one row per bead per frame, in
  the order stacks were tracked (sort by frame to get time order);
- ``frames``: frame, timestamp: every frame stored in the video buffer;
- ``dropped``: frame, timestamp, reason (0: video buffer full, 1: lost by the camera);
- ``rois``: bead_id, x0, x1, y0, y1 (pixels, x along columns), reference;
- ``truth`` (simulated runs): frame, bead_id, x_nm, y_nm, z_nm, the simulator's ground truth;
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
everything up to the last flush.
"""

import json
import platform
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from magacq.tracking import TrackFlag

SCHEMA = "magacq.run"
SCHEMA_VERSION = 1
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
FRAMES_DTYPE = np.dtype([("frame", "i8"), ("timestamp", "f8")])
DROPPED_DTYPE = np.dtype([("frame", "i8"), ("timestamp", "f8"), ("reason", "u1")])
ROIS_DTYPE = np.dtype(
    [("bead_id", "i4"), ("x0", "i4"), ("x1", "i4"), ("y0", "i4"), ("y1", "i4"), ("reference", "?")]
)
TRUTH_DTYPE = np.dtype(
    [("frame", "i8"), ("bead_id", "i4"), ("x_nm", "f8"), ("y_nm", "f8"), ("z_nm", "f8")]
)
RETRACKED_DTYPE = np.dtype([("start", "i8"), ("stop", "i8"), ("tracks", "i8")])

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
        video_shape: tuple[int, int, str] | None = None,
        retrack: bool = False,
        video_link: tuple[str, str] | None = None,
    ) -> None:
        self.path = path
        self._f = h5py.File(path, "w", libver="latest")
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
        f.swmr_mode = True
        self._last_flush = time.monotonic()

    def _frames_table(self, name: str) -> h5py.Dataset:
        return self._f.create_dataset(
            name, shape=(0,), maxshape=(None,), dtype=FRAMES_DTYPE, chunks=(4096,)
        )

    def append(self, name: str, records: np.ndarray) -> None:
        if len(records) == 0:
            return
        ds = self.tables[name]
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
        self.video.resize((n + len(frames), h, w))
        self.video[n:] = frames.astype(self.video.dtype, copy=False)
        self.append("video_frames", to_records(np.column_stack([frame_numbers, timestamps]),
                                               FRAMES_DTYPE))  # fmt: skip

    def maybe_flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_S:
            self._f.flush()
            self._last_flush = now

    def close(self, final_attrs: dict[str, Any]) -> None:
        """Close the SWMR file, then reopen it once to write the final attributes."""
        self._f.flush()
        self._f.close()
        with h5py.File(self.path, "r+", libver="latest") as f:
            for key, value in final_attrs.items():
                f.attrs[key] = value



def run_attrs(config_json: str, config_path: str, geometry: dict[str, Any]) -> dict[str, Any]:
    """Root attributes describing the run, written when the file is created."""
    return {
        "config": config_json,
        "config_file": config_path,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "geometry": json.dumps(geometry),
        **{k: v for k, v in geometry.items() if isinstance(v, int | float | str)},
    }
