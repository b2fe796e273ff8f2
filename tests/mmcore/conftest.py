"""Fixtures: the MagacqTest adapter built once per session, settings for a real CMMCore."""

from pathlib import Path
from typing import Any

import pytest

from tests.mm_adapter import USER_CFG, build_mm_path, core_settings


@pytest.fixture(scope="session")
def mm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Adapter search path holding a freshly built (or cached) libmmgr_dal_MagacqTest.so.0."""
    return build_mm_path(tmp_path_factory)


@pytest.fixture
def settings(mm_path: Path) -> dict[str, Any]:
    """mmcore camera settings for the MagacqTest camera, free-running (exposure 0)."""
    return {**core_settings(mm_path), "exposure_ms": 0.0}


@pytest.fixture
def user_settings(mm_path: Path) -> dict[str, Any]:
    """mmcore camera settings for MagacqUser.cfg (config groups, ZSeq, plain magnet stages)."""
    return {**core_settings(mm_path, USER_CFG), "exposure_ms": 0.0}
