"""The simulated camera: renders the tethered beads of a :class:`SimMicroscope` on demand.

Every frame's true bead positions (and forces, magnets) are kept: :meth:`SimCamera.ground_truth`.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields

import numpy as np
from pydantic import Field, model_validator

from hal import (
    AcquisitionEnded,
    DeviceError,
    DeviceSettings,
    FrameInfo,
    HalTimeoutError,
    TimestampClock,
    UnsupportedSettingError,
    validate_settings,
)
from hal import Camera as _Camera
from simulators.microscope import GroundTruth, SimMicroscope, grid_layout
from simulators.motion import MotionParams, StageDrift
from simulators.noise import count_dtype
from simulators.optics import OpticsParams

__all__ = ["SimCamera", "SimCameraSettings", "from_settings"]


class SimCameraSettings(DeviceSettings):
    """Settings of the simulated camera (and its microscope)."""

    width: int = Field(512, ge=16, le=8192)
    height: int = Field(512, ge=16, le=8192)
    bit_depth: int = Field(16, ge=8, le=16)
    exposure_ms: float = Field(1.0, gt=0)
    exposure_substeps: int = Field(
        4, ge=1, le=100, description="bead positions averaged over an exposure (motion blur)"
    )
    frame_rate: float = Field(0.0, ge=0, description="frames/s paced in real time; 0: flat out")
    # beads
    n_beads: int = Field(50, ge=0)
    roi_size: int = Field(64, ge=8, description="bead spacing and rendered patch, px")
    bead_xy_px: list[tuple[float, float]] | None = Field(
        None, description="explicit mean bead centres (px); default: random grid layout"
    )
    fraction_stuck: float = Field(0.1, ge=0, le=1, description="stuck reference beads")
    seed: int | None = Field(0, description="random seed; None: different every run")
    brownian: bool = True
    # optics
    pixel_size_nm: float = Field(100.0, gt=0)
    wavelength_nm: float = Field(600.0, gt=0)
    na: float = Field(1.2, gt=0)
    magnification: float = Field(100.0, gt=0)
    bead_radius_nm: float = Field(1400.0, gt=0)
    n_bead: float = Field(1.57, gt=0)
    kappa_bead: float = Field(0.01, ge=0)
    n_medium: float = Field(1.33, gt=0)
    focus_nm: float = Field(
        6000.0,
        description="initial focal plane, nm above the surface (6000: tethered beads about "
        "1.5 um below focus, stuck ones 4.6 um: clear rings, no saturation at 4000 photons)",
    )
    focus_limits_nm: tuple[float, float] = (-10_000.0, 10_000.0)
    z_table_step_nm: float = Field(10.0, gt=0)
    # camera noise
    photons: float = Field(4000.0, ge=0, description="photoelectrons/px at background")
    read_noise_e: float = Field(2.0, ge=0)
    offset_adu: float = Field(100.0, ge=0)
    exact_noise: bool = Field(False, description="exact Poisson (slow) vs Gaussian approx")
    # motion
    force_pn: float = Field(2.0, gt=0, description="force on every bead without magnets")
    contour_nm: float = Field(3400.0, gt=0)
    persistence_nm: float = Field(50.0, gt=0)
    twist_persistence_nm: float = Field(100.0, gt=0)
    denature_force_pn: float = Field(
        0.5, ge=0, description="above it negative turns melt DNA rather than buckle it"
    )
    temperature_k: float = Field(296.0, gt=0)
    viscosity_pn_s_per_nm2: float = Field(1e-9, gt=0)
    drift_nm_per_s: tuple[float, float, float] = Field(
        (0.5, 0.3, 1.7),
        description="stage drift x, y, z in nm per (simulated) second; the default is a real "
        "stage's: 1.8 and 1.1 um/h in x, y, 100 nm/min in focus",
    )
    drift_diffusion_nm2_per_s: float = Field(
        0.1, ge=0, description="random walk of the drift, per axis"
    )
    # faults and bookkeeping
    error_rate: float = Field(0.0, ge=0, le=1, description="fraction of reads failing")
    truth_frames: int = Field(
        1_000, ge=1, description="ground-truth records kept (the run reads each at once)"
    )
    debug_render_s: float = Field(
        0.0, ge=0, description="testing aid: extra seconds each frame takes (a slow machine)"
    )
    max_lag_s: float = Field(
        0.1,
        gt=0,
        description="streaming, frames rendered later than this behind real time are lost, as "
        "a real camera's when its buffer fills (paced: frame_rate > 0)",
    )

    @model_validator(mode="after")
    def _check(self) -> "SimCameraSettings":
        lo, hi = self.focus_limits_nm
        if not lo < hi:
            raise ValueError("focus_limits_nm must be (low, high) with low < high")
        if self.bead_xy_px is not None and len(self.bead_xy_px) != self.n_beads:
            raise ValueError("bead_xy_px must list n_beads positions")
        return self


def from_settings(params: type, settings: DeviceSettings):
    """A ``params`` dataclass filled from the settings fields of the same names."""
    return params(**{f.name: getattr(settings, f.name) for f in fields(params)})


class SimCamera(_Camera):
    """A simulated camera looking at tethered beads.

    ``read_frame`` renders on demand; with ``frame_rate > 0`` frame ``k`` is released at
    ``start + k / frame_rate`` (streaming, a frame rendered more than ``max_lag_s`` late is
    lost, as a real camera loses frames it cannot keep: its number is skipped). Timestamps are
    the simulated hardware clock (``time.monotonic`` at start, plus ``k`` frame intervals; the
    interval is ``1/frame_rate``, or the exposure time when free-running).
    """

    Settings = SimCameraSettings

    def __init__(self, settings=None) -> None:
        super().__init__(settings)
        self.settings: SimCameraSettings
        self.microscope: SimMicroscope | None = None
        self._truth: OrderedDict[int, GroundTruth] = OrderedDict()
        self._lock = threading.Lock()
        self._next = 0
        self._n_frames: int | None = None
        self._t0 = 0.0
        self._last_t = 0.0
        self._stopped = threading.Event()
        self._trigger: Callable[[int], None] | None = None

    def connect_trigger(self, listener: Callable[[int], None] | None) -> None:
        """Call ``listener(n)`` as each frame's exposure ends, ``n`` the exposures since the
        last call (more than one where frames were skipped), as a camera's trigger output steps
        a stage's hardware sequence; None disconnects it."""
        self._trigger = listener

    # --- lifecycle --------------------------------------------------------------------------
    def _do_open(self) -> None:
        s = self.settings
        rng = np.random.default_rng(s.seed)
        if s.bead_xy_px is not None:
            xy = np.asarray(s.bead_xy_px, dtype=np.float64).reshape(-1, 2)
        else:
            try:
                xy = grid_layout(s.width, s.height, s.n_beads, s.roi_size, rng)
            except ValueError as exc:
                raise UnsupportedSettingError(f"SimCamera: {exc}") from None
        stuck = np.zeros(len(xy), dtype=bool)
        n_stuck = round(s.fraction_stuck * len(xy))
        stuck[rng.choice(len(xy), n_stuck, replace=False)] = True
        optics = from_settings(OpticsParams, s)
        motion = from_settings(MotionParams, s)
        self.microscope = SimMicroscope(
            s.width,
            s.height,
            optics=optics,
            motion=motion,
            bead_xy_px=xy,
            stuck=stuck,
            roi_size=s.roi_size,
            photons=s.photons,
            read_noise_e=s.read_noise_e,
            offset_adu=s.offset_adu,
            bit_depth=s.bit_depth,
            rng=rng,
            drift=StageDrift(s.drift_nm_per_s, s.drift_diffusion_nm2_per_s, rng),
            brownian=s.brownian,
            focal_z_nm=s.focus_nm,
            z_range_nm=s.focus_limits_nm,
            exact_noise=s.exact_noise,
            z_table_step_nm=s.z_table_step_nm,
            exposure_substeps=s.exposure_substeps,
        )
        self._error_rng = np.random.default_rng(None if s.seed is None else s.seed + 1)
        self.microscope.warm_up()  # compiled now, not on the first frame (it would come late)

    def _do_close(self) -> None:
        self.microscope = None

    def _do_start(self, n_frames: int | None) -> None:
        self._next = 0
        self._n_frames = n_frames
        self._t0 = self._last_t = time.monotonic()
        self._truth.clear()
        self._stopped.clear()

    def _do_stop(self) -> None:
        self._stopped.set()

    # --- geometry ---------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.settings.width

    @property
    def height(self) -> int:
        return self.settings.height

    @property
    def dtype(self) -> np.dtype:
        return count_dtype(self.settings.bit_depth)

    @property
    def bit_depth(self) -> int:
        return self.settings.bit_depth

    @property
    def timestamp_clock(self) -> TimestampClock:
        """Host ``time.monotonic()``: the scheduled times frames are paced to."""
        return TimestampClock.HOST_MONOTONIC

    @property
    def pixel_size_nm(self) -> float:
        return self.settings.pixel_size_nm

    @property
    def exposure_ms(self) -> float:
        return self.settings.exposure_ms

    @exposure_ms.setter
    def exposure_ms(self, value: float) -> None:
        self._update(exposure_ms=value)

    @property
    def frame_rate(self) -> float:
        return self.settings.frame_rate

    @frame_rate.setter
    def frame_rate(self, value: float) -> None:
        if self.is_running:
            raise DeviceError("SimCamera: stop before changing frame_rate")
        self._update(frame_rate=value)

    def _update(self, **changes: object) -> None:
        values = self.settings.model_dump() | changes
        self.settings = validate_settings(self.Settings, values, device="SimCamera")

    @property
    def frame_interval_s(self) -> float:
        """Simulated time between frames."""
        fr = self.settings.frame_rate
        return 1.0 / fr if fr > 0 else self.settings.exposure_ms / 1000.0

    # --- frames -----------------------------------------------------------------------------
    def _do_read_frame(self, out: np.ndarray, timeout: float) -> FrameInfo:
        if self._n_frames is not None and self._next >= self._n_frames:
            raise AcquisitionEnded(f"SimCamera delivered its {self._n_frames} frames")
        k = self._next
        timestamp = self._t0 + k * self.frame_interval_s
        if self.settings.frame_rate > 0:
            behind = time.monotonic() - timestamp
            # streaming, those frames are lost (their numbers skipped); a sequence of n delivers n
            if behind > self.settings.max_lag_s and self._n_frames is None:
                k += int(behind / self.frame_interval_s)
                timestamp = self._t0 + k * self.frame_interval_s
            wait = timestamp - time.monotonic()
            if wait > timeout:
                self._stopped.wait(timeout)
                raise HalTimeoutError(f"SimCamera: no frame within {timeout:g} s")
            if wait > 0 and self._stopped.wait(wait):
                raise AcquisitionEnded("SimCamera was stopped")
        scope = self.microscope
        assert scope is not None
        dt = timestamp - self._last_t
        self._last_t = timestamp
        skipped, self._next = k - self._next, k + 1
        trigger = self._trigger
        if trigger is not None and skipped:
            trigger(skipped)
        truth = scope.snap(out, dt, k, timestamp, self.settings.exposure_ms / 1000.0)
        if trigger is not None:
            trigger(1)
        if self.settings.debug_render_s:
            time.sleep(self.settings.debug_render_s)
        with self._lock:
            self._truth[k] = truth
            while len(self._truth) > self.settings.truth_frames:
                self._truth.popitem(last=False)
        if self.settings.error_rate > 0 and self._error_rng.random() < self.settings.error_rate:
            raise DeviceError(f"SimCamera: injected read error at frame {k} (frame lost)")
        return FrameInfo(timestamp, k)

    # --- simulator extras -------------------------------------------------------------------
    def ground_truth(self, frame_number: int) -> GroundTruth:
        """True bead positions of a delivered frame (the last ``truth_frames`` are kept).

        Raises
        ------
        KeyError
            The frame was not delivered in this acquisition, or its record was dropped.
        """
        with self._lock:
            return self._truth[frame_number]

    @property
    def bead_radius_nm(self) -> float:
        """The simulated beads' radius (``settings.bead_radius_nm``)."""
        return self.settings.bead_radius_nm

    def ground_truth_records(self) -> list[GroundTruth]:
        """Every kept ground-truth record, oldest first (lost frames included)."""
        with self._lock:
            return list(self._truth.values())

    @property
    def bead_xy_px(self) -> np.ndarray:
        """``(n_beads, 2)`` mean bead centres (x = column, y = row), pixels; open first."""
        self._require_open()
        assert self.microscope is not None
        return self.microscope.bead_xy_px

    @property
    def stuck_beads(self) -> np.ndarray:
        """``(n_beads,)`` bool: which beads are stuck reference beads; open first."""
        self._require_open()
        assert self.microscope is not None
        return self.microscope.beads.stuck.copy()

    def bead_rois(self) -> np.ndarray:
        """``(n_beads, 2)`` int top-left (x, y) of a ``roi_size`` ROI centred on each bead,
        clipped to the frame."""
        size = self.settings.roi_size
        xy = np.floor(self.bead_xy_px + 0.5).astype(np.int64) - size // 2
        xy[:, 0] = np.clip(xy[:, 0], 0, self.width - size)
        xy[:, 1] = np.clip(xy[:, 1], 0, self.height - size)
        return xy
