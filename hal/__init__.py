"""Hardware abstraction: Device, Camera, FocusStage, Magnets, their errors, the registry."""

from hal._camera import Camera, FrameInfo, TimestampClock
from hal._device import Accessory, Device
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
from hal._magnets import AXES, UNITS, MagnetPosition, Magnets
from hal._registry import (
    KINDS,
    DriverInfo,
    camera_class,
    focus_stage_class,
    list_drivers,
    magnets_class,
)
from hal._settings import DeviceSettings, validate_settings
from hal._truth import BeadRadiusSource, GroundTruthSource

__all__ = [
    "BeadRadiusSource",
    "GroundTruthSource",
    "AXES",
    "KINDS",
    "UNITS",
    "Accessory",
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
    "MagnetPosition",
    "Magnets",
    "TimestampClock",
    "UnsupportedSettingError",
    "camera_class",
    "focus_stage_class",
    "list_drivers",
    "magnets_class",
    "validate_settings",
]
