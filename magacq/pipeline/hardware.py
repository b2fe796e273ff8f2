"""Opening a run's devices by driver name: the camera, and the focus stage and magnets beside
it (sharing its connection when they are the same driver's). For planning and the devices
process alike."""

from typing import Any, Protocol


class DeviceSection(Protocol):
    """A device's config section (``CameraConfig``, ``FocusStageConfig``, ``MagnetsConfig``)."""

    @property
    def driver(self) -> str: ...
    @property
    def settings(self) -> dict[str, Any]: ...


def open_camera(section: DeviceSection) -> Any:
    """Create and open the camera of ``section`` (its driver, with its settings)."""
    from magacq.config import driver_class

    cam = driver_class("camera", section.driver)(section.settings)
    cam.open()
    return cam


def open_accessory(kind: str, section: DeviceSection, cam: Any, camera_driver: str) -> Any:
    """Create and open the focus stage or magnets (``kind``) of ``section``, handed ``cam``
    when it is the same driver's camera (one CMMCore, one simulated microscope)."""
    from magacq.config import driver_class

    cls: Any = driver_class(kind, section.driver)  # an Accessory class: it takes camera=
    shared = cam if section.driver == camera_driver else None
    device = cls(section.settings, camera=shared)
    device.open()
    return device
