"""genicam driver: GenICam/GenTL cameras through harvesters (imported only when a camera opens)."""

from hal.genicam._camera import Camera, DeviceBusyError, list_devices
from hal.genicam._pixels import FORMATS, PixelFormat, unpack
from hal.genicam._producer import default_cti_files
from hal.genicam._settings import GenICamSettings

__all__ = [
    "FORMATS",
    "Camera",
    "DeviceBusyError",
    "GenICamSettings",
    "PixelFormat",
    "default_cti_files",
    "list_devices",
    "unpack",
]

#: Settings the hal conformance suite uses: the default producer (GENICAM_GENTL64_PATH, else the
#: genicam wheel's simulated camera), frames paced at 1 Hz for the slow camera.
CONFORMANCE = {
    "camera": {"pixel_size_nm": 100.0},
    "slow_camera": {"pixel_size_nm": 100.0, "nodes": {"AcquisitionFrameRate": 1.0}},
}
