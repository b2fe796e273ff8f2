"""mmcore driver: Micro-Manager cameras and focus stages through pymmcore (imported at open)."""

from hal.mmcore._camera import Camera
from hal.mmcore._core import device_interface_version, set_property
from hal.mmcore._focus import FocusStage
from hal.mmcore._settings import MMCoreFocusSettings, MMCoreSettings

__all__ = [
    "Camera",
    "FocusStage",
    "MMCoreFocusSettings",
    "MMCoreSettings",
    "device_interface_version",
    "set_property",
]
