"""The FocusStage interface: an objective or sample z stage, positions in nm."""

import logging
from abc import abstractmethod

from hal._device import Accessory, wait_until_idle
from hal._errors import UnsupportedSettingError

logger = logging.getLogger("hal")


class FocusStage(Accessory):
    """A focus (z) stage. ``move_to`` starts a move; ``wait`` blocks until it has settled.

    Parameters
    ----------
    settings : mapping, optional
        Driver settings, validated against :attr:`Settings`.
    camera : Camera, optional
        The camera of the same driver, when the stage shares its connection (see
        :class:`~hal._device.Accessory`).
    """

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
        wait_until_idle(self.is_busy, timeout, "focus stage")

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
