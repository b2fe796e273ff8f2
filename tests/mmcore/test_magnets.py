"""The mmcore magnets on the MagacqTest adapter's magnet stages, through the real MMCore."""

import math
import time
from typing import Any

import pytest

from hal import DeviceError, HalTimeoutError, UnsupportedSettingError
from hal.mmcore import Camera, Magnets, set_property

BOTH = {"height_stage": "MagnetZ", "rotation_stage": "MagnetR", "velocity_property": "Velocity"}


def test_units_limits_and_a_move_that_takes_time(settings: dict[str, Any]) -> None:
    with Camera(settings) as cam, Magnets(BOTH, camera=cam) as mag:
        assert mag.core is cam.core and mag.axes == ("height", "rotation")
        # the stages' Position limits (um, degrees) converted to mm and turns
        assert mag.limits("height") == pytest.approx((0.3, 20.0))
        assert mag.limits("rotation") == pytest.approx((-100.0, 100.0))
        assert mag.positions() == pytest.approx((6.0, 0.0))
        mag.move_to("height", 2.0, velocity=8.0)  # 4 mm at 8 mm/s: 0.5 s
        assert cam.core.getProperty("MagnetZ", "Velocity") == "8000.0000"
        assert mag.is_busy("height") and not mag.is_busy("rotation")
        seen = []
        while mag.is_busy():
            seen.append(mag.position("height"))
        assert any(2.0 < h < 6.0 for h in seen)  # passed through on the way
        assert mag.position("height") == pytest.approx(2.0)
        assert cam.core.getPosition("MagnetZ") == pytest.approx(2000.0)
        mag.move_by("rotation", -1.5)
        mag.wait(timeout=10)
        assert cam.core.getPosition("MagnetR") == pytest.approx(-540.0)
        with pytest.raises(UnsupportedSettingError, match="outside the limits"):
            mag.move_to("height", 0.1)
        with pytest.raises(UnsupportedSettingError, match="velocity"):
            mag.move_to("height", 3.0, velocity=1e9)


def test_standalone_one_axis_flipped(settings: dict[str, Any]) -> None:
    """A height motor that counts up as the magnets go down, alone in its own MMCore."""
    s = {"mm_path": settings["mm_path"], "config_file": settings["config_file"]}
    flipped = {**s, "height_stage": "MagnetZ", "height_units_per_mm": -1000.0}
    with Magnets({**flipped, "height_offset_mm": 25.0}) as mag:
        assert mag.axes == ("height",)
        assert mag.limits("height") == pytest.approx((5.0, 24.7))
        assert mag.position("height") == pytest.approx(19.0)  # stage at 6000 um
        mag.move_to("height", 24.0)
        mag.wait(timeout=10)
        assert mag.core.getPosition("MagnetZ") == pytest.approx(1000.0)
        with pytest.raises(UnsupportedSettingError, match="no rotation axis"):
            mag.move_to("rotation", 1.0)
        assert math.isnan(mag.positions().rotation_turns)
        with pytest.raises(UnsupportedSettingError, match="no velocity_property"):
            mag.move_to("height", 23.0, velocity=1.0)
    with pytest.raises(UnsupportedSettingError, match="no magnet height device 'Q'"):
        Magnets({**s, "height_stage": "Q"}).open()
    with pytest.raises(UnsupportedSettingError, match="height_stage, rotation_stage"):
        Magnets(s)
    with pytest.raises(UnsupportedSettingError, match="no property 'Speed'"):
        Magnets({**s, "height_stage": "MagnetZ", "velocity_property": "Speed"}).open()


def test_motor_faults(settings: dict[str, Any]) -> None:
    with Camera(settings) as cam, Magnets(BOTH, camera=cam) as mag:
        set_property(cam.core, "MagnetZ", "Fault", "Refuse")
        with pytest.raises(DeviceError, match="MagnetZ.*refused 2.*motor fault"):
            mag.move_to("height", 2.0)
        set_property(cam.core, "MagnetZ", "Fault", "Stall")
        mag.move_to("height", 2.0)
        time.sleep(0.05)
        ticks: list[bool] = []  # e.g. a heartbeat, kept beating while the motor is busy
        with pytest.raises(HalTimeoutError, match="magnets still moving"):
            mag.wait(timeout=0.2, tick=lambda: ticks.append(mag.is_busy()))
        assert ticks and all(ticks)
        assert mag.position("height") == pytest.approx(6.0)  # stalled where it was
        mag.stop()
        assert not mag.is_busy()


def test_magnets_need_an_open_camera(settings: dict[str, Any]) -> None:
    with pytest.raises(DeviceError, match="open the camera first"):
        Magnets(BOTH, camera=Camera(settings)).open()


def test_stages_without_velocity_move_at_their_own_speed(user_settings: dict[str, Any]) -> None:
    """MagacqPlainStage: no velocity property, a move over when it is made."""
    plain = {"height_stage": "MagnetZ", "rotation_stage": "MagnetR"}
    with Camera(user_settings) as cam, Magnets(plain, camera=cam) as mag:
        for axis in mag.axes:
            label = "MagnetZ" if axis == "height" else "MagnetR"
            with pytest.raises(
                UnsupportedSettingError, match=f"{axis} stage '{label}' takes no velocity"
            ):
                mag.max_velocity(axis)
        mag.move_to("height", 2.0)
        mag.move_by("rotation", -1.5)
        assert not mag.is_busy()
        assert mag.positions() == pytest.approx((2.0, -1.5))
        with pytest.raises(UnsupportedSettingError, match="'MagnetZ' takes no velocity"):
            mag.move_to("height", 3.0, velocity=1.0)
        assert mag.position("height") == pytest.approx(2.0)  # refused before moving


def test_limits_inside_the_stages_own(settings: dict[str, Any]) -> None:
    s = {"mm_path": settings["mm_path"], "config_file": settings["config_file"]}
    with Magnets({**s, "height_stage": "MagnetZ", "height_limits_mm": (1.0, 8.0)}) as mag:
        assert mag.limits("height") == (1.0, 8.0)
        with pytest.raises(UnsupportedSettingError, match="outside the limits"):
            mag.move_to("height", 9.0)
    beyond = r"'MagnetZ' limits \[0.1, 5\] mm reach beyond the device's own \[0.3, 20\] mm"
    with pytest.raises(UnsupportedSettingError, match=beyond):
        Magnets({**s, "height_stage": "MagnetZ", "height_limits_mm": (0.1, 5.0)}).open()
