"""The mmcore camera driver: any Micro-Manager camera through pymmcore's CMMCore."""

import logging
import time
from typing import Any, ClassVar

import numpy as np

from hal._camera import Camera as _Camera
from hal._camera import FrameInfo, TimestampClock
from hal._errors import AcquisitionEnded, DeviceError, HalTimeoutError, UnsupportedSettingError
from hal.mmcore._core import (
    MM_ERRORS,
    apply_presets,
    device_label,
    import_pymmcore,
    load_core,
    missing_library,
    set_property,
)
from hal.mmcore._settings import MMCoreSettings

logger = logging.getLogger("hal.mmcore")

_DTYPES: dict[int, np.dtype] = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16)}
#: Longest sleep between polls of MMCore's circular buffer (MMCore offers no blocking wait).
_MAX_POLL_S = 0.001


class Camera(_Camera):
    """A Micro-Manager camera driven through MMCore's sequence acquisition.

    Frames go through MMCore's circular buffer; each is popped and copied once into the
    caller's array. ``frame_number`` is MMCore's ``ImageNumber`` (counted per insert from 0 at
    start), so frames MMCore dropped on a circular-buffer overflow show as a gap and add to
    :attr:`dropped_frames`.

    Parameters
    ----------
    settings : mapping, optional
        See :class:`MMCoreSettings`.
    """

    Settings: ClassVar[type[MMCoreSettings]] = MMCoreSettings
    settings: MMCoreSettings

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.core: Any = None
        self.label = ""
        self.dropped_frames = 0
        self._pymmcore: Any = None
        self._geometry: tuple[int, int, np.dtype, int] = (0, 0, np.dtype(np.uint16), 16)
        self._pixel_size_nm = 0.0
        self._n_frames: int | None = None
        self._next_number = 0
        self._poll_s = _MAX_POLL_S

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return missing_library()

    # --- open / close -------------------------------------------------------------------
    def _do_open(self) -> None:
        self._pymmcore = import_pymmcore()
        s = self.settings
        self.core = load_core(s.mm_path, s.config_file)
        try:
            self._configure()
        except BaseException:
            self._unload()
            raise

    def _configure(self) -> None:
        s, core = self.settings, self.core
        self.label = device_label(
            core, s.camera, core.getCameraDevice(), self._pymmcore.CameraDevice, "camera"
        )
        core.setCameraDevice(self.label)
        apply_presets(core, s.presets)
        for name, value in s.properties.items():
            if isinstance(value, dict):
                for prop, v in value.items():
                    set_property(core, name, prop, v)
            else:
                set_property(core, self.label, name, value)
        if s.binning is not None:
            self.binning = s.binning
        if s.roi is not None:
            self.roi = s.roi
        if s.exposure_ms is not None:
            self.exposure_ms = s.exposure_ms
        if s.buffer_mb is not None:
            core.setCircularBufferMemoryFootprint(s.buffer_mb)
        if s.pixel_size_nm is not None:
            self._pixel_size_nm = s.pixel_size_nm
        else:
            self._pixel_size_nm = core.getPixelSizeUm() * 1000.0
            if self._pixel_size_nm <= 0:
                raise UnsupportedSettingError(
                    f"{s.config_file} defines no pixel size: set pixel_size_nm"
                )
        self._refresh_geometry()
        w, h, dtype, bits = self._geometry
        logger.info("opened MMCore camera %r: %dx%d %s (%d bits)", self.label, w, h, dtype, bits)

    def _refresh_geometry(self) -> None:
        core = self.core
        if core.getNumberOfComponents() != 1:
            raise UnsupportedSettingError(
                f"camera {self.label!r} delivers colour images; magacq needs a monochrome camera"
            )
        bpp = core.getBytesPerPixel()
        if bpp not in _DTYPES:
            # Micro-Manager's 4-byte grey (GRAY32) is 32-bit float, which magacq cannot record.
            kind = "32-bit float" if bpp == 4 else f"{bpp}-byte"
            raise UnsupportedSettingError(
                f"camera {self.label!r} delivers {kind} pixels{self._pixel_type()}; magacq "
                "records 8- and 16-bit monochrome cameras: choose an integer pixel type"
            )
        self._geometry = (
            core.getImageWidth(),
            core.getImageHeight(),
            _DTYPES[bpp],
            core.getImageBitDepth(),
        )

    def _pixel_type(self) -> str:
        """`` (PixelType X; allowed: ...)`` where the camera has that property."""
        core = self.core
        if not core.hasProperty(self.label, "PixelType"):
            return ""
        allowed = ", ".join(core.getAllowedPropertyValues(self.label, "PixelType"))
        return f" (PixelType {core.getProperty(self.label, 'PixelType')}; allowed: {allowed})"

    def _do_close(self) -> None:
        self._unload()

    def _unload(self) -> None:
        if self.core is not None:
            try:
                if self.core.isSequenceRunning():
                    self.core.stopSequenceAcquisition()
            finally:
                self.core.unloadAllDevices()
                self.core = None

    # --- acquisition --------------------------------------------------------------------
    def _do_start(self, n_frames: int | None) -> None:
        core = self.core
        self._refresh_geometry()
        self._n_frames = n_frames
        self._next_number = 0
        self.dropped_frames = 0
        exposure_s = core.getExposure() / 1000.0
        self._poll_s = min(_MAX_POLL_S, max(exposure_s / 8, 0.0001))
        try:
            if n_frames is None:
                core.startContinuousSequenceAcquisition(0)
            else:
                # stopOnOverflow=False: MMCore then discards the buffered frames on an overflow
                # and carries on; the gap in ImageNumber tells how many were lost.
                core.startSequenceAcquisition(n_frames, 0, False)
        except MM_ERRORS as exc:
            raise DeviceError(f"camera {self.label!r} failed to start: {exc}") from None

    def _do_stop(self) -> None:
        try:
            self.core.stopSequenceAcquisition()
        except MM_ERRORS as exc:
            raise DeviceError(f"camera {self.label!r} failed to stop: {exc}") from None

    def _do_read_frame(self, out: np.ndarray, timeout: float) -> FrameInfo:
        core = self.core
        deadline = time.monotonic() + timeout
        while True:
            # Read "running" before the count: once the camera has stopped, every frame it
            # inserted is already counted.
            running = core.isSequenceRunning()
            if core.getRemainingImageCount() > 0:
                break
            if not running:
                self._account_end()
                raise AcquisitionEnded(f"camera {self.label!r} is no longer acquiring")
            if time.monotonic() > deadline:
                raise HalTimeoutError(f"no frame from camera {self.label!r} in {timeout:g} s")
            time.sleep(self._poll_s)
        md = self._pymmcore.Metadata()
        image = core.popNextImageMD(md)
        np.copyto(out, image, casting="no")
        return self._frame_info(md)

    def _frame_info(self, md: Any) -> FrameInfo:
        if md.HasTag("ImageNumber"):
            number = int(md.GetSingleTag("ImageNumber").GetValue())
        else:
            number = self._next_number
        if number > self._next_number:
            lost = number - self._next_number
            self.dropped_frames += lost
            logger.warning(
                "camera %r: %d frame(s) lost before frame %d (circular buffer overflow; "
                "%d dropped in all)",
                self.label,
                lost,
                number,
                self.dropped_frames,
            )
        self._next_number = number + 1
        if self.settings.timestamps == "host":
            return FrameInfo(time.monotonic(), number)
        # MMCore stamps every frame whose camera did not (in whole ms since the start).
        elapsed_ms = float(md.GetSingleTag("ElapsedTime-ms").GetValue())
        return FrameInfo(elapsed_ms / 1000.0, number)

    def _account_end(self) -> None:
        """Count frames of a finite acquisition that never reached the buffer's reader."""
        if self._n_frames is not None and self._next_number < self._n_frames:
            lost = self._n_frames - self._next_number
            self.dropped_frames += lost
            self._next_number = self._n_frames
            logger.warning("camera %r: the last %d frame(s) were lost", self.label, lost)

    def _require_open(self) -> None:
        # The core, not the open flag: settings are applied while open() is still running.
        if self.core is None:
            raise DeviceError("mmcore camera is not open; call open() first")

    # --- geometry and exposure ----------------------------------------------------------
    @property
    def width(self) -> int:
        return self._geometry[0]

    @property
    def height(self) -> int:
        return self._geometry[1]

    @property
    def dtype(self) -> np.dtype:
        return self._geometry[2]

    @property
    def bit_depth(self) -> int:
        return self._geometry[3]

    @property
    def pixel_size_nm(self) -> float:
        return self._pixel_size_nm

    @property
    def timestamp_clock(self) -> TimestampClock:
        """Since the acquisition's start (``ElapsedTime-ms``), or the host's (``timestamps``)."""
        if self.settings.timestamps == "host":
            return TimestampClock.HOST_MONOTONIC
        return TimestampClock.CAMERA_SINCE_START

    @property
    def exposure_ms(self) -> float:
        self._require_open()
        return float(self.core.getExposure())

    @exposure_ms.setter
    def exposure_ms(self, value: float) -> None:
        self._require_open()
        if value < 0:
            raise UnsupportedSettingError(f"exposure must be >= 0 ms, got {value:g}")
        if self.core.hasProperty(self.label, "Exposure"):
            set_property(self.core, self.label, "Exposure", float(value))
        else:
            self.core.setExposure(float(value))

    @property
    def frame_rate(self) -> float:
        """0: Micro-Manager cameras run free, one frame per exposure (or readout)."""
        return 0.0

    @frame_rate.setter
    def frame_rate(self, value: float) -> None:
        if value != 0:
            raise UnsupportedSettingError(
                "Micro-Manager cameras have no standard frame-rate control: set exposure_ms, or "
                "the camera's own frame-rate property under properties"
            )

    @property
    def binning(self) -> int:
        self._require_open()
        return int(self.core.getProperty(self.label, "Binning"))

    @binning.setter
    def binning(self, value: int) -> None:
        self._require_open()
        if not self.core.hasProperty(self.label, "Binning"):
            if value != 1:
                raise UnsupportedSettingError(f"camera {self.label!r} has no binning")
            return
        set_property(self.core, self.label, "Binning", int(value))
        self._refresh_geometry()

    @property
    def roi(self) -> tuple[int, int, int, int]:
        self._require_open()
        x, y, w, h = self.core.getROI(self.label)
        b = self.binning
        return (x * b, y * b, w * b, h * b)

    @roi.setter
    def roi(self, value: tuple[int, int, int, int]) -> None:
        self._require_open()
        b = self.binning
        if any(v % b for v in value) or value[2] <= 0 or value[3] <= 0:
            raise UnsupportedSettingError(
                f"roi {tuple(value)} must be positive multiples of the binning ({b})"
            )
        x, y, w, h = (v // b for v in value)
        try:
            self.core.setROI(self.label, x, y, w, h)
        except MM_ERRORS as exc:
            raise UnsupportedSettingError(
                f"camera {self.label!r} refused roi {tuple(value)}: {' '.join(str(exc).split())}"
            ) from None
        self._refresh_geometry()
