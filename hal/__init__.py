"""Hardware abstraction: Device, Camera and FocusStage, their errors, the driver registry."""

from hal._camera import Camera, FrameInfo
from hal._device import Device
from hal._errors import (
    AcquisitionEnded,
    DeviceError,
    DriverNotFoundError,
    HalError,
    HalTimeoutError,
    LibraryMissingError,
    UnsupportedSettingError,
)
from hal._focus import FocusStage
from hal._registry import DriverInfo, camera_class, focus_stage_class, list_drivers
from hal._settings import DeviceSettings, validate_settings

__all__ = [
    "AcquisitionEnded",
    "Camera",
    "Device",
    "DeviceError",
    "DeviceSettings",
    "DriverInfo",
    "DriverNotFoundError",
    "FocusStage",
    "FrameInfo",
    "HalError",
    "HalTimeoutError",
    "LibraryMissingError",
    "UnsupportedSettingError",
    "camera_class",
    "focus_stage_class",
    "list_drivers",
    "validate_settings",
]
