"""The MagacqTest adapter itself, loaded by a bare pymmcore.CMMCore from the .cfg."""

from pathlib import Path

import numpy as np
import pymmcore

from simulators.mm_adapter import DEVICE_INTERFACE_VERSION, LIBRARY_NAME
from tests.mm_adapter import CFG


def _counter(frame: np.ndarray) -> int:
    return int(frame.view(np.uint8).ravel()[:8].view("<u8")[0])


def test_interface_version_matches_the_wheel() -> None:
    info = pymmcore.CMMCore().getAPIVersionInfo()
    assert f"Device API version {DEVICE_INTERFACE_VERSION}," in info


def test_core_loads_the_adapter(mm_path: Path) -> None:
    assert (mm_path / LIBRARY_NAME).is_file()
    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(mm_path)])
    core.loadSystemConfiguration(str(CFG))
    try:
        assert core.getCameraDevice() == "Cam"
        assert core.getFocusDevice() == "Z"
        core.setExposure(0)
        core.startSequenceAcquisition(30, 0, False)
        counters = []
        while core.isSequenceRunning() or core.getRemainingImageCount():
            if core.getRemainingImageCount():
                counters.append(_counter(core.popNextImage()))
        assert counters == list(range(30))
    finally:
        core.unloadAllDevices()


def test_beads_depend_on_the_stage(mm_path: Path) -> None:
    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(mm_path)])
    core.loadSystemConfiguration(str(CFG))
    try:
        core.setProperty("Cam", "Pattern", "Beads")
        frames = []
        for z_um in (-2.0, 0.0, 0.0, 2.0):
            core.setPosition(z_um)
            core.snapImage()
            frames.append(core.getImage()[1:].astype(np.int64))  # row 0 holds the counter
        assert np.array_equal(frames[1], frames[2])
        assert not np.array_equal(frames[0], frames[1])
        assert not np.array_equal(frames[1], frames[3])
        assert frames[1].std() > 100  # rings, not a flat field
    finally:
        core.unloadAllDevices()
