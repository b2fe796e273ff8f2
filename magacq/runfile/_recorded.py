"""The reading side of a run file's recorded video (``video`` or ``roi_video``, and
``video_frames``), for `magacq retrack`: what the file holds, its frames by range, and its other
tables.

Every problem with the file (missing, not a run file, truncated, a damaged chunk, no video) is a
:class:`~magacq.errors.ConfigError` naming the file: the file is the command's input.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from magacq.errors import ConfigError
from magacq.runfile._run import SCHEMA
from magacq.runfile._video import dataset_name


@dataclass(frozen=True)
class RecordedRun:
    """What a run file with recorded video holds (its pixels stay in the file).

    Attributes
    ----------
    path : Path
    mode : "frames" or "rois"
        Whole frames (``video``) or each bead's ROI of each frame (``roi_video``).
    n_frames : int
        Frames recorded.
    shape : tuple of int
        One recorded frame: ``(height, width)``, or ``(n_beads, side, side)`` for ROIs (the
        beads of ``rois``, in that order).
    dtype : str
        Pixel dtype.
    rois : ndarray of ROIS_DTYPE
        The bead ROIs of the run.
    attrs : dict
        Root attributes.
    config : dict
        The run's configuration (the ``config`` attribute, parsed), ``{}`` when absent.
    tables : tuple of str
        The 1-D tables the file holds.
    """

    path: Path
    mode: str
    n_frames: int
    shape: tuple[int, ...]
    dtype: str
    rois: np.ndarray
    attrs: dict[str, Any]
    config: dict[str, Any]
    tables: tuple[str, ...]


def _open(path: Path) -> h5py.File:
    """``path`` open for reading: as a closed file (HDF5 checks that it is whole), else, when
    a writer holds it (a live run, or one that died: its last flush counts), as a SWMR reader.
    A SWMR reader of a truncated file waits for data that never comes, hence this order."""
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if "truncated" in str(exc) or "signature" in str(exc):
            raise
        return h5py.File(path, "r", swmr=True)


def _bad(path: Path, exc: BaseException) -> ConfigError:
    why = " ".join((str(exc) or type(exc).__name__).split())
    return ConfigError(f"{path}: cannot read the recorded run: {why}")


def open_recorded(path: str | Path) -> RecordedRun:
    """Check a run file's recorded video and describe it.

    Raises
    ------
    ConfigError
        No such file, not a magacq run file, no recorded video, a truncated or damaged file
        (the first and last frames are read to find out).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such run file")
    try:
        with _open(path) as f:
            if f.attrs.get("schema") != SCHEMA:
                raise ConfigError(f"{path}: not a magacq run file (schema {SCHEMA!r})")
            modes: tuple[Literal["frames", "rois"], ...] = ("frames", "rois")
            mode = next((m for m in modes if dataset_name(m) in f), None)
            if mode is None or "video_frames" not in f:
                raise ConfigError(
                    f"{path}: holds no recorded video (record with output.video.mode)"
                )
            video = f[dataset_name(mode)]
            n = min(len(video), len(f["video_frames"]))
            if n == 0:
                raise ConfigError(f"{path}: its recorded video has no frames")
            for k in {0, n - 1}:
                video[k]  # a truncated file or a damaged end fails here
            attrs = dict(f.attrs)
            rois = f["rois"][:]
            tables = tuple(
                name for name, obj in f.items() if isinstance(obj, h5py.Dataset) and obj.ndim == 1
            )
            recorded = RecordedRun(
                path, mode, n, tuple(int(d) for d in video.shape[1:]), str(video.dtype), rois,
                attrs, json.loads(attrs.get("config", "{}")), tables,
            )  # fmt: skip
    except ConfigError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise _bad(path, exc) from None
    return recorded


def read_frames(
    path: str | Path, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recorded frames ``start:stop``: pixels (``(n, h, w)``, or ``(n, n_beads, side, side)``
    from a ``roi_video``), frame numbers and timestamps.

    Raises
    ------
    ConfigError
        The file cannot be read there (e.g. a damaged chunk), naming the frames.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            video = f["video"] if "video" in f else f["roi_video"]
            frames = video[start:stop]
            table = f["video_frames"][start:stop]
    except (OSError, KeyError, ValueError) as exc:
        why = " ".join(str(exc).split())
        raise ConfigError(
            f"{path}: recorded frames {start}..{stop - 1} unreadable: {why}"
        ) from None
    return frames, table["frame"].astype(np.int64), table["timestamp"].astype(np.float64)


def read_table(path: str | Path, name: str) -> np.ndarray:
    """The whole 1-D table ``name`` of a run file."""
    path = Path(path)
    try:
        with _open(path) as f:
            table: np.ndarray = f[name][:]
            return table
    except (OSError, KeyError, ValueError) as exc:
        raise _bad(path, exc) from None


def read_attrs(path: str | Path) -> dict[str, Any]:
    """The root attributes of a run file."""
    path = Path(path)
    try:
        with _open(path) as f:
            return dict(f.attrs)
    except OSError as exc:
        raise _bad(path, exc) from None
