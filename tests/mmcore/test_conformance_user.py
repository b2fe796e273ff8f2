"""The hal conformance suite on a Micro-Manager configuration as labs have it (MagacqUser.cfg):
a camera set up by presets, a sequenceable focus stage that keeps its limits to itself, magnet
stages without velocity whose moves are over at once."""

from pathlib import Path

import pytest

from hal.conformance import ConformanceSpec, DriverConformance
from hal.mmcore import Camera, FocusStage, Magnets
from tests.mm_adapter import USER_CFG, core_settings


class TestUserConfiguration(DriverConformance):
    @pytest.fixture
    def conformance_spec(self, mm_path: Path) -> ConformanceSpec:
        core = core_settings(mm_path, USER_CFG)
        presets = {"Camera": "HighSpeed", "Channel": "Counter"}  # 8 bit, binning 2
        return ConformanceSpec(
            camera_class=Camera,
            camera_settings={**core, "exposure_ms": 1.0, "presets": presets},
            slow_camera_settings={**core, "exposure_ms": 600.0, "presets": presets},
            focus_stage_class=FocusStage,
            magnets_class=Magnets,
            magnets_settings={"height_stage": "MagnetZ", "rotation_stage": "MagnetR"},
        )
