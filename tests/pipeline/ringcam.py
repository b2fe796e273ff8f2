"""A small real camera driver for pipeline tests: ring-pattern beads at known positions.

It implements ``hal.Camera`` fully (paced frames, frame numbers, timestamps) and is loaded by the
pipeline through a ``module:Class`` driver path, as a lab's own driver would be. Until the `sim`
driver is available everywhere the pipeline tests use it; its ``ground_truth`` gives the true
bead centres (nm, origin at the image corner).
"""

import time

import numpy as np

from hal import (
    AcquisitionEnded,
    Camera,
    DeviceError,
    DeviceSettings,
    FrameInfo,
    HalTimeoutError,
    TimestampClock,
)
from simulators.focus_stage import SimFocusStage

BEADS_PX = ((40.3, 42.6), (110.2, 38.1), (76.7, 100.4))


class RingCamSettings(DeviceSettings):
    frame_rate: float = 200.0
    width: int = 160
    height: int = 144
    fail_after: int = 0
    clock_offset_s: float = 0.0  # its timestamps: the host's monotonic clock plus this
    stall_after: int = 0  # deliver this many frames, then none (every read times out)
    open_s: float = 0.0  # opening takes this long (a camera that is slow to open)
    open_error: str = ""  # then fails with this error (a camera that cannot be opened)


class RingCam(Camera):
    """Ring beads on a flat background, paced at ``frame_rate``."""

    Settings = RingCamSettings

    def _do_open(self) -> None:
        s = self.settings
        time.sleep(s.open_s)
        if s.open_error:
            raise DeviceError(f"ringcam: {s.open_error}")
        yy, xx = np.mgrid[: s.height, : s.width] + 0.5  # pixel centres, corner origin
        img = np.full((s.height, s.width), 1000.0)
        for bx, by in BEADS_PX:
            r = np.hypot(xx - bx, yy - by)
            img += 600 * np.cos(r / 1.5) * np.exp(-r / 8)
        self._img = img.astype(np.uint16)
        self._n = 0
        self._limit: int | None = None

    def _do_close(self) -> None:
        pass

    def _do_start(self, n_frames: int | None) -> None:
        self._n, self._limit, self._t0 = 0, n_frames, time.monotonic()

    def _do_stop(self) -> None:
        pass

    def _do_read_frame(self, out: np.ndarray, timeout: float) -> FrameInfo:
        if self._limit is not None and self._n >= self._limit:
            raise AcquisitionEnded("all frames delivered")
        if self.settings.fail_after and self._n >= self.settings.fail_after:
            raise DeviceError("ringcam: simulated camera failure")
        if self.settings.stall_after and self._n >= self.settings.stall_after:
            time.sleep(timeout)
            raise HalTimeoutError(f"ringcam: no frame within {timeout:g} s")
        due = self._t0 + self._n / self.settings.frame_rate
        time.sleep(max(0.0, due - time.monotonic()))
        out[...] = self._img
        self._n += 1
        return FrameInfo(time.monotonic() + self.settings.clock_offset_s, self._n - 1)

    def ground_truth(self, frame_number: int) -> np.ndarray:
        return np.array([(x * 100.0, y * 100.0, 0.0) for x, y in BEADS_PX])

    width = property(lambda self: self.settings.width)
    height = property(lambda self: self.settings.height)
    dtype = property(lambda self: np.dtype(np.uint16))
    bit_depth = property(lambda self: 12)
    pixel_size_nm = property(lambda self: 100.0)
    # the host's clock, or with an offset a camera clock of its own
    timestamp_clock = property(
        lambda self: (
            TimestampClock.CAMERA_FREE_RUNNING
            if self.settings.clock_offset_s
            else TimestampClock.HOST_MONOTONIC
        )
    )
    exposure_ms = property(lambda self: 1.0, lambda self, v: None)
    frame_rate = property(lambda self: self.settings.frame_rate, lambda self, v: None)


class DeadStage(SimFocusStage):
    """A focus stage that opens but cannot tell where it is (a lost encoder)."""

    @property
    def position_nm(self) -> float:
        raise DeviceError("DeadStage: position unknown (encoder lost)")
