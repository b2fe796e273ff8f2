"""The mmcore focus stage on the MagacqTest Z stage."""

import math
from typing import Any

import numpy as np
import pytest

from hal import DeviceError, UnsupportedSettingError
from hal.mmcore import Camera, FocusStage


def test_stage_shares_the_camera_core(settings: dict[str, Any]) -> None:
    with Camera(settings) as cam, FocusStage(camera=cam) as z:
        assert z.core is cam.core
        assert z.label == "Z"
        assert z.limits_nm == (-100_000.0, 100_000.0)
        for target in (1500.0, -250.0, 0.0):
            z.move_to(target)
            z.wait()
            assert z.position_nm == pytest.approx(target)
            assert cam.core.getPosition("Z") == pytest.approx(target / 1000)
        with pytest.raises(UnsupportedSettingError, match="outside the stage limits"):
            z.move_to(2e5)


def test_standalone_stage(settings: dict[str, Any]) -> None:
    s = {"mm_path": settings["mm_path"], "config_file": settings["config_file"]}
    with FocusStage({**s, "limits_nm": (-5000, 5000)}) as z:
        assert z.limits_nm == (-5000.0, 5000.0)
        z.move_to(4000)
        z.wait()
        assert z.position_nm == pytest.approx(4000)
    with pytest.raises(UnsupportedSettingError, match="no focus stage device 'Q'"):
        FocusStage({**s, "stage": "Q"}).open()


def test_stage_needs_an_open_camera(settings: dict[str, Any]) -> None:
    with pytest.raises(DeviceError, match="open the camera first"):
        FocusStage(camera=Camera(settings)).open()


def _standalone(settings: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"mm_path": settings["mm_path"], "config_file": settings["config_file"], **more}


def test_a_hardware_sequence_steps_with_the_camera_frames(user_settings: dict[str, Any]) -> None:
    """Frame k of a sequence acquisition is taken at the sequence's position k (cycling)."""
    z_nm = [-3000.0, -1000.0, 2000.0]
    props = {"Pattern": "Beads", "BeadCount": 1}  # the rings' look follows the stage
    with Camera({**user_settings, "properties": props}) as cam, FocusStage(camera=cam) as z:
        assert z.label == "ZSeq" and z.supports_sequence and z.sequence_max_length == 64
        expected = []
        for target in z_nm:
            z.move_to(target)
            z.wait()
            cam.core.snapImage()
            expected.append(cam.core.getImage()[1:])  # row 0 holds the frame counter
        assert not np.array_equal(expected[0], expected[1])
        z.load_sequence(z_nm)
        z.start_sequence()
        assert z.position_nm == pytest.approx(z_nm[0])
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start(7)
        frames = []
        for _ in range(7):
            cam.read_frame(out, timeout=10.0)
            frames.append(out[1:].copy())
        cam.stop()
        z.stop_sequence()
        for k, frame in enumerate(frames):
            assert np.array_equal(frame, expected[k % 3]), k
        assert z.position_nm == pytest.approx(z_nm[7 % 3])  # stepped once per frame
        cam.start(2)  # stopped: frames no longer step it, and it moves on command again
        for _ in range(2):
            cam.read_frame(out, timeout=10.0)
        cam.stop()
        assert z.position_nm == pytest.approx(z_nm[7 % 3])
        z.move_to(500.0)
        z.wait()
        assert z.position_nm == pytest.approx(500.0)
        with pytest.raises(UnsupportedSettingError, match="1 to 64 positions"):
            z.load_sequence([0.0] * 65)


def test_a_stage_that_keeps_its_limits(
    user_settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    s = _standalone(user_settings)
    with FocusStage(s) as z:  # ZSeq refuses z beyond 50 um but does not say so
        assert z.limits_nm == (-math.inf, math.inf)
        assert "'ZSeq' publishes no limits: set limits_nm" in caplog.text
        with pytest.raises(DeviceError, match="'ZSeq' refused z = 60000 nm"):
            z.move_to(60_000)
        with pytest.raises(UnsupportedSettingError, match="outside the stage limits"):
            z.load_sequence([0.0, math.nan])
    with FocusStage({**s, "limits_nm": (-40_000, 40_000)}) as z:
        with pytest.raises(UnsupportedSettingError, match="outside the stage limits"):
            z.move_to(45_000)
        with pytest.raises(UnsupportedSettingError, match="outside the stage limits"):
            z.load_sequence([0.0, 45_000])
    with FocusStage({**s, "use_sequences": False}) as z:
        assert not z.supports_sequence
        with pytest.raises(UnsupportedSettingError, match="runs no hardware sequences"):
            z.load_sequence([0.0])
        z.stop_sequence()  # nothing to stop


def test_limits_beyond_the_device_refused(settings: dict[str, Any]) -> None:
    with FocusStage(_standalone(settings)) as z:  # MagacqZStage: no sequences
        assert not z.supports_sequence
        with pytest.raises(UnsupportedSettingError, match="runs no hardware sequences"):
            z.start_sequence()
    beyond = r"limits \[-200000, 0\] nm reach beyond the device's own \[-100000, 100000\] nm"
    with pytest.raises(UnsupportedSettingError, match=beyond):
        FocusStage(_standalone(settings, limits_nm=(-200_000, 0))).open()
