"""The ``replay`` driver: a camera that plays back recorded frames.

Registered under ``magacq.drivers`` as ``replay``. It plays the ``video`` dataset of a magacq run
file (HDF5: ``video`` ``(n, height, width)``, and ``video_frames`` (frame, timestamp) when
present) or the pages of a TIFF stack, at the recorded timestamps, at a fixed rate, or as fast as
the consumer reads, so the whole pipeline runs on recorded data. Frame numbers count from 0 at
each start (the recorded ones: :meth:`ReplayCamera.recorded_frame`); timestamps are host
``time.monotonic()`` at the start plus the recorded (or paced) time since the first frame.

A file that cannot be read (missing, truncated, corrupt, no ``video``, still open for write) is
refused with its settings (so `magacq validate` refuses it too): an
:class:`~hal.UnsupportedSettingError` naming the file; a frame that cannot be read later raises
:class:`~hal.DeviceError`.
"""

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from hal import (
    AcquisitionEnded,
    DeviceError,
    DeviceSettings,
    FrameInfo,
    HalTimeoutError,
    TimestampClock,
    UnsupportedSettingError,
)
from hal import Camera as _Camera

__all__ = ["Camera", "ReplayCamera", "ReplayFileError", "ReplaySettings"]

_TIFF_SUFFIXES = (".tif", ".tiff")


class ReplayFileError(UnsupportedSettingError):
    """The file to replay is missing, truncated, corrupt or holds no video."""


class ReplaySettings(DeviceSettings):
    """Settings of the replay camera."""

    file: Path = Field(description="magacq run file (.h5, its `video`) or TIFF stack to play")
    frame_rate: float | None = Field(
        None,
        ge=0,
        description="null: at the recorded timestamps (TIFF: as fast as possible); "
        "0: as fast as possible; > 0: at this rate",
    )
    loop: bool = Field(False, description="start over after the last frame instead of ending")
    pixel_size_nm: float | None = Field(
        None, gt=0, description="default: the run file's pixel_size_nm attribute, else 100"
    )

    @field_validator("file")
    @classmethod
    def _readable(cls, value: Path) -> Path:
        """The file exists and its first and last frames read (as when the camera opens)."""
        if not value.is_file():
            raise ValueError(f"no such file: {value}")
        try:
            _Source(value).close()
        except ReplayFileError as exc:
            raise ValueError(str(exc)) from None
        return value


class _Source:
    """Random access to the recorded frames of one file (HDF5 run file or TIFF stack)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._h5: Any = None  # an h5py.File (untyped), or
        self._tif: Any = None  # a tifffile.TiffFile: whichever the file is
        self.timestamps: np.ndarray | None = None
        self.frames: np.ndarray | None = None
        self.attrs: dict = {}
        try:
            if path.suffix.lower() in _TIFF_SUFFIXES:
                self._open_tiff()
            else:
                self._open_h5()
            self._check_ends()
        except ReplayFileError:
            self.close()
            raise
        except Exception as exc:  # h5py/tifffile say why in their own words
            self.close()
            raise ReplayFileError(f"replay: cannot read {path}: {_one_line(exc)}") from None

    def _open_h5(self) -> None:
        import h5py

        # not as a SWMR reader: that one waits forever on a truncated file
        self._h5 = h5py.File(self.path, "r")
        if "video" not in self._h5:
            raise ReplayFileError(
                f"replay: {self.path} holds no `video` (record with output.video.mode)"
            )
        self.video = self._h5["video"]
        if self.video.ndim != 3 or self.video.dtype.kind != "u" or len(self.video) == 0:
            raise ReplayFileError(
                f"replay: {self.path}: `video` is {self.video.shape} {self.video.dtype}, "
                "expected (frames, height, width) of unsigned integers, at least one frame"
            )
        self.n, self.height, self.width = self.video.shape
        self.dtype = self.video.dtype
        self.attrs = dict(self._h5.attrs)
        if "video_frames" in self._h5:
            table = self._h5["video_frames"][:]
            if len(table) < self.n:
                raise ReplayFileError(
                    f"replay: {self.path}: `video_frames` lists {len(table)} frames, "
                    f"`video` holds {self.n} (truncated file?)"
                )
            self.frames = table["frame"][: self.n].astype(np.int64)
            self.timestamps = table["timestamp"][: self.n].astype(np.float64)

    def _open_tiff(self) -> None:
        import tifffile

        self._tif = tifffile.TiffFile(self.path)
        pages = self._tif.pages
        self.n = len(pages)
        first = pages.first
        if self.n == 0 or len(first.shape) != 2 or np.dtype(first.dtype).kind != "u":
            raise ReplayFileError(
                f"replay: {self.path}: expected a stack of 2-D unsigned-integer pages, "
                f"got {self.n} page(s) of {first.shape} {first.dtype}"
            )
        self.height, self.width = first.shape
        self.dtype = np.dtype(first.dtype)

    def _check_ends(self) -> None:
        """Read the first and the last frame: a truncated file fails here, not mid-run."""
        out = np.empty((self.height, self.width), self.dtype)
        for k in {0, self.n - 1}:
            self.read(k, out)

    def read(self, k: int, out: np.ndarray) -> None:
        """Frame ``k`` into ``out``."""
        if self._h5 is not None:
            self.video.read_direct(out, source_sel=np.s_[k])
        else:
            page = self._tif.pages[k]
            if page.shape != out.shape:
                raise ReplayFileError(
                    f"replay: {self.path}: page {k} is {page.shape}, page 0 {out.shape}"
                )
            out[...] = page.asarray()

    def close(self) -> None:
        for handle in (self._h5, self._tif):
            if handle is not None:
                handle.close()
        self._h5 = self._tif = None


class ReplayCamera(_Camera):
    """A camera playing a recorded run file's ``video`` or a TIFF stack (see the module)."""

    Settings = ReplaySettings

    def __init__(self, settings=None) -> None:
        super().__init__(settings)
        self.settings: ReplaySettings
        self._source: _Source | None = None
        self._stopped = threading.Event()
        self._next = 0
        self._n_frames: int | None = None
        self._t0 = 0.0
        self._rate: float | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def _do_open(self) -> None:
        self._source = _Source(self.settings.file)
        self._rate = self.settings.frame_rate

    def _do_close(self) -> None:
        if self._source is not None:
            self._source.close()
        self._source = None

    def _do_start(self, n_frames: int | None) -> None:
        self._next, self._n_frames = 0, n_frames
        self._t0 = time.monotonic()
        self._stopped.clear()

    def _do_stop(self) -> None:
        self._stopped.set()

    def _src(self) -> _Source:
        if self._source is None:
            raise DeviceError("ReplayCamera is not open; call open() first")
        return self._source

    # --- geometry ---------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return int(self._src().width)

    @property
    def height(self) -> int:
        return int(self._src().height)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._src().dtype)

    @property
    def bit_depth(self) -> int:
        return int(self._src().attrs.get("bit_depth", self.dtype.itemsize * 8))

    @property
    def timestamp_clock(self) -> TimestampClock:
        """Host ``time.monotonic()``: the start plus the recorded (or paced) time."""
        return TimestampClock.HOST_MONOTONIC

    @property
    def pixel_size_nm(self) -> float:
        if self.settings.pixel_size_nm is not None:
            return self.settings.pixel_size_nm
        return float(self._src().attrs.get("pixel_size_nm", 100.0))

    @property
    def n_recorded(self) -> int:
        """Frames in the file."""
        return int(self._src().n)

    @property
    def exposure_ms(self) -> float:
        return float("nan")

    @exposure_ms.setter
    def exposure_ms(self, value: float) -> None:
        raise UnsupportedSettingError("ReplayCamera: the exposure is the recording's")

    @property
    def frame_rate(self) -> float:
        """The pace: the set rate, 0 (as fast as possible) or the recording's mean rate."""
        if self._rate is not None:
            return self._rate
        ts = self._src().timestamps
        if ts is None or len(ts) < 2 or ts[-1] <= ts[0]:
            return 0.0
        return float((len(ts) - 1) / (ts[-1] - ts[0]))

    @frame_rate.setter
    def frame_rate(self, value: float) -> None:
        if value < 0:
            raise UnsupportedSettingError(f"ReplayCamera: frame_rate must be >= 0, got {value}")
        if self.is_running:
            raise DeviceError("ReplayCamera: stop before changing frame_rate")
        self._rate = float(value)

    # --- frames -----------------------------------------------------------------------------
    def recorded_frame(self, frame_number: int) -> int:
        """The recording's frame number of the ``frame_number``-th frame played since start."""
        src = self._src()
        k = frame_number % src.n
        return int(src.frames[k]) if src.frames is not None else k

    def _due(self, i: int, src: _Source) -> float:
        """Seconds after the start at which played frame ``i`` is released."""
        if self._rate is not None:
            return i / self._rate if self._rate > 0 else 0.0
        ts = src.timestamps
        if ts is None:
            return 0.0
        lap, k = divmod(i, src.n)
        span = ts[-1] - ts[0] + (ts[-1] - ts[0]) / max(src.n - 1, 1)  # a lap, one interval more
        return float(lap * span + ts[k] - ts[0])

    def _do_read_frame(self, out: np.ndarray, timeout: float) -> FrameInfo:
        src = self._src()
        i = self._next
        if (self._n_frames is not None and i >= self._n_frames) or (
            not self.settings.loop and i >= src.n
        ):
            raise AcquisitionEnded(f"ReplayCamera played its {i} frames")
        due = self._due(i, src)
        stamp = self._t0 + due
        wait = stamp - time.monotonic()
        if wait > timeout:
            self._stopped.wait(timeout)
            raise HalTimeoutError(f"ReplayCamera: no frame within {timeout:g} s")
        if wait > 0 and self._stopped.wait(wait):
            raise AcquisitionEnded("ReplayCamera was stopped")
        try:
            src.read(i % src.n, out)
        except ReplayFileError as exc:
            raise DeviceError(str(exc)) from None
        except Exception as exc:
            raise DeviceError(
                f"replay: frame {i % src.n} of {src.path} unreadable: {_one_line(exc)}"
            ) from None
        self._next = i + 1
        if self._rate == 0 or (self._rate is None and src.timestamps is None):
            stamp = time.monotonic()
        return FrameInfo(float(stamp), i)


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


#: Names the registry looks for.
Camera = ReplayCamera
