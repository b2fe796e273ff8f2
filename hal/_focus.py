"""The FocusStage interface: an objective or sample z stage, positions in nm."""

import logging
import time
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from hal._camera import Camera
from hal._device import Device
from hal._errors import HalTimeoutError, UnsupportedSettingError

logger = logging.getLogger("hal")


class FocusStage(Device):
    """A focus (z) stage. ``move_to`` starts a move; ``wait`` blocks until it has settled.

    Parameters
    ----------
    settings : mapping, optional
        Driver settings, validated against :attr:`Settings`.
    camera : Camera, optional
        The camera of the same driver in this process, when the stage shares its connection
        (one CMMCore; one simulated microscope whose focal plane the stage moves).
    """

    def __init__(
        self, settings: Mapping[str, Any] | None = None, *, camera: "Camera | None" = None
    ) -> None:
        super().__init__(settings)
        self.camera = camera

    def move_to(self, z_nm: float) -> None:
        """Start a move to absolute ``z_nm``; raises UnsupportedSettingError outside the limits."""
        self._require_open()
        lo, hi = self.limits_nm
        if not lo <= z_nm <= hi:
            raise UnsupportedSettingError(
                f"z = {z_nm:g} nm is outside the stage limits [{lo:g}, {hi:g}] nm"
            )
        logger.debug("focus move to %.1f nm", z_nm)
        self._do_move_to(float(z_nm))

    def wait(self, timeout: float = 10.0) -> None:
        """Block until the stage has settled, or raise HalTimeoutError."""
        deadline = time.monotonic() + timeout
        while self.is_busy():
            if time.monotonic() > deadline:
                raise HalTimeoutError(f"focus stage still moving after {timeout:g} s")
            time.sleep(0.002)

    @property
    @abstractmethod
    def position_nm(self) -> float:
        """Current z in nm."""

    @property
    @abstractmethod
    def limits_nm(self) -> tuple[float, float]:
        """``(lowest, highest)`` reachable z in nm."""

    @abstractmethod
    def is_busy(self) -> bool:
        """True while the stage is moving or settling."""

    @abstractmethod
    def _do_move_to(self, z_nm: float) -> None: ...
