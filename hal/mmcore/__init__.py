"""mmcore driver: Micro-Manager cameras, focus stages and magnet motors through pymmcore
(imported at open)."""

from hal.mmcore._camera import Camera
from hal.mmcore._check import check_configuration
from hal.mmcore._core import device_interface_version, set_property
from hal.mmcore._focus import FocusStage
from hal.mmcore._magnets import Magnets
from hal.mmcore._settings import MMCoreFocusSettings, MMCoreMagnetsSettings, MMCoreSettings

__all__ = [
    "Camera",
    "FocusStage",
    "MMCoreFocusSettings",
    "MMCoreMagnetsSettings",
    "Magnets",
    "MMCoreSettings",
    "check_configuration",
    "device_interface_version",
    "set_property",
]
