"""The mmcore focus stage on the MagacqTest Z stage."""

from typing import Any

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
