"""Fixtures for the genicam driver tests: real GenTL producers, cameras closed after each test.

viky.cti ships in the genicam 1.6.0 wheel (installed). TLSimu.cti is genicam 1.5.0's producer (a
pixel ramp, device timestamps, a software trigger, Mono10/12/16 and packed PixelFormat entries):
the session fetches it with ``pip download --no-deps genicam==1.5.0`` into
``~/.cache/magacq/genicam-1.5.0`` (``$XDG_CACHE_HOME`` if set) and unzips TLSimu.cti with the
libVirtualFG.so it links against ($ORIGIN rpath). MAGACQ_TEST_TLSIMU_CTI names a copy instead.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
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


TLSIMU_VERSION = "1.5.0"
#: TLSimu.cti and the library it loads from its own directory.
TLSIMU_FILES = ("TLSimu.cti", "libVirtualFG.so")


def tlsimu_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "magacq" / f"genicam-{TLSIMU_VERSION}"


def fetch_tlsimu(cache: Path) -> Path:
    """TLSimu.cti unzipped from the genicam wheel in ``cache``, downloaded first if need be."""
    cti = cache / TLSIMU_FILES[0]
    if all((cache / name).is_file() for name in TLSIMU_FILES):
        return cti
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(f"genicam-{TLSIMU_VERSION}-*.whl"))
    if not wheels:
        # The producer does not depend on the Python version: ask for the manylinux cp311 wheel
        # so that any interpreter here gets one.
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version",
            "3.11", f"genicam=={TLSIMU_VERSION}", "-d", str(cache),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        wheels = sorted(cache.glob(f"genicam-{TLSIMU_VERSION}-*.whl"))
        if done.returncode or not wheels:
            pytest.fail(
                f"could not download genicam {TLSIMU_VERSION} for TLSimu.cti "
                f"({' '.join(cmd)}): {done.stderr.strip()[-2000:]}; or set "
                "MAGACQ_TEST_TLSIMU_CTI to a TLSimu.cti with libVirtualFG.so beside it"
            )
    with zipfile.ZipFile(wheels[-1]) as wheel, tempfile.TemporaryDirectory(dir=cache) as tmp:
        for name in TLSIMU_FILES:
            member = next(m for m in wheel.namelist() if m.endswith(f"/genicam/{name}"))
            with wheel.open(member) as src, open(Path(tmp) / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        for name in TLSIMU_FILES:  # a rename is atomic: a parallel session sees whole files
            os.replace(Path(tmp) / name, cache / name)
    return cti


@pytest.fixture(scope="session")
def tlsimu() -> Path:
    value = os.environ.get("MAGACQ_TEST_TLSIMU_CTI", "")
    if value:
        if not Path(value).is_file():
            pytest.fail(f"MAGACQ_TEST_TLSIMU_CTI names no file: {value}")
        return Path(value)
    if not (sys.platform == "linux" and os.uname().machine == "x86_64"):
        pytest.skip("genicam 1.5.0 ships TLSimu.cti for x86_64 Linux only here")
    return fetch_tlsimu(tlsimu_cache())


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
