"""Device: what every driver object shares (settings, availability, open/close).

Public methods do the bookkeeping once and call the ``_do_*`` hooks a driver fills in, as
python-microscope's devices do. :class:`~hal.Camera` builds on it; :class:`~hal.FocusStage`
and :class:`~hal.Magnets` build on :class:`Accessory`, a device that may share a camera's
connection.
"""

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from hal._errors import DeviceError, HalTimeoutError
from hal._settings import DeviceSettings, validate_settings

if TYPE_CHECKING:
    from hal._camera import Camera

logger = logging.getLogger("hal")


class Device(ABC):
    """A driver object: validated settings, then open, use, close (also as a context manager).

    Parameters
    ----------
    settings : mapping, optional
        Driver settings, validated against :attr:`Settings`.
    """

    #: The driver's settings model; subclasses replace it.
    Settings: ClassVar[type[DeviceSettings]] = DeviceSettings

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = validate_settings(self.Settings, settings, device=type(self).__name__)
        self._is_open = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this driver cannot run here (e.g. "pymmcore not installed"), or None."""
        return None

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> None:
        """Connect to the device and apply the settings."""
        if self._is_open:
            return
        logger.debug("opening %s", type(self).__name__)
        self._do_open()
        self._is_open = True

    def close(self) -> None:
        """Release the device; safe to call twice."""
        if not self._is_open:
            return
        try:
            self._do_close()
        finally:
            self._is_open = False
            logger.debug("closed %s", type(self).__name__)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if not self._is_open:
            raise DeviceError(f"{type(self).__name__} is not open; call open() first")

    @abstractmethod
    def _do_open(self) -> None: ...

    @abstractmethod
    def _do_close(self) -> None: ...


class Accessory(Device):
    """A device beside the camera, which may share the camera's connection.

    Parameters
    ----------
    settings : mapping, optional
        Driver settings, validated against :attr:`Settings`.
    camera : Camera, optional
        The camera of the same driver in this process, when the device shares its connection
        (one CMMCore; one simulated microscope whose focal plane or magnets it moves).
    """

    def __init__(
        self, settings: Mapping[str, Any] | None = None, *, camera: "Camera | None" = None
    ) -> None:
        super().__init__(settings)
        self.camera = camera


def wait_until_idle(
    is_busy: Callable[[], bool],
    timeout: float,
    what: str,
    tick: Callable[[], object] | None = None,
) -> None:
    """Poll ``is_busy`` every 2 ms until it is False, or raise HalTimeoutError after ``timeout``;
    ``tick`` (e.g. a process's heartbeat) is called at every poll meanwhile."""
    deadline = time.monotonic() + timeout
    while is_busy():
        if tick is not None:
            tick()
        if time.monotonic() > deadline:
            raise HalTimeoutError(f"{what} still moving after {timeout:g} s")
        time.sleep(0.002)
