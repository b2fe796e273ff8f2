"""Hardware abstraction: the Camera and FocusStage interfaces, their errors, the driver registry."""

from hal._camera import Camera, FrameInfo
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
