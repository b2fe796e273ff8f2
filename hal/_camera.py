"""The Camera interface every camera driver implements.

Public methods do the bookkeeping (state checks, argument checks, logging) once and call the
``_do_*`` hooks that a driver fills in (see :class:`~hal._device.Device`).
"""

from abc import abstractmethod
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

from hal._device import Device
from hal._errors import DeviceError, UnsupportedSettingError


class TimestampClock(StrEnum):
    """The clock a camera's frame timestamps are on (:attr:`Camera.timestamp_clock`).

    Only ``HOST_MONOTONIC`` is the host's clock; a run maps the camera's clocks onto it.
    """

    #: The host's ``time.monotonic()``, in seconds.
    HOST_MONOTONIC = "host_monotonic"
    #: The camera's (or its library's) clock, seconds since the acquisition started.
    CAMERA_SINCE_START = "camera_since_start"
    #: The camera's own clock, seconds from an origin of its own (power-on, a counter).
    CAMERA_FREE_RUNNING = "camera_free_running"


class FrameInfo(NamedTuple):
    """Metadata of one delivered frame.

    Attributes
    ----------
    timestamp : float
        Seconds on the camera's :attr:`~Camera.timestamp_clock`.
    frame_number : int
        The camera's frame counter, 0 for the first frame after ``start``; a gap means frames
        were lost before they reached the driver.
    """

    timestamp: float
    frame_number: int


class Camera(Device):
    """A camera: open, configure, start, deliver frames into caller-owned arrays, stop, close.

    Frames are delivered by :meth:`read_frame` into an array the caller hands over, shaped
    ``(height, width)`` (row-major, as cameras send them) with the camera's ``dtype``, so the
    producer can point it straight at a VideoBuffer slot.

    Parameters
    ----------
    settings : mapping, optional
        Driver settings, validated against :attr:`Settings`.
    """

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._is_running = False

    @property
    def is_running(self) -> bool:
        return self._is_running

    def close(self) -> None:
        """Stop any acquisition and release the device; safe to call twice."""
        try:
            if self._is_open and self._is_running:
                self.stop()
        finally:
            super().close()

    def start(self, n_frames: int | None = None) -> None:
        """Start acquiring ``n_frames`` frames, or continuously when None."""
        self._require_open()
        if n_frames is not None and n_frames < 1:
            raise UnsupportedSettingError(f"n_frames must be >= 1 or None, got {n_frames}")
        if self._is_running:
            raise DeviceError(f"{type(self).__name__} is already acquiring")
        self._do_start(n_frames)
        self._is_running = True

    def stop(self) -> None:
        """Stop acquiring; safe to call when stopped."""
        if self._is_running:
            self._is_running = False
            self._do_stop()

    def read_frame(self, out: np.ndarray, timeout: float = 1.0) -> FrameInfo:
        """Wait up to ``timeout`` seconds for the next frame and copy it into ``out``.

        Parameters
        ----------
        out : numpy.ndarray
            Writable C-contiguous array of shape ``(height, width)`` and the camera's dtype.
        timeout : float
            Seconds to wait; 0 returns a frame that has already arrived, without waiting.

        Returns
        -------
        FrameInfo

        Raises
        ------
        HalTimeoutError
            No frame arrived within ``timeout``.
        AcquisitionEnded
            A finite acquisition has delivered all its frames.
        ValueError
            ``out`` has the wrong shape, dtype or layout.
        """
        if not self._is_running:
            raise DeviceError(f"{type(self).__name__} is not acquiring; call start() first")
        expected = (self.height, self.width)
        if out.shape != expected or out.dtype != self.dtype:
            raise ValueError(
                f"frame array must be {expected} {self.dtype}, got {out.shape} {out.dtype}"
            )
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("frame array must be writable and C-contiguous")
        return self._do_read_frame(out, timeout)

    # --- geometry and exposure ----------------------------------------------------------
    @property
    @abstractmethod
    def width(self) -> int:
        """Frame width in pixels (after ROI and binning)."""

    @property
    @abstractmethod
    def height(self) -> int:
        """Frame height in pixels (after ROI and binning)."""

    @property
    @abstractmethod
    def dtype(self) -> np.dtype:
        """Pixel dtype of delivered frames (an unsigned integer type)."""

    @property
    @abstractmethod
    def bit_depth(self) -> int:
        """Significant bits per pixel (e.g. 12 for a 12-bit camera in uint16)."""

    @property
    @abstractmethod
    def timestamp_clock(self) -> TimestampClock:
        """The clock of :attr:`FrameInfo.timestamp` (a driver that falls back to the host's
        clock mid-acquisition says so here from then on)."""

    @property
    @abstractmethod
    def pixel_size_nm(self) -> float:
        """Size of one pixel in the sample plane, in nm."""

    @property
    @abstractmethod
    def exposure_ms(self) -> float:
        """Exposure time in milliseconds (NaN where the camera reports none).

        Setting it raises UnsupportedSettingError where the camera has no exposure control."""

    @exposure_ms.setter
    @abstractmethod
    def exposure_ms(self, value: float) -> None: ...

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Frames per second the camera is set to deliver (0: free-running, as fast as it can).

        Setting a rate (or 0) the camera cannot run at raises UnsupportedSettingError."""

    @frame_rate.setter
    @abstractmethod
    def frame_rate(self, value: float) -> None: ...

    @property
    def roi(self) -> tuple[int, int, int, int]:
        """Sensor region ``(x, y, width, height)`` in unbinned pixels."""
        return (0, 0, self.width * self.binning, self.height * self.binning)

    @roi.setter
    def roi(self, value: tuple[int, int, int, int]) -> None:
        raise UnsupportedSettingError(f"{type(self).__name__} has no settable ROI")

    @property
    def binning(self) -> int:
        """Binning factor (1 where the camera has none)."""
        return 1

    @binning.setter
    def binning(self, value: int) -> None:
        if value != 1:
            raise UnsupportedSettingError(f"{type(self).__name__} supports binning 1 only")

    # --- driver hooks (and Device's _do_open, _do_close) ---------------------------------
    @abstractmethod
    def _do_start(self, n_frames: int | None) -> None: ...

    @abstractmethod
    def _do_stop(self) -> None: ...

    @abstractmethod
    def _do_read_frame(self, out: np.ndarray, timeout: float) -> FrameInfo: ...
