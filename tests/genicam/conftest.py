"""Fixtures for the genicam driver tests: real GenTL producers, cameras closed after each test.

viky.cti ships in the genicam 1.6.0 wheel. TLSimu.cti (genicam 1.5.0's producer: a pixel ramp,
device timestamps, Mono10/12/16 and packed PixelFormat entries) runs the extra tests when
MAGACQ_TEST_TLSIMU_CTI names it (``pip download genicam==1.5.0`` and unzip the wheel).
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("harvesters.core")

from hal.genicam import Camera  # noqa: E402
from hal.genicam._producer import bundled_producer  # noqa: E402


@pytest.fixture(scope="session")
def viky() -> Path:
    path = bundled_producer()
    if path is None or path.name != "viky.cti":
        pytest.skip("the genicam wheel here bundles no viky.cti (genicam 1.6.0 does)")
    return path


@pytest.fixture(scope="session")
def tlsimu() -> Path:
    value = os.environ.get("MAGACQ_TEST_TLSIMU_CTI", "")
    if not value or not Path(value).is_file():
        pytest.skip("set MAGACQ_TEST_TLSIMU_CTI to genicam 1.5.0's TLSimu.cti")
    return Path(value)


@pytest.fixture
def make_camera() -> Iterator[Callable[..., Camera]]:
    """Open cameras from settings; every one is closed after the test."""
    cameras: list[Camera] = []

    def make(cti: Path, open_: bool = True, **settings: Any) -> Camera:
        cam = Camera({"cti_files": [cti], "pixel_size_nm": 100.0, **settings})
        cameras.append(cam)
        if open_:
            cam.open()
        return cam

    yield make
    for cam in reversed(cameras):
        cam.close()
