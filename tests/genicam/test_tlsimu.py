"""The genicam driver on genicam 1.5.0's TLSimu.cti, loaded beside genicam 1.6.0's viky.cti.

TLSimu: four devices on two interfaces (serials SN_Interface{A,B}_{0,1}, models TLSimuMono and
TLSimuColor); Width/Height 8-4096 in steps of 4 (512 x 512 at start); PixelFormat lists Mono8,
Mono10/12/16, Mono10Packed/Mono12Packed and colour formats, but the producer always delivers
Mono8 (a ramp: pixel (y, x) of frame n holds (n + x + y) mod 256); TriggerMode Off/On with
TriggerSource Software and a TriggerSoftware command; device timestamps (timestamp_ns), but only
the sub-second part of the wall clock, so they wrap to 0 every second (the driver then switches
to host time, so frame times never go back); no exposure or frame rate nodes (it free-runs at
about 180 frames/s).
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hal import DeviceError, HalTimeoutError, TimestampClock, UnsupportedSettingError
from hal.conformance import ConformanceSpec, DriverConformance
from hal.genicam import Camera, list_devices

MakeCamera = Callable[..., Camera]
MONO = "SN_InterfaceA_0"


def frame(cam: Camera) -> np.ndarray:
    return np.zeros((cam.height, cam.width), cam.dtype)


def test_enumerates_the_devices(tlsimu: Path) -> None:
    devices = list_devices([tlsimu])
    assert [d["serial_number"] for d in devices] == [
        "SN_InterfaceA_0",
        "SN_InterfaceA_1",
        "SN_InterfaceB_0",
        "SN_InterfaceB_1",
    ]
    assert [d["model"] for d in devices] == ["TLSimuMono", "TLSimuColor"] * 2
    assert {d["vendor"] for d in devices} == {"EMVA_D"}


def test_loads_beside_viky_in_one_process(
    tlsimu: Path, viky: Path, make_camera: MakeCamera
) -> None:
    """Both producers (genicam 1.5.0's and 1.6.0's) open cameras at the same time."""
    sim = make_camera(tlsimu, serial_number=MONO)
    vk = make_camera(viky, serial_number="0")
    assert sim.device_info["model"] == "TLSimuMono" and vk.device_info["model"] == "Viky"
    for cam in (sim, vk):
        out = frame(cam)
        cam.start()
        cam.read_frame(out, timeout=5.0)
        cam.stop()


# --- nodes -------------------------------------------------------------------------------
def test_node_get_and_set(tlsimu: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(tlsimu, serial_number=MONO, nodes={"Width": 256, "Height": 128})
    assert (cam.width, cam.height) == (256, 128)
    assert cam.pixel_format == "Mono8" and cam.dtype == np.uint8
    assert cam.get_node("Width") == 256
    assert cam.get_node("TriggerMode") == "Off"
    assert cam.get_node("TriggerSource") == "Software"
    assert cam.get_node("DeviceVendorName") == "EMVA_D"
    cam.set_nodes({"PixelFormat": "Mono16", "Width": 64})
    assert (cam.pixel_format, cam.dtype, cam.bit_depth, cam.width) == ("Mono16", np.uint16, 16, 64)
    assert cam.get_node("PixelFormat") == "Mono16"
    cam.set_node("TriggerMode", "On")
    assert cam.get_node("TriggerMode") == "On"
    assert np.isnan(cam.exposure_ms)  # no ExposureTime node
    with pytest.raises(UnsupportedSettingError, match="no AcquisitionFrameRate node"):
        cam.frame_rate = 10.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Width", 4097, r"integer in \[8, 4096\] in steps of 4; got 4097"),
        ("Height", 10, r"integer in \[8, 4096\] in steps of 4; got 10"),
        ("TriggerMode", "Maybe", "must be one of Off, On; got 'Maybe'"),
        ("TriggerSource", "Line1", "must be one of Software; got 'Line1'"),
        ("TriggerSoftware", False, r"must be true \(to execute it\)"),
        (
            "PixelFormat",
            "Mono14",
            "not offered by this camera; usable: Mono8, Mono10, Mono12, Mono16, Mono10Packed, "
            "Mono12Packed",
        ),
        ("PixelFormat", "BayerGR8", "not supported by the genicam driver"),
        ("Widht", 64, "no node 'Widht'; did you mean Width"),
        ("DeviceVendorName", "me", "not writable"),
    ],
)
def test_node_errors_list_the_allowed_values(
    tlsimu: Path, make_camera: MakeCamera, name: str, value: object, message: str
) -> None:
    cam = make_camera(tlsimu, serial_number=MONO)
    with pytest.raises(UnsupportedSettingError, match=message):
        cam.set_node(name, value)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedSettingError, match=message):
        make_camera(tlsimu, serial_number="SN_InterfaceB_0", nodes={name: value})


# --- acquisition -------------------------------------------------------------------------
def test_start_fetch_stop_with_continuous_frame_ids(tlsimu: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(tlsimu, serial_number=MONO, nodes={"Width": 64, "Height": 32}, num_buffers=64)
    out = frame(cam)
    ramp = np.add.outer(np.arange(32), np.arange(64))
    for _ in range(2):  # a second acquisition numbers from 0 again
        cam.start()
        infos, firsts = [], []
        for _ in range(20):
            infos.append(cam.read_frame(out, timeout=5.0))
            firsts.append(int(out[0, 0]))
            # the producer's ramp, shifted by one per frame
            assert np.array_equal(out, (ramp + firsts[-1]) % 256)
        cam.stop()
        assert [i.frame_number for i in infos] == list(range(20))
        assert cam.dropped_frames == 0
        # the pixel data moves on exactly one step per frame id: no frame skipped or repeated
        assert np.all(np.diff(firsts) % 256 == 1)
        # TLSimu's timestamp_ns is only the wall clock's sub-second part and wraps every
        # second: the driver then switches to host time, so frame times never go back.
        stamps = np.array([i.timestamp for i in infos])
        assert np.all(np.diff(stamps) > 0)


def test_frame_times_never_go_back_across_the_device_clock_wrap(
    tlsimu: Path, make_camera: MakeCamera
) -> None:
    cam = make_camera(tlsimu, serial_number=MONO, nodes={"Width": 64, "Height": 32}, num_buffers=64)
    out = frame(cam)
    cam.start()
    t0 = time.monotonic()
    stamps = []
    while time.monotonic() - t0 < 1.3:  # longer than the producer's 1 s wrap
        stamps.append(cam.read_frame(out, timeout=5.0).timestamp)
    cam.stop()
    assert np.all(np.diff(stamps) > 0)
    # the device clock went back: from then on the frames are on the host's, and it says so
    assert cam.timestamp_clock is TimestampClock.HOST_MONOTONIC


def test_software_trigger(tlsimu: Path, make_camera: MakeCamera) -> None:
    cam = make_camera(tlsimu, serial_number=MONO, nodes={"TriggerMode": "On"})
    out = frame(cam)
    cam.start()
    with pytest.raises(HalTimeoutError, match="within 0.3 s"):
        cam.read_frame(out, timeout=0.3)  # no trigger, no frame
    for n in range(3):
        cam.set_node("TriggerSoftware", True)  # a command node: set to true executes it
        assert cam.read_frame(out, timeout=5.0).frame_number == n
        assert out.any()
    with pytest.raises(HalTimeoutError):
        cam.read_frame(out, timeout=0.3)  # one frame per trigger
    cam.stop()
    cam.set_node("TriggerMode", "Off")
    cam.start()
    cam.read_frame(out, timeout=5.0)  # free-running again


@pytest.mark.parametrize("fmt", ["Mono16", "Mono12Packed"])
def test_producer_delivering_another_format_is_a_clear_error(
    tlsimu: Path, make_camera: MakeCamera, fmt: str
) -> None:
    """TLSimu accepts PixelFormat Mono16 (or packed ones) yet still sends Mono8 buffers."""
    cam = make_camera(tlsimu, serial_number=MONO, nodes={"PixelFormat": fmt})
    assert cam.pixel_format == fmt
    cam.start()
    with pytest.raises(
        DeviceError, match=f"delivered Mono8 frames although its PixelFormat is {fmt}"
    ):
        cam.read_frame(frame(cam), timeout=5.0)


# --- the hal conformance suite -----------------------------------------------------------
class TestTLSimuConformance(DriverConformance):
    """The suite on TLSimu; without a frame-rate node it has no slow camera (those tests skip)."""

    @pytest.fixture
    def conformance_spec(self, tlsimu: Path) -> ConformanceSpec:
        settings = {"cti_files": [tlsimu], "serial_number": MONO, "pixel_size_nm": 100.0}
        return ConformanceSpec(camera_class=Camera, camera_settings=settings)
