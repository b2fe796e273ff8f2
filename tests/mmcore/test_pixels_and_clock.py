"""Pixel types, frame clocks, presets and device kinds of the mmcore camera, on a real CMMCore
running the MagacqTest camera."""

import time
from pathlib import Path
from typing import Any

import numpy as np
import pymmcore
import pytest

from hal import TimestampClock, UnsupportedSettingError
from hal.mmcore import Camera, FocusStage, Magnets, set_property
from tests.mm_adapter import CFG


def test_a_float_camera_is_refused_with_one_line(settings: dict[str, Any], mm_path: Path) -> None:
    # What MMCore hands over for Micro-Manager's 4-byte grey: float32 bit patterns as uint32.
    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(mm_path)])
    core.loadSystemConfiguration(str(CFG))
    try:
        core.setProperty("Cam", "PixelType", "32bit")
        core.snapImage()
        image = core.getImage()
    finally:
        core.unloadAllDevices()
    assert image.dtype == np.uint32
    floats = image.ravel().view(np.float32)[2:]  # the first 8 bytes hold the frame counter
    assert np.array_equal(floats, np.arange(2, image.size) % 65536 + 0.5)
    pixel_type = r"32-bit float pixels \(PixelType 32bit; allowed: 16bit, 32bit, 8bit\)"
    with pytest.raises(UnsupportedSettingError, match=pixel_type):
        Camera({**settings, "properties": {"PixelType": "32bit"}}).open()
    with Camera(settings) as cam:  # switched to float once open: refused at start
        set_property(cam.core, "Cam", "PixelType", "32bit")
        with pytest.raises(UnsupportedSettingError, match=pixel_type):
            cam.start(1)
        assert not cam.is_running and not cam.core.isSequenceRunning()


@pytest.mark.parametrize("camera_stamps", [True, False])
def test_auto_timestamps_count_from_each_start(
    settings: dict[str, Any], camera_stamps: bool
) -> None:
    """The camera's ElapsedTime-ms, or (camera_stamps False) MMCore's own in whole ms."""
    settings.update(exposure_ms=5.0, properties={"StampElapsed": "Yes" if camera_stamps else "No"})
    with Camera(settings) as cam:
        assert cam.timestamp_clock is TimestampClock.CAMERA_SINCE_START
        out = np.empty((cam.height, cam.width), cam.dtype)
        for _ in range(2):
            before = time.monotonic()
            cam.start(20)
            stamps = [cam.read_frame(out, timeout=10.0).timestamp for _ in range(20)]
            host_elapsed = time.monotonic() - before
            cam.stop()
            # 20 frames paced 5 ms apart from the start, none stamped before it
            assert 0.099 <= stamps[-1] <= host_elapsed
            assert stamps == sorted(stamps) and stamps[0] >= 0
            whole_ms = [float(round(t * 1000, 6)).is_integer() for t in stamps]
            assert all(whole_ms) != camera_stamps


def test_host_timestamps(settings: dict[str, Any]) -> None:
    with Camera({**settings, "timestamps": "host"}) as cam:
        assert cam.timestamp_clock is TimestampClock.HOST_MONOTONIC
        out = np.empty((cam.height, cam.width), cam.dtype)
        before = time.monotonic()
        cam.start(5)
        stamps = [cam.read_frame(out, timeout=10.0).timestamp for _ in range(5)]
        after = time.monotonic()
        cam.stop()
    assert before <= stamps[0] <= stamps[-1] <= after


def test_presets_are_applied_then_properties(user_settings: dict[str, Any]) -> None:
    presets = {"Camera": "HighSpeed", "Channel": "Beads"}  # HighSpeed: binning 2, 8bit
    with Camera({**user_settings, "presets": presets, "properties": {"PixelType": "16bit"}}) as cam:
        assert cam.binning == 2 and (cam.width, cam.height) == (128, 128)
        assert cam.dtype == np.uint16  # the property, set after the preset
        assert cam.core.getProperty("Cam", "Pattern") == "Beads"
        assert cam.core.getCurrentConfig("Channel") == "Beads"
        assert cam.pixel_size_nm == pytest.approx(200.0)  # the .cfg's size at binning 2
    for presets, match in [
        ({"Camra": "HighSpeed"}, "no config group 'Camra'; the config's groups: Camera, Channel"),
        ({"Camera": "Fast"}, "'Camera' has no preset 'Fast'; its presets: HighSpeed, Quality"),
    ]:
        with pytest.raises(UnsupportedSettingError, match=match):
            Camera({**user_settings, "presets": presets}).open()


def test_wrong_device_kinds_and_unknown_devices_say_so(settings: dict[str, Any]) -> None:
    kind = "'Z' is a stage, not a camera device; loaded camera devices: Cam"
    with pytest.raises(UnsupportedSettingError, match=kind):
        Camera({**settings, "camera": "Z"}).open()
    with pytest.raises(UnsupportedSettingError, match="no device 'Nope' is loaded; .*MagnetZ"):
        Camera({**settings, "properties": {"Nope": {"Speed": 1}}}).open()
    with Camera(settings) as cam:
        with pytest.raises(UnsupportedSettingError, match="'Cam' is a camera, not a magnet height"):
            Magnets({"height_stage": "Cam"}, camera=cam).open()


def test_an_xy_stage_is_not_a_magnet_or_focus_stage(user_settings: dict[str, Any]) -> None:
    with Camera(user_settings) as cam:
        for make, kind in [
            (lambda: Magnets({"height_stage": "XY"}, camera=cam), "magnet height"),
            (lambda: FocusStage({"stage": "XY"}, camera=cam), "focus stage"),
        ]:
            with pytest.raises(UnsupportedSettingError, match=f"'XY' is an XY stage, not a {kind}"):
                make().open()
