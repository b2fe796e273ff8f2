"""The mmcore camera driver on a real CMMCore running the MagacqTest camera."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hal import AcquisitionEnded, DeviceError, LibraryMissingError, UnsupportedSettingError
from hal.mmcore import Camera


def _counter(frame: np.ndarray) -> int:
    return int(frame.view(np.uint8).ravel()[:8].view("<u8")[0])


def _expected(counter: int, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """The Counter pattern: (counter + pixel index) mod 2^bits, the counter in bytes 0..7."""
    n = shape[0] * shape[1]
    bits = np.dtype(dtype).itemsize * 8
    frame = ((counter + np.arange(n, dtype=np.uint64)) % (1 << bits)).astype(dtype)
    frame.view(np.uint8)[:8] = np.frombuffer(np.uint64(counter).tobytes(), np.uint8)
    return frame.reshape(shape)


def _read_all(cam: Camera, out: np.ndarray) -> list[tuple[int, int, float]]:
    got = []
    while True:
        try:
            info = cam.read_frame(out, timeout=5.0)
        except AcquisitionEnded:
            return got
        got.append((info.frame_number, _counter(out), info.timestamp))
        assert np.array_equal(out, _expected(info.frame_number, out.shape, out.dtype))


@pytest.mark.parametrize("pixel_type", ["8bit", "16bit"])
def test_every_frame_intact_and_in_order(settings: dict[str, Any], pixel_type: str) -> None:
    settings["properties"] = {"PixelType": pixel_type}
    with Camera(settings) as cam:
        assert cam.dtype == (np.uint8 if pixel_type == "8bit" else np.uint16)
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start(200)
        got = _read_all(cam, out)
        cam.stop()
    numbers = [g[0] for g in got]
    assert cam.dropped_frames + len(got) == 200
    assert numbers == sorted(set(numbers))  # strictly increasing
    assert all(n == c for n, c, _ in got)  # MMCore's ImageNumber matches the camera's counter
    assert [t for *_, t in got] == sorted(t for *_, t in got)


def test_continuous_roi_and_binning(settings: dict[str, Any]) -> None:
    settings.update(roi=(64, 32, 256, 128))
    with Camera(settings) as cam:
        assert (cam.width, cam.height) == (256, 128)
        assert cam.roi == (64, 32, 256, 128)
        cam.binning = 2
        assert cam.binning == 2
        cam.roi = (0, 0, 128, 64)
        assert (cam.width, cam.height) == (64, 32)
        out = np.empty((32, 64), np.uint16)
        cam.start()
        first = cam.read_frame(out).frame_number
        dropped_before = cam.dropped_frames
        last = first
        for _ in range(50):
            last = cam.read_frame(out).frame_number
            assert np.array_equal(out, _expected(last, out.shape, out.dtype))
        cam.stop()
        assert last - first == 50 + cam.dropped_frames - dropped_before
        with pytest.raises(UnsupportedSettingError, match="multiples of the binning"):
            cam.roi = (1, 0, 64, 64)


def test_overflow_counts_dropped_frames(settings: dict[str, Any]) -> None:
    # 1 MB circular buffer: two 512x512 uint16 frames; the camera outruns an idle reader.
    settings["buffer_mb"] = 1
    with Camera(settings) as cam:
        out = np.empty((cam.height, cam.width), cam.dtype)
        cam.start(100)
        while cam.core.isSequenceRunning():  # let the camera finish before reading anything
            cam.core.sleep(1)
        got = _read_all(cam, out)
        cam.stop()
    numbers = [g[0] for g in got]
    assert 0 < len(got) < 100
    assert cam.dropped_frames == 100 - len(got)
    assert numbers == sorted(set(numbers))
    assert numbers[-1] <= 99


def test_property_errors_list_what_is_allowed(settings: dict[str, Any]) -> None:
    for props, match in [
        ({"PixelType": "12bit"}, "allowed values: 16bit, 32bit, 8bit"),
        ({"NoSuchProperty": 1}, "has no property 'NoSuchProperty'; its properties: .*Binning"),
        ({"Noise": 5000}, r"outside its limits \[0, 1000\]"),
        ({"Noise": "lots"}, "takes a number"),
        ({"Z": {"Position": 1e6}}, "outside its limits"),
    ]:
        with pytest.raises(UnsupportedSettingError, match=match):
            Camera({**settings, "properties": props}).open()
    with pytest.raises(UnsupportedSettingError, match="no camera device 'Nope'.*Cam"):
        Camera({**settings, "camera": "Nope"}).open()


def test_properties_are_applied(settings: dict[str, Any]) -> None:
    settings["properties"] = {"Noise": 3, "Pattern": "Beads", "Z": {"SettleMs": 0}}
    with Camera(settings) as cam:
        assert cam.core.getProperty("Cam", "Noise") == "3"
        assert cam.core.getProperty("Cam", "Pattern") == "Beads"
        assert float(cam.core.getProperty("Z", "SettleMs")) == 0


def test_missing_paths_are_clear(settings: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSettingError, match="device adapter directory not found"):
        Camera({**settings, "mm_path": [tmp_path / "nope"]})
    with pytest.raises(UnsupportedSettingError, match="config file not found"):
        Camera({**settings, "config_file": tmp_path / "nope.cfg"})


def test_adapter_load_failure_carries_mmcore_message(
    settings: dict[str, Any], tmp_path: Path
) -> None:
    # No adapter in the search path: MMCore's own message names the library it looked for.
    with pytest.raises(DeviceError, match="Failed to load device adapter.*MagacqTest"):
        Camera({**settings, "mm_path": [tmp_path]}).open()
    # A file that is not a shared library.
    (tmp_path / "libmmgr_dal_MagacqTest.so.0").write_bytes(b"not a library")
    with pytest.raises(DeviceError, match="MagacqTest"):
        Camera({**settings, "mm_path": [tmp_path]}).open()


def test_missing_pymmcore_is_a_library_error(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one thing that cannot be real here: an environment without pymmcore.
    import sys

    monkeypatch.setitem(sys.modules, "pymmcore", None)
    assert "pymmcore is not installed" in (Camera.unavailable_reason() or "")
    with pytest.raises(LibraryMissingError, match=r"magacq\[mmcore\]"):
        Camera(settings).open()


def test_pixel_size_and_exposure(settings: dict[str, Any]) -> None:
    with Camera({**settings, "exposure_ms": 3.5}) as cam:
        assert cam.pixel_size_nm == pytest.approx(100.0)
        assert cam.exposure_ms == pytest.approx(3.5)
        cam.exposure_ms = 0
        assert cam.exposure_ms == 0
    with Camera({**settings, "pixel_size_nm": 65.0}) as cam:
        assert cam.pixel_size_nm == 65.0
