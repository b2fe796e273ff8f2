"""The genicam driver on the real GenTL producer of the genicam wheel (viky.cti).

Viky: three devices (serials "0", "1", "2", model "Viky"); Width/Height 100-800; PixelFormat
RGBa8 (default) or Mono8; AcquisitionFrameRate 1-200 Hz; frame ids from 1 that keep counting
while no buffer is free (so a slow reader sees real gaps); no device timestamps.
"""

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hal import (
    AcquisitionEnded,
    DeviceError,
    HalTimeoutError,
    LibraryMissingError,
    TimestampClock,
    UnsupportedSettingError,
)
from hal.genicam import Camera, DeviceBusyError, default_cti_files, list_devices
from hal.genicam._nodes import ordered

MakeCamera = Callable[..., Camera]


def frame(cam: Camera) -> np.ndarray:
    return np.zeros((cam.height, cam.width), cam.dtype)


# --- producers and devices ---------------------------------------------------------------
def test_enumerates_the_producers_devices(viky: Path) -> None:
    devices = list_devices([viky])
    assert [d["serial_number"] for d in devices] == ["0", "1", "2"]
    assert {d["model"] for d in devices} == {"Viky"}


def test_default_producer_is_gentl_path_else_the_bundled_one(
    viky: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GENICAM_GENTL64_PATH", raising=False)
    assert default_cti_files() == [viky]
    monkeypatch.setenv("GENICAM_GENTL64_PATH", f"{tmp_path}:{viky.parent}")
    assert default_cti_files() == sorted(viky.parent.glob("*.cti"))
    monkeypatch.setenv("GENICAM_GENTL64_PATH", str(tmp_path))
    assert default_cti_files() == []
    with pytest.raises(DeviceError, match=r"no GenTL producer \(\.cti\) found"):
        Camera({"pixel_size_nm": 100}).open()


def test_missing_producer_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSettingError, match="producer file not found"):
        Camera({"cti_files": [tmp_path / "nope.cti"], "pixel_size_nm": 100})


def test_missing_vendor_library(viky: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With harvesters not importable (as when not installed) the driver says what to install."""
    for name in [m for m in sys.modules if m.startswith("harvesters")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "harvesters", None)
    monkeypatch.setitem(sys.modules, "harvesters.core", None)
    assert "harvesters is not installed" in (Camera.unavailable_reason() or "")
    with pytest.raises(LibraryMissingError, match="magacq\\[genicam\\]"):
        Camera({"cti_files": [viky], "pixel_size_nm": 100}).open()


def test_selects_by_serial_model_and_index(viky: Path, make_camera: MakeCamera) -> None:
    assert make_camera(viky, serial_number="1").device_info["id"] == "VikyTL_DEV_green"
    assert make_camera(viky, model="Viky", index=2).device_info["serial_number"] == "2"
    with pytest.raises(DeviceError, match=r"serial_number='9'.*devices: serial '0'"):
        make_camera(viky, serial_number="9")
    with pytest.raises(DeviceError, match="index 3"):
        make_camera(viky, index=3)


def test_second_acquirer_is_told_the_device_is_busy(viky: Path, make_camera: MakeCamera) -> None:
    make_camera(viky, serial_number="0")
    with pytest.raises(DeviceBusyError, match="busy"):
        make_camera(viky, serial_number="0")
    make_camera(viky, serial_number="1")  # another device of the same producer is free


def test_open_keeps_the_applications_sigint_handler(viky: Path, make_camera: MakeCamera) -> None:
    before = signal.getsignal(signal.SIGINT)
    make_camera(viky)
    assert signal.getsignal(signal.SIGINT) is before


# --- nodes -------------------------------------------------------------------------------
def test_opens_in_a_supported_format_and_reads_nodes(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky)  # viky starts in RGBa8: the driver picks Mono8
    assert cam.pixel_format == "Mono8" and cam.dtype == np.uint8 and cam.bit_depth == 8
    assert cam.get_node("Width") == cam.width
    assert cam.get_node("AcquisitionMode") == "Continuous"


def test_node_settings_are_applied_in_a_valid_order(viky: Path, make_camera: MakeCamera) -> None:
    nodes = {
        "BouncingBallSize": 30,
        "AcquisitionFrameRate": 50.0,
        "Height": 200,
        "Width": 320,
        "PixelFormat": "Mono8",
    }
    names = [n for n, _ in ordered(nodes)]
    assert names == ["PixelFormat", "Width", "Height", "AcquisitionFrameRate", "BouncingBallSize"]
    cam = make_camera(viky, nodes=nodes)
    assert (cam.width, cam.height, cam.frame_rate) == (320, 200, 50.0)
    assert cam.get_node("BouncingBallSize") == 30
    assert cam.roi == (0, 0, 320, 200)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Width", 99, r"integer in \[100, 800\]"),
        ("Width", "wide", r"integer in \[100, 800\]"),
        ("AcquisitionFrameRate", 500.0, r"number in \[1.0, 200.0\] Hz"),
        ("PixelFormat", "Mono12", "not offered by this camera; usable: Mono8"),
        ("PixelFormat", "RGBa8", "not supported by the genicam driver"),
        ("ChunkSelector", "Bogus", "must be one of NrBounces, Scan3dData; got 'Bogus'"),
        ("ChunkModeActive", "yes", "must be true or false"),
        ("AcquisitionMode", "SingleFrame", "not writable now .* holds 'Continuous'"),
        ("Widht", 300, "no node 'Widht'; did you mean Width"),
        ("PayloadSize", 5, "not writable"),
    ],
)
def test_node_errors_say_what_is_allowed(
    viky: Path, make_camera: MakeCamera, name: str, value: object, message: str
) -> None:
    cam = make_camera(viky)
    with pytest.raises(UnsupportedSettingError, match=message):
        cam.set_node(name, value)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedSettingError, match=message):
        make_camera(viky, serial_number="1", nodes={name: value})


def test_exposure_frame_rate_and_roi(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky)
    assert np.isnan(cam.exposure_ms)  # viky has no ExposureTime node
    with pytest.raises(UnsupportedSettingError, match="ExposureTime"):
        cam.exposure_ms = 5.0
    cam.frame_rate = 120.0
    assert cam.frame_rate == 120.0
    with pytest.raises(UnsupportedSettingError, match="cannot free-run"):
        cam.frame_rate = 0
    cam.roi = (0, 0, 256, 128)
    assert (cam.width, cam.height) == (256, 128)
    cam.start()
    with pytest.raises(DeviceError, match="stop the acquisition"):
        cam.set_node("Width", 300)
    cam.frame_rate = 60.0  # allowed while acquiring


# --- acquisition -------------------------------------------------------------------------
def test_start_fetch_stop(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky, nodes={"Width": 240, "Height": 160, "AcquisitionFrameRate": 100.0})
    out = frame(cam)
    cam.start()
    infos = []
    for _ in range(5):
        before = time.monotonic()
        infos.append(cam.read_frame(out, timeout=5.0))
        # viky has no device clock: frame times are the host's, taken at the fetch
        assert before <= infos[-1].timestamp <= time.monotonic()
    assert out.any()
    cam.stop()
    cam.start(n_frames=2)
    assert [cam.read_frame(out, timeout=5.0).frame_number for _ in range(2)] == [0, 1]
    with pytest.raises(AcquisitionEnded):
        cam.read_frame(out, timeout=5.0)
    cam.stop()
    with pytest.raises(DeviceError, match="not acquiring"):
        cam.read_frame(out)
    with pytest.raises(ValueError, match="frame array must be"):
        cam.start()
        cam.read_frame(np.zeros((10, 10), np.uint8))


def test_frame_ids_continuous_when_the_reader_keeps_up(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky, nodes={"AcquisitionFrameRate": 20.0}, num_buffers=64)
    out = frame(cam)
    cam.start()
    numbers = [cam.read_frame(out, timeout=5.0).frame_number for _ in range(10)]
    assert numbers == list(range(10))
    assert cam.dropped_frames == 0


def test_frame_id_gaps_count_as_dropped(viky: Path, make_camera: MakeCamera) -> None:
    """With one buffer and a slow reader, viky skips frame ids: each gap is dropped frames."""
    cam = make_camera(viky, nodes={"AcquisitionFrameRate": 200.0}, num_buffers=1)
    out = frame(cam)
    cam.start()
    numbers = [cam.read_frame(out, timeout=5.0).frame_number]
    while cam.dropped_frames == 0 and len(numbers) < 50:
        time.sleep(0.05)
        numbers.append(cam.read_frame(out, timeout=5.0).frame_number)
    assert cam.dropped_frames > 0
    assert numbers == sorted(set(numbers))
    assert numbers[-1] + 1 - len(numbers) == cam.dropped_frames


def test_read_times_out(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky, nodes={"AcquisitionFrameRate": 1.0})
    out = frame(cam)
    cam.start()
    cam.read_frame(out, timeout=5.0)
    with pytest.raises(HalTimeoutError, match="within 0.05 s"):
        for _ in range(5):  # the next frame is ~1 s away; retry if this thread was held up
            cam.read_frame(out, timeout=0.05)


def test_zero_timeout_polls(viky: Path, make_camera: MakeCamera) -> None:
    """timeout=0 returns a frame that has arrived (it used to give up before fetching)."""
    cam = make_camera(viky, nodes={"AcquisitionFrameRate": 200.0})
    out = frame(cam)
    cam.start()
    cam.read_frame(out, timeout=5.0)
    give_up = time.monotonic() + 10.0  # liveness bound only
    while True:
        try:
            assert cam.read_frame(out, timeout=0).frame_number >= 1
            break
        except HalTimeoutError:
            assert time.monotonic() < give_up, "read_frame(timeout=0) never returned a frame"
            time.sleep(0.001)


def test_roi_of_a_closed_camera_is_a_device_error(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky, open_=False)
    with pytest.raises(DeviceError, match="not open"):
        _ = cam.roi
    with pytest.raises(DeviceError, match="not open"):
        cam.roi = (0, 0, 128, 128)


@pytest.mark.parametrize("how", ["stop", "close"])
def test_stop_from_another_thread_ends_a_blocked_read(
    viky: Path, make_camera: MakeCamera, how: str
) -> None:
    cam = make_camera(viky, nodes={"AcquisitionFrameRate": 1.0}, fetch_timeout_s=0.05)
    out = frame(cam)
    cam.start()
    cam.read_frame(out, timeout=5.0)
    errors: list[BaseException] = []
    reading = threading.Event()

    def reader() -> None:
        reading.set()
        try:
            while True:
                cam.read_frame(out, timeout=60.0)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    reading.wait()
    time.sleep(0.1)
    getattr(cam, how)()
    thread.join(timeout=30.0)  # a guard against a hang, not a timing assertion
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], AcquisitionEnded | DeviceError)
    assert not cam.is_running


def test_device_timestamps_required_but_absent(viky: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(viky, timestamps="device")
    cam.start()
    with pytest.raises(DeviceError, match="no timestamps"):
        cam.read_frame(frame(cam), timeout=5.0)


def test_the_clock_is_the_hosts_without_device_timestamps(
    viky: Path, make_camera: MakeCamera
) -> None:
    cam = make_camera(viky, timestamps="host")
    assert cam.timestamp_clock is TimestampClock.HOST_MONOTONIC
    cam.close()
    cam = make_camera(viky)  # auto: the camera's clock, until its first frame has none
    assert cam.timestamp_clock is TimestampClock.CAMERA_FREE_RUNNING
    cam.start()
    before = time.monotonic()
    stamp = cam.read_frame(frame(cam), timeout=5.0).timestamp
    assert cam.timestamp_clock is TimestampClock.HOST_MONOTONIC
    assert before <= stamp <= time.monotonic()
