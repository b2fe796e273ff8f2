"""The MagacqTest Micro-Manager adapter for tests: build it, and the settings that load it."""

from pathlib import Path
from typing import Any

import pytest

from simulators.mm_adapter import build_adapter

CFG = Path(__file__).parents[1] / "simulators" / "mm_adapter" / "MagacqTest.cfg"
#: Config groups, a sequenceable focus stage that keeps its limits, stages without velocity.
USER_CFG = CFG.with_name("MagacqUser.cfg")


def build_mm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Adapter search path holding a freshly built (or cached) libmmgr_dal_MagacqTest.so.0."""
    return build_adapter(tmp_path_factory.mktemp("mm_adapter")).parent


def core_settings(mm_path: Path, config_file: Path = CFG) -> dict[str, Any]:
    """The mmcore driver settings that load ``config_file`` (MagacqTest) from ``mm_path``."""
    return {"mm_path": [mm_path], "config_file": config_file}


def small_camera(mm_path: Path, properties: dict[str, Any]) -> dict[str, Any]:
    """The config's camera section for the run tests: MagacqTest's camera, 128x128 at 5 ms."""
    core = {"mm_path": [str(mm_path)], "config_file": str(CFG)}
    settings = {**core, "exposure_ms": 5, "roi": [0, 0, 128, 128], "properties": properties}
    return {"driver": "mmcore", "settings": settings}
