"""The writer process: drains the run's MatrixBuffers into one HDF5 file (schema ``magacq.run`` v1).

File layout (all tables are 1-D compound datasets, appended as the run goes):

- ``tracks``: time (s), frame, bead_id, x_nm, y_nm, z_nm, flag: one row per bead per frame, in
  the order stacks were tracked (sort by frame to get time order);
- ``frames``: frame, timestamp: every frame stored in the video buffer;
- ``dropped``: frame, timestamp, reason (0: video buffer full, 1: lost by the camera);
- ``rois``: bead_id, x0, x1, y0, y1 (pixels, x along columns), reference;
- ``truth`` (simulated runs): frame, bead_id, x_nm, y_nm, z_nm, the simulator's ground truth;
- ``video`` (``output.raw_video_every`` N > 0): every Nth camera frame, ``(n, height, width)`` in
  the camera's dtype, chunked one frame per chunk; ``video_frames``: their frame and timestamp;
- root attributes: schema, schema_version, state (running/complete/failed), config (JSON),
  software versions, camera geometry, run counters and latency percentiles.

The file is written in HDF5 SWMR mode and flushed every ``FLUSH_S`` seconds, so it can be read
(``h5py.File(path, "r", swmr=True)``) while the run goes on, and after a crash it holds
everything up to the last flush.
"""

import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from magacq.tracking import TrackFlag
from magacq.wiring import RAW_VIDEO, RunWiring

logger = logging.getLogger("magacq.writer")

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
#: Columns of the positions MatrixBuffer rows (float64); the last one is not saved.
POSITION_COLUMNS = ("time", "frame", "bead_id", "x_nm", "y_nm", "z_nm", "flag", "t_written")


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


def _to_records(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
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
    """

    def __init__(
        self,
        path: Path,
        attrs: dict[str, Any],
        rois: np.ndarray,
        *,
        with_truth: bool,
        video_shape: tuple[int, int, str] | None = None,
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
            self.tables["video_frames"] = f.create_dataset(
                "video_frames", shape=(0,), maxshape=(None,), dtype=FRAMES_DTYPE, chunks=(1024,)
            )
        self.tables["rois"] = f["rois"]
        f["tracks"].attrs["columns"] = ",".join(TRACKS_DTYPE.names or ())
        f["tracks"].attrs["units"] = "time s, x_nm y_nm z_nm nm, flag magacq.tracking.TrackFlag"
        f["tracks"].attrs["flags"] = json.dumps({flag.name: int(flag) for flag in TrackFlag})
        f.swmr_mode = True
        self._last_flush = time.monotonic()

    def append(self, name: str, records: np.ndarray) -> None:
        if len(records) == 0:
            return
        ds = self.tables[name]
        n = ds.shape[0]
        ds.resize((n + len(records),))
        ds[n:] = records

    def append_video(self, rows: np.ndarray) -> None:
        """Rows of frame, timestamp, pixels (raw-video MatrixBuffer) into ``video``."""
        if len(rows) == 0 or self.video is None:
            return
        n, (_, h, w) = self.video.shape[0], self.video.shape
        self.video.resize((n + len(rows), h, w))
        self.video[n:] = rows[:, 2:].reshape(-1, h, w).astype(self.video.dtype)
        self.append("video_frames", _to_records(rows[:, :2], FRAMES_DTYPE))

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


class _Latency:
    """Latency samples (one per frame) for live percentiles and the run's summary."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._recent = np.empty(0)

    def add(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        first = rows[:, 2] == rows[:, 2].min()  # one bead: one sample per frame
        lat = rows[first, 7] - rows[first, 0]
        self._chunks.append(lat)
        self._recent = np.concatenate([self._recent[-4000:], lat])

    def recent(self) -> tuple[float, float, float]:
        if len(self._recent) == 0:
            return 0.0, 0.0, 0.0
        p50, p99 = np.percentile(self._recent, [50, 99])
        return float(p50), float(p99), float(self._recent.max())

    def summary(self) -> dict[str, float]:
        if not self._chunks:
            return {}
        lat = np.concatenate(self._chunks)
        p50, p99 = np.percentile(lat, [50, 99])
        return {
            "latency_p50_s": float(p50),
            "latency_p99_s": float(p99),
            "latency_max_s": float(lat.max()),
        }


def run_writer(wiring: RunWiring) -> None:
    """Entry point of the writer process."""
    wiring.enter_child("writer")
    buffers = wiring.attach_matrices()
    spec = wiring.writer
    rf = RunFile(
        Path(spec["path"]), spec["attrs"], np.asarray(spec["rois"], ROIS_DTYPE),
        with_truth="truth" in buffers,
        video_shape=(
            (wiring.geometry["height"], wiring.geometry["width"], wiring.geometry["dtype"])
            if RAW_VIDEO in buffers else None
        ),
    )  # fmt: skip
    rois = _RoiRecorder(wiring, rf)
    latency = _Latency()
    fmap = _FrameMap()
    stats = wiring.stats
    failed = None
    try:
        while True:
            finishing = wiring.writer_finish.wait(0.1)
            _drain(rf, buffers, latency, fmap)
            rois.update()
            p50, p99, pmax = latency.recent()
            stats.set("latency_p50", p50)
            stats.set("latency_p99", p99)
            stats.set("latency_max", pmax)
            rf.maybe_flush()
            if finishing:
                _drain(rf, buffers, latency, fmap, final=True)
                break
    except BaseException as exc:  # keep what we have: the file is closed below
        failed = f"writer failed: {exc}"
        logger.exception("writer failed")
    finally:
        snap = stats.snapshot()
        state = wiring.final_state.value.decode() or "complete"
        final = {
            "state": "failed" if failed else state,
            "error": failed or wiring.final_error.value.decode(),
            "frames_stored": int(snap["frames"]),
            "frames_dropped": int(snap["dropped"]),
            "frames_lost_by_camera": int(snap["camera_gaps"]),
            "stacks_tracked": int(snap["stacks_tracked"]),
            "stacks_lost": int(snap["stacks_lost"]),
            "worker_restarts": int(snap["worker_restarts"]),
            "video_frames": int(snap["video_frames"]),
            "video_skipped": int(snap["video_skipped"]),
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **latency.summary(),
        }
        rf.close(final)
        for buf in buffers.values():
            _close(buf)
        rois.close()
    logger.debug("writer done: %s", rf.path)
    if failed:
        raise SystemExit(1)


class _FrameMap:
    """Buffer sequence number -> camera frame number, from the ``frames`` rows."""

    def __init__(self) -> None:
        self.frame = np.empty(0, dtype=np.int64)
        self.n = 0
        self.held = np.empty((0, len(POSITION_COLUMNS)))  # position rows awaiting their frames

    def add(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        seq = rows[:, 2].astype(np.int64)
        need = int(seq.max()) + 1
        if need > len(self.frame):
            grown = np.full(max(need, 2 * len(self.frame)), -1, dtype=np.int64)
            grown[: len(self.frame)] = self.frame
            self.frame = grown
        self.frame[seq] = rows[:, 0].astype(np.int64)
        self.n = max(self.n, need)

    def map(self, seq: np.ndarray) -> np.ndarray:
        s = seq.astype(np.int64)
        ok = (s >= 0) & (s < self.n)
        out = np.full(len(s), -1, dtype=np.int64)
        out[ok] = self.frame[s[ok]]
        return out


def _drain(
    rf: RunFile, buffers: dict[str, Any], latency: _Latency, fmap: _FrameMap, final: bool = False
) -> None:
    for name, dtype in (
        ("frames", FRAMES_DTYPE),
        ("dropped", DROPPED_DTYPE),
        ("truth", TRUTH_DTYPE),
    ):
        if name in buffers:
            rows = _read(buffers[name])
            if name == "frames":
                fmap.add(rows)
            rf.append(name, _to_records(rows, dtype))
    if RAW_VIDEO in buffers:
        rf.append_video(_read(buffers[RAW_VIDEO]))
    rows = _read(buffers["positions"])
    if len(rows):
        latency.add(rows)
    if len(fmap.held):  # rows of stacks whose frame rows had not arrived at the last drain
        rows = np.concatenate([fmap.held, rows]) if len(rows) else fmap.held
    if len(rows):
        frame = fmap.map(rows[:, 1])
        # a stack can be tracked between this drain's read of `frames` and of `positions`:
        # hold its rows until its frame numbers are known (written as -1 only at the end)
        known = frame >= 0
        fmap.held = rows[~known] if not final else np.empty((0, rows.shape[1]))
        if final:
            known[:] = True
        rows = rows[known]
        rows[:, 1] = frame[known]
        rf.append("tracks", _to_records(rows[:, :7], TRACKS_DTYPE))


class _RoiRecorder:
    """Appends to ``rois`` the beads added at run time (e.g. by `magacq view`) to BeadRoiBuffer."""

    def __init__(self, wiring: RunWiring, rf: RunFile) -> None:
        self.rf = rf
        self.buf = None
        self.version = -1
        self.seen = {int(i) for i in rf.tables["rois"]["bead_id"][:]}
        if "BeadRoiBuffer" in wiring.extra_buffers:
            from buffers import BeadRoiBuffer

            self.buf = BeadRoiBuffer(create=False, locks=wiring.locks, namespace=wiring.namespace)

    def update(self) -> None:
        if self.buf is None or self.buf.version == self.version:
            return
        self.version, ids, boxes = self.buf.snapshot()
        new = [k for k, i in enumerate(ids) if int(i) not in self.seen]
        if new:
            rows = np.zeros(len(new), dtype=ROIS_DTYPE)
            rows["bead_id"] = ids[new]
            for c, name in enumerate(("x0", "x1", "y0", "y1")):
                rows[name] = boxes[new, c]
            self.rf.append("rois", rows)
            self.seen.update(int(i) for i in ids[new])
            logger.info("beads %s added at run time", rows["bead_id"].tolist())

    def close(self) -> None:
        if self.buf is not None:
            self.buf.close()


def _read(buf: Any) -> np.ndarray:
    try:
        rows = buf.read()
    except Exception as exc:  # BufferUnderflow: nothing new
        if type(exc).__name__ == "BufferUnderflow":
            return np.empty((0, 1))
        raise
    return np.asarray(rows, dtype=np.float64)


def _close(buf: Any) -> None:
    close = getattr(buf, "close", None)
    if close is not None:
        close()


def run_attrs(config_json: str, config_path: str, geometry: dict[str, Any]) -> dict[str, Any]:
    """Root attributes describing the run, written when the file is created."""
    return {
        "config": config_json,
        "config_file": config_path,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "geometry": json.dumps(geometry),
        **{k: v for k, v in geometry.items() if isinstance(v, int | float | str)},
    }
