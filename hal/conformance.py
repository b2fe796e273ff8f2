"""A pytest conformance suite that any camera / focus-stage / magnets driver can run.

Use it from a test module by subclassing :class:`DriverConformance` and providing a
``conformance_spec`` fixture::

    import pytest
    from hal.conformance import DriverConformance, spec_for_driver

    class TestMyDriver(DriverConformance):
        @pytest.fixture
        def conformance_spec(self):
            return spec_for_driver("mydriver")  # or ConformanceSpec(...) by hand

A driver module may declare the settings the suite should use in a module-level dict
``CONFORMANCE`` with optional keys ``"camera"`` (settings for a quick camera), ``"slow_camera"``
(settings under which frames after the first take at least 0.5 s, to test timeouts),
``"focus_stage"`` and ``"magnets"`` (settings under which a move of 2 units, mm or turns, lasts
a few tenths of a second: long enough to watch and to stop; magnets whose moves are over at
once are accepted, and the tests of stopping and waiting report that instead). Settings that
exist only once the test session has made something (a compiled device adapter, a temporary
config) cannot be declared there: the session hands them to ``spec_for_driver(name,
conformance=...)`` instead.

Features a camera may lack (exposure control, free-running, a frame rate, a region of interest)
are optional: the suite accepts a camera that applies the value (and reports it back) or one
that refuses it with :class:`~hal.UnsupportedSettingError`, never one that ignores it or fails
otherwise. Requires pytest (imported here, not by hal).
"""

import importlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from hal._camera import Camera, TimestampClock
from hal._errors import (
    AcquisitionEnded,
    DeviceError,
    HalTimeoutError,
    UnsupportedSettingError,
)
from hal._focus import FocusStage
from hal._magnets import AXES, Magnets
from hal._registry import _entry_points, camera_class, focus_stage_class, magnets_class

__all__ = ["ConformanceSpec", "DriverConformance", "spec_for_driver"]


@dataclass
class ConformanceSpec:
    """What the suite tests: the classes and the settings to build them with."""

    camera_class: type[Camera] | None
    camera_settings: Mapping[str, Any] = field(default_factory=dict)
    slow_camera_settings: Mapping[str, Any] | None = None
    focus_stage_class: type[FocusStage] | None = None
    focus_stage_settings: Mapping[str, Any] = field(default_factory=dict)
    magnets_class: type[Magnets] | None = None
    magnets_settings: Mapping[str, Any] = field(default_factory=dict)


def spec_for_driver(
    name: str, conformance: Mapping[str, Mapping[str, Any]] | None = None
) -> ConformanceSpec:
    """Spec of a registered driver, with its module's ``CONFORMANCE`` settings if any.

    Parameters
    ----------
    name : str
        Registered driver name (or the module path an entry point would name).
    conformance : mapping, optional
        Settings in the form of ``CONFORMANCE`` (keys ``"camera"``, ``"slow_camera"``,
        ``"focus_stage"``, ``"magnets"``) used instead of the module's: for a test session that
        must first build or find what the settings name, e.g. the directory of a compiled device
        adapter.
    """
    target = _entry_points().get(name, name)
    module = importlib.import_module(target.partition(":")[0])
    if conformance is None:
        conformance = getattr(module, "CONFORMANCE", {}) or {}
    conf = conformance
    cam = getattr(module, "Camera", None)
    stage = getattr(module, "FocusStage", None)
    magnets = getattr(module, "Magnets", None)
    return ConformanceSpec(
        camera_class=camera_class(name) if isinstance(cam, type) else None,
        camera_settings=conf.get("camera", {}),
        slow_camera_settings=conf.get("slow_camera"),
        focus_stage_class=focus_stage_class(name) if isinstance(stage, type) else None,
        focus_stage_settings=conf.get("focus_stage", {}),
        magnets_class=magnets_class(name) if isinstance(magnets, type) else None,
        magnets_settings=conf.get("magnets", {}),
    )


class DriverConformance:
    """The suite. Provide a ``conformance_spec`` fixture (in the subclass, or module-level,
    e.g. parametrized over drivers)."""

    @pytest.fixture
    def camera(self, conformance_spec: ConformanceSpec) -> Iterator[Camera]:
        if conformance_spec.camera_class is None:
            pytest.skip("driver has no camera")
        cam = conformance_spec.camera_class(conformance_spec.camera_settings)
        try:
            cam.open()
            yield cam
        finally:
            cam.close()

    @staticmethod
    def _frame(cam: Camera) -> np.ndarray:
        return np.zeros((cam.height, cam.width), dtype=cam.dtype)

    # --- camera: lifecycle ----------------------------------------------------------------
    def test_open_close_twice(self, conformance_spec: ConformanceSpec) -> None:
        if conformance_spec.camera_class is None:
            pytest.skip("driver has no camera")
        cam = conformance_spec.camera_class(conformance_spec.camera_settings)
        assert not cam.is_open
        cam.open()
        cam.open()
        assert cam.is_open
        cam.close()
        cam.close()
        assert not cam.is_open

    def test_context_manager(self, conformance_spec: ConformanceSpec) -> None:
        if conformance_spec.camera_class is None:
            pytest.skip("driver has no camera")
        with conformance_spec.camera_class(conformance_spec.camera_settings) as cam:
            assert cam.is_open
            cam.start(1)
        assert not cam.is_open and not cam.is_running

    def test_geometry(self, camera: Camera) -> None:
        assert camera.width > 0 and camera.height > 0
        assert np.dtype(camera.dtype).kind == "u"
        assert 1 <= camera.bit_depth <= np.dtype(camera.dtype).itemsize * 8
        assert camera.pixel_size_nm > 0
        exposure = camera.exposure_ms
        assert math.isnan(exposure) or exposure >= 0, "exposure_ms: >= 0, or NaN if unknown"
        assert camera.frame_rate >= 0
        assert camera.binning >= 1
        x, y, w, h = camera.roi
        assert x >= 0 and y >= 0 and w >= camera.width and h >= camera.height

    # --- camera: frames -------------------------------------------------------------------
    def test_read_frames_into_array(self, camera: Camera) -> None:
        out = self._frame(camera)
        camera.start(3)
        infos = [camera.read_frame(out, timeout=10.0) for _ in range(3)]
        camera.stop()
        assert infos[0].frame_number == 0
        numbers = [i.frame_number for i in infos]
        assert numbers == sorted(set(numbers)), f"frame numbers not increasing: {numbers}"
        stamps = [i.timestamp for i in infos]
        assert all(isinstance(t, float) for t in stamps)
        assert stamps == sorted(stamps)
        assert int(out.max()) <= 2**camera.bit_depth - 1

    def test_timestamps_on_the_declared_clock(self, camera: Camera) -> None:
        out = self._frame(camera)
        before = time.monotonic()
        camera.start(3)
        stamps = [camera.read_frame(out, timeout=10.0).timestamp for _ in range(3)]
        after = time.monotonic()
        camera.stop()
        clock = camera.timestamp_clock  # read after the frames: a driver may learn it then
        assert isinstance(clock, TimestampClock)
        if clock is TimestampClock.HOST_MONOTONIC:
            assert before <= stamps[0] and stamps[-1] <= after
        elif clock is TimestampClock.CAMERA_SINCE_START:
            assert 0 <= stamps[0] and stamps[-1] <= after - before
        # CAMERA_FREE_RUNNING: any origin

    def test_n_frames_then_acquisition_ended(self, camera: Camera) -> None:
        out = self._frame(camera)
        camera.start(2)
        camera.read_frame(out, timeout=10.0)
        camera.read_frame(out, timeout=10.0)
        with pytest.raises(AcquisitionEnded):
            camera.read_frame(out, timeout=1.0)

    def test_start_stop_restart(self, camera: Camera) -> None:
        out = self._frame(camera)
        camera.start()
        assert camera.is_running
        camera.read_frame(out, timeout=10.0)
        camera.stop()
        camera.stop()
        assert not camera.is_running
        with pytest.raises(DeviceError):
            camera.read_frame(out, timeout=0.1)
        camera.start(1)
        assert camera.read_frame(out, timeout=10.0).frame_number == 0

    def test_start_twice_refused(self, camera: Camera) -> None:
        camera.start()
        with pytest.raises(DeviceError):
            camera.start()
        camera.stop()

    def test_wrong_array_refused(self, camera: Camera) -> None:
        camera.start(1)
        with pytest.raises(ValueError):
            camera.read_frame(np.zeros((camera.height + 1, camera.width), camera.dtype))
        with pytest.raises(ValueError):
            camera.read_frame(np.zeros((camera.height, camera.width), np.float64))
        camera.stop()

    def test_not_open_refused(self, conformance_spec: ConformanceSpec) -> None:
        if conformance_spec.camera_class is None:
            pytest.skip("driver has no camera")
        cam = conformance_spec.camera_class(conformance_spec.camera_settings)
        with pytest.raises(DeviceError):
            cam.start(1)

    def test_zero_timeout_polls(self, camera: Camera) -> None:
        """``timeout=0`` returns a frame that has already arrived instead of giving up."""
        out = self._frame(camera)
        camera.start(2)
        camera.read_frame(out, timeout=10.0)
        give_up = time.monotonic() + 10.0  # a liveness bound, not a timing check
        while True:
            try:
                assert camera.read_frame(out, timeout=0).frame_number >= 1
                break
            except HalTimeoutError:
                assert time.monotonic() < give_up, "read_frame(timeout=0) never got a frame"
                time.sleep(0.001)
        camera.stop()

    def test_timeout(self, conformance_spec: ConformanceSpec) -> None:
        if conformance_spec.camera_class is None or conformance_spec.slow_camera_settings is None:
            pytest.skip("driver declares no slow_camera settings")
        with conformance_spec.camera_class(conformance_spec.slow_camera_settings) as cam:
            out = self._frame(cam)
            cam.start()
            cam.read_frame(out, timeout=10.0)
            with pytest.raises(HalTimeoutError):
                cam.read_frame(out, timeout=0.05)

    # --- camera: optional features --------------------------------------------------------
    @staticmethod
    def _applied(cam: Camera, attr: str, value: Any) -> bool:
        """Set an optional feature: True if the camera took it, False if it refused it."""
        try:
            setattr(cam, attr, value)
        except UnsupportedSettingError as exc:
            assert str(exc), f"refusing {attr} = {value!r}, say why"
            return False
        return True

    def _still_acquires(self, cam: Camera) -> None:
        out = self._frame(cam)
        cam.start(1)
        assert cam.read_frame(out, timeout=10.0).frame_number == 0
        cam.stop()

    def test_exposure_applied_or_refused(self, camera: Camera) -> None:
        if self._applied(camera, "exposure_ms", 2.0):
            assert camera.exposure_ms == pytest.approx(2.0, rel=0.01)
        with pytest.raises(UnsupportedSettingError):
            camera.exposure_ms = -1.0
        self._still_acquires(camera)

    def test_free_run_applied_or_refused(self, camera: Camera) -> None:
        if self._applied(camera, "frame_rate", 0.0):
            assert camera.frame_rate == 0.0
        self._still_acquires(camera)

    def test_frame_rate_applied_or_refused(self, camera: Camera) -> None:
        if self._applied(camera, "frame_rate", 5.0):
            assert camera.frame_rate == pytest.approx(5.0, rel=0.01)
        self._still_acquires(camera)

    def test_roi_applied_or_refused(self, camera: Camera) -> None:
        x, y, w, h = camera.roi
        b = camera.binning
        assert (w, h) == (camera.width * b, camera.height * b)
        step = 16 * b
        new = (x, y, max(w // 2 // step, 1) * step, max(h // 2 // step, 1) * step)
        if self._applied(camera, "roi", new):
            assert camera.roi == new
            assert (camera.width, camera.height) == (new[2] // b, new[3] // b)
        self._still_acquires(camera)

    def test_closed_camera_refuses_with_device_error(
        self, conformance_spec: ConformanceSpec
    ) -> None:
        """Before open, a property answers or raises DeviceError; a setter may also refuse."""
        if conformance_spec.camera_class is None:
            pytest.skip("driver has no camera")
        cam = conformance_spec.camera_class(conformance_spec.camera_settings)
        for name in ("width", "height", "dtype", "bit_depth", "pixel_size_nm", "exposure_ms",
                     "frame_rate", "roi", "binning"):  # fmt: skip
            try:
                getattr(cam, name)
            except DeviceError:
                pass
        for name, value in (
            ("exposure_ms", 2.0),
            ("frame_rate", 0.0),
            ("roi", (0, 0, 16, 16)),
            ("binning", 1),
        ):
            try:
                setattr(cam, name, value)
            except (DeviceError, UnsupportedSettingError):
                pass
        assert not cam.is_open

    def test_binning_1(self, camera: Camera) -> None:
        camera.binning = 1
        assert camera.binning == 1
        self._still_acquires(camera)

    # --- settings -------------------------------------------------------------------------
    def test_unknown_setting_lists_allowed(self, conformance_spec: ConformanceSpec) -> None:
        cls = (
            conformance_spec.camera_class
            or conformance_spec.focus_stage_class
            or conformance_spec.magnets_class
        )
        assert cls is not None
        with pytest.raises(UnsupportedSettingError) as info:
            cls({"no_such_setting_xyz": 1})
        msg = str(info.value)
        assert "no_such_setting_xyz" in msg and "Allowed settings" in msg
        for name in cls.Settings.model_fields:
            assert name in msg

    def test_bad_value_named(self, conformance_spec: ConformanceSpec) -> None:
        cls = (
            conformance_spec.camera_class
            or conformance_spec.focus_stage_class
            or conformance_spec.magnets_class
        )
        assert cls is not None
        for name in cls.Settings.model_fields:
            try:
                cls.Settings.model_validate({name: object()})
            except Exception:
                break
        else:
            pytest.skip("no setting rejects an arbitrary object")
        with pytest.raises(UnsupportedSettingError, match=name):
            cls({name: object()})

    # --- focus stage ----------------------------------------------------------------------
    @pytest.fixture
    def focus_stage(self, conformance_spec: ConformanceSpec) -> Iterator[FocusStage]:
        stage_cls = conformance_spec.focus_stage_class
        if stage_cls is None:
            pytest.skip("driver has no focus stage")
        cam = None
        if conformance_spec.camera_class is not None:
            cam = conformance_spec.camera_class(conformance_spec.camera_settings)
            cam.open()
        try:
            with stage_cls(conformance_spec.focus_stage_settings, camera=cam) as stage:
                yield stage
        finally:
            if cam is not None:
                cam.close()

    @staticmethod
    def _focus_targets(stage: FocusStage) -> tuple[float, float, float]:
        """Two targets inside the limits, and a tolerance; a stage that keeps its limits to
        itself (infinite here) is moved by a few um from where it is."""
        lo, hi = stage.limits_nm
        assert lo < hi
        if math.isfinite(hi - lo):
            return lo + 0.25 * (hi - lo), lo + 0.5 * (hi - lo), max(1e-3 * (hi - lo), 1.0)
        here = stage.position_nm
        return here + 1000.0, here + 2000.0, 1.0

    def test_focus_stage_moves(self, focus_stage: FocusStage) -> None:
        target, _, tolerance = self._focus_targets(focus_stage)
        focus_stage.move_to(target)
        focus_stage.wait(timeout=30.0)
        assert not focus_stage.is_busy()
        assert abs(focus_stage.position_nm - target) <= tolerance
        lo, hi = focus_stage.limits_nm
        for bad in (hi + (hi - lo), lo - (hi - lo), math.nan):  # inf for a stage without limits
            with pytest.raises(UnsupportedSettingError):
                focus_stage.move_to(bad)

    def test_focus_sequence_runs_or_is_refused(self, focus_stage: FocusStage) -> None:
        a, b, tolerance = self._focus_targets(focus_stage)
        if not focus_stage.supports_sequence:
            assert focus_stage.sequence_max_length == 0
            with pytest.raises(UnsupportedSettingError):
                focus_stage.load_sequence([a, b])
            focus_stage.stop_sequence()  # nothing to stop: no error
            return
        with pytest.raises(UnsupportedSettingError):
            focus_stage.load_sequence([a] * (focus_stage.sequence_max_length + 1))
        focus_stage.load_sequence([a, b])
        focus_stage.start_sequence()  # goes to the first position
        focus_stage.wait(timeout=30.0)
        assert abs(focus_stage.position_nm - a) <= tolerance
        cam = focus_stage.camera
        if cam is not None:  # each frame steps it on, cycling: after 3 frames, at b
            out = np.empty((cam.height, cam.width), cam.dtype)
            cam.start(3)
            for _ in range(3):
                cam.read_frame(out, timeout=30.0)
            cam.stop()
            focus_stage.wait(timeout=30.0)
            assert abs(focus_stage.position_nm - b) <= tolerance
        focus_stage.stop_sequence()

    # --- magnets --------------------------------------------------------------------------
    @pytest.fixture
    def magnets(self, conformance_spec: ConformanceSpec) -> Iterator[Magnets]:
        if conformance_spec.magnets_class is None:
            pytest.skip("driver has no magnets")
        cam = None
        if conformance_spec.camera_class is not None:
            cam = conformance_spec.camera_class(conformance_spec.camera_settings)
            cam.open()
        try:
            with conformance_spec.magnets_class(
                conformance_spec.magnets_settings, camera=cam
            ) as mag:
                yield mag
        finally:
            if cam is not None:
                cam.close()

    @staticmethod
    def _target(mag: Magnets, axis: str, distance: float = 2.0) -> tuple[float, float]:
        """Where the axis is, and a target ``distance`` away inside the limits."""
        lo, hi = mag.limits(axis)
        assert lo < hi
        here = mag.position(axis)
        d = min(distance, 0.4 * (hi - lo))
        return here, here + d if here + d <= hi else here - d

    def test_magnets_limits_refused_before_moving(self, magnets: Magnets) -> None:
        assert magnets.axes and set(magnets.axes) <= set(AXES)
        for axis in magnets.axes:
            lo, hi = magnets.limits(axis)
            here = magnets.position(axis)
            for bad in (hi + 0.5 * (hi - lo) + 1, lo - 0.5 * (hi - lo) - 1, math.nan):
                with pytest.raises(UnsupportedSettingError):
                    magnets.move_to(axis, bad)
            _, target = self._target(magnets, axis)
            with pytest.raises(UnsupportedSettingError):
                magnets.move_to(axis, target, velocity=-1.0)
            assert not magnets.is_busy(axis)
            assert magnets.position(axis) == pytest.approx(here)

    def test_magnets_missing_axis_refused(self, magnets: Magnets) -> None:
        for axis in (*(a for a in AXES if a not in magnets.axes), "tilt"):
            with pytest.raises(UnsupportedSettingError):
                magnets.move_to(axis, 1.0)
            with pytest.raises(UnsupportedSettingError):
                magnets.position(axis)
        pos = magnets.positions()
        for axis in AXES:
            assert math.isnan(getattr(pos, f"{axis}_{'mm' if axis == 'height' else 'turns'}")) == (
                axis not in magnets.axes
            )

    def test_magnets_moves_arrive_monotonically(self, magnets: Magnets) -> None:
        for axis in magnets.axes:
            start, target = self._target(magnets, axis)
            sign = 1.0 if target > start else -1.0
            magnets.move_to(axis, target)
            seen = [start]
            give_up = time.monotonic() + 60.0  # a liveness bound, not a timing check
            while magnets.is_busy(axis):
                seen.append(magnets.position(axis))
                assert time.monotonic() < give_up, f"{axis} move never ended"
                time.sleep(0.005)
            seen.append(magnets.position(axis))
            steps = sign * np.diff(seen)
            assert (steps >= -1e-9 * abs(target - start)).all(), f"{axis} went back: {seen}"
            assert seen[-1] == pytest.approx(target, abs=1e-3 * abs(target - start))
            magnets.move_by(axis, start - target)
            magnets.wait(timeout=60.0)
            assert magnets.position(axis) == pytest.approx(start, abs=1e-3 * abs(target - start))

    @staticmethod
    def _skip_if_over_at_once(mag: Magnets, axis: str, start: float) -> None:
        """A move already over when ``move_to`` returned (a stage that reports no motion) has
        nothing to stop or wait for: put the axis back and report that."""
        if not mag.is_busy(axis):
            mag.move_to(axis, start)
            mag.wait(timeout=60.0)
            pytest.skip(f"magnet {axis} moves are over as soon as commanded")

    def test_magnets_stop_stops(self, magnets: Magnets) -> None:
        for axis in magnets.axes:
            start, target = self._target(magnets, axis)
            magnets.move_to(axis, target)
            self._skip_if_over_at_once(magnets, axis, start)
            give_up = time.monotonic() + 60.0
            while magnets.position(axis) == start:
                assert time.monotonic() < give_up, f"{axis} never started moving"
                time.sleep(0.001)
            magnets.stop()
            magnets.wait(timeout=60.0)
            stopped = magnets.position(axis)
            assert abs(stopped - start) < abs(target - start), f"{axis} was not stopped"
            time.sleep(0.05)
            assert magnets.position(axis) == stopped and not magnets.is_busy(axis)

    def test_magnets_wait_times_out(self, magnets: Magnets) -> None:
        axis = magnets.axes[0]
        start, target = self._target(magnets, axis)
        magnets.move_to(axis, target)
        self._skip_if_over_at_once(magnets, axis, start)
        with pytest.raises(HalTimeoutError):
            magnets.wait(timeout=0.0)
        magnets.stop()
        magnets.wait(timeout=60.0)
