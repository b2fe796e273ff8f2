"""Opening a run's devices by driver name: the camera, and the focus stage and magnets beside
it (sharing its connection when they are the same driver's). For planning and the devices
process alike."""

from typing import Any


def open_camera(driver: str, settings: dict[str, Any]) -> Any:
    """Create and open the camera of ``driver`` with ``settings``."""
    from magacq.config import driver_class

    cam = driver_class("camera", driver)(settings)
    cam.open()
    return cam


def open_accessory(kind: str, spec: Any, cam: Any, camera_driver: str) -> Any:
    """Create and open the focus stage or magnets (``kind``) of ``spec`` (driver, settings),
    handed ``cam`` when it is the same driver's camera (one CMMCore, one simulated microscope)."""
    from magacq.config import driver_class

    cls: Any = driver_class(kind, spec["driver"])  # an Accessory class: it takes camera=
    device = cls(spec["settings"], camera=cam if spec["driver"] == camera_driver else None)
    device.open()
    return device
