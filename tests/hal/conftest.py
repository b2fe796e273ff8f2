"""Conformance settings the test session supplies for built-in drivers that cannot declare them.

The mmcore driver's settings name the directory of the compiled MagacqTest adapter, which exists
only once :func:`simulators.mm_adapter.build_adapter` has run (and hal must not import
simulators), so the session builds it and hands the settings to ``spec_for_driver``; the replay
driver's name a recorded run file, which the session records first.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from tests.mm_adapter import build_mm_path, core_settings
from tests.recorded import sim_frames, write_run_file

Settings = Mapping[str, Mapping[str, Any]]


@pytest.fixture(scope="session")
def session_conformance(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Callable[[], Settings]]:
    """``CONFORMANCE``-style settings by driver name, each made on first use."""

    @functools.cache
    def mmcore() -> Settings:
        base = core_settings(build_mm_path(tmp_path_factory))
        return {
            "camera": {**base, "exposure_ms": 1.0, "roi": (0, 0, 128, 96)},
            # the adapter delivers one frame per exposure
            "slow_camera": {**base, "exposure_ms": 600.0, "roi": (0, 0, 64, 64)},
            "focus_stage": {},
            # the adapter's magnet stages (5 mm/s, 10 turns/s: a 2-unit move takes 0.2-0.4 s)
            "magnets": {
                "height_stage": "MagnetZ",
                "rotation_stage": "MagnetR",
                "velocity_property": "Velocity",
            },
        }

    @functools.cache
    def replay() -> Settings:
        path = tmp_path_factory.mktemp("replay") / "recorded.h5"
        frames, _ = sim_frames(6)
        write_run_file(path, frames, np.arange(6) * 0.01)  # recorded at 100 frames/s
        return {
            "camera": {"file": path},
            "slow_camera": {"file": path, "frame_rate": 1.0},
            "focus_stage": {},
        }

    return {"mmcore": mmcore, "replay": replay}
