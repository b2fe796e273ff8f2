"""The driver registry: built-ins, module:Class paths, and a real third-party distribution."""

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hal
from hal import DriverNotFoundError, LibraryMissingError, list_drivers
from hal.conformance import DriverConformance, spec_for_driver
from simulators.driver import SimCamera, SimFocusStage, SimMagnets

PLUGIN = "magacq_testdrv_plugin"

_DRIVER = '''
"""A tiny third-party magacq driver: a camera that counts."""
import time
import numpy as np
from pydantic import Field
from hal import Camera as _Camera, DeviceSettings, FrameInfo, AcquisitionEnded, TimestampClock
from hal import UnsupportedSettingError


class Settings(DeviceSettings):
    level: int = Field(7, ge=0, le=255)


class Camera(_Camera):
    Settings = Settings

    def _do_open(self): self._k = 0
    def _do_close(self): pass
    def _do_start(self, n): self._k, self._n = 0, n
    def _do_stop(self): pass

    def _do_read_frame(self, out, timeout):
        if self._n is not None and self._k >= self._n:
            raise AcquisitionEnded("done")
        out.fill(self.settings.level)
        out[0, 0] = self._k
        self._k += 1
        return FrameInfo(time.monotonic(), self._k - 1)

    width = property(lambda self: 16)
    height = property(lambda self: 8)
    dtype = property(lambda self: np.dtype(np.uint8))
    bit_depth = property(lambda self: 8)
    pixel_size_nm = property(lambda self: 50.0)
    timestamp_clock = property(lambda self: TimestampClock.HOST_MONOTONIC)
    # fixed exposure, free-running only: other values are refused, not ignored
    def _fixed(self, name, value, fixed):
        if value != fixed:
            raise UnsupportedSettingError(f"{name} is fixed at {fixed}")

    exposure_ms = property(lambda self: 1.0, lambda self, v: self._fixed("exposure_ms", v, 1.0))
    frame_rate = property(lambda self: 0.0, lambda self, v: self._fixed("frame_rate", v, 0.0))
'''


_ENTRY_POINTS = f"""[magacq.drivers]
zz_testdrv = {PLUGIN}
zz_broken = {PLUGIN}.broken
zz_vendorless = {PLUGIN}.needs_vendor
"""


def _build_wheel(dest: Path) -> Path:
    """Write a real wheel (PEP 427) of the plugin: a package plus dist-info with entry points.

    Built by hand because the test venv has no wheel-building backend and no network.
    """
    files = {
        f"{PLUGIN}/__init__.py": _DRIVER,
        f"{PLUGIN}/broken.py": "raise RuntimeError('plugin bug at import')\n",
        f"{PLUGIN}/needs_vendor.py": "import no_such_vendor_lib_xyz\n",
    }
    info = f"{PLUGIN}-0.1.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 0.1\n"
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: magacq-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = _ENTRY_POINTS
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = dest / f"{PLUGIN}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """pip-install a real third-party driver distribution into a private site directory."""
    root = tmp_path_factory.mktemp("plugin")
    wheel = _build_wheel(root)
    site = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert (site / PLUGIN / "__init__.py").is_file()
    assert (site / f"{PLUGIN}-0.1.dist-info" / "entry_points.txt").is_file()
    return site


@pytest.fixture
def plugin(plugin_site, monkeypatch):
    """The installed plugin on sys.path for one test; its modules forgotten afterwards."""
    monkeypatch.syspath_prepend(str(plugin_site))
    yield plugin_site
    for name in [m for m in sys.modules if m.startswith(PLUGIN)]:
        del sys.modules[name]


def test_builtin_sim_listed_and_usable():
    info = {d.name: d for d in list_drivers()}
    assert {"sim", "mmcore", "genicam"} <= set(info)
    sim = info["sim"]
    assert sim.usable and sim.kinds == ("camera", "focus_stage", "magnets") and sim.reason == ""
    assert info["mmcore"].has_magnets and not info["genicam"].has_magnets
    assert hal.camera_class("sim") is SimCamera
    assert hal.focus_stage_class("sim") is SimFocusStage
    assert hal.magnets_class("sim") is SimMagnets
    with pytest.raises(DriverNotFoundError, match="no Magnets"):
        hal.magnets_class("genicam")


def test_module_class_path():
    assert hal.camera_class("simulators.driver:SimCamera") is SimCamera
    with pytest.raises(DriverNotFoundError):
        hal.camera_class("simulators.driver:NoSuchThing")
    with pytest.raises(DriverNotFoundError):
        hal.camera_class("no_such_pkg_xyz.mod:Cam")
    with pytest.raises(DriverNotFoundError):  # a FocusStage is not a Camera
        hal.camera_class("simulators.driver:SimFocusStage")


def test_unknown_name_lists_known():
    with pytest.raises(DriverNotFoundError, match="sim") as info:
        hal.camera_class("no_such_driver")
    assert "known drivers" in str(info.value)


def test_third_party_found_and_runs(plugin):
    info = {d.name: d for d in list_drivers()}
    drv = info["zz_testdrv"]
    assert drv.usable and drv.kinds == ("camera",)
    cls = hal.camera_class("zz_testdrv")
    with cls({"level": 42}) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start(2)
        assert cam.read_frame(out).frame_number == 0
        assert cam.read_frame(out).frame_number == 1
        assert out[1, 1] == 42 and out[0, 0] == 1
    with pytest.raises(DriverNotFoundError, match="has no FocusStage"):
        hal.focus_stage_class("zz_testdrv")


def test_broken_plugins_reported_not_raised(plugin):
    info = {d.name: d for d in list_drivers()}
    broken, vendorless = info["zz_broken"], info["zz_vendorless"]
    assert not broken.usable and "plugin bug at import" in broken.reason
    assert not vendorless.usable and vendorless.reason == "no_such_vendor_lib_xyz not installed"
    assert info["sim"].usable  # the rest of the listing is intact
    with pytest.raises(LibraryMissingError, match="no_such_vendor_lib_xyz"):
        hal.camera_class("zz_vendorless")


def test_plugin_in_a_fresh_interpreter(plugin_site):
    """What `magacq drivers` would see in a new process with the plugin installed."""
    code = (
        "import hal; d = {i.name: i for i in hal.list_drivers()}; "
        "print(d['zz_testdrv'].usable, d['zz_broken'].usable, d['sim'].usable)"
    )
    env_path = f"{plugin_site}:{Path(__file__).resolve().parents[2]}"
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.split() == ["True", "False", "True"]


class TestThirdPartyConformance(DriverConformance):
    """The third-party driver passes the same conformance suite as the built-ins."""

    @pytest.fixture
    def conformance_spec(self, plugin):
        return spec_for_driver("zz_testdrv")
