"""Fixtures: the MagacqTest adapter built once per session, settings for a real CMMCore."""

from pathlib import Path
from typing import Any

import pytest

from simulators.mm_adapter import build_adapter

CFG = Path(__file__).parents[2] / "simulators" / "mm_adapter" / "MagacqTest.cfg"


@pytest.fixture(scope="session")
def mm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Adapter search path holding a freshly built (or cached) libmmgr_dal_MagacqTest.so.0."""
    return build_adapter(tmp_path_factory.mktemp("mm_adapter")).parent


@pytest.fixture
def settings(mm_path: Path) -> dict[str, Any]:
    """mmcore camera settings for the MagacqTest camera, free-running (exposure 0)."""
    return {"mm_path": [mm_path], "config_file": CFG, "exposure_ms": 0.0}
