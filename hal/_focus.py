"""The FocusStage interface: an objective or sample z stage, positions in nm."""

import logging
import math
from abc import abstractmethod
from collections.abc import Callable, Sequence

from hal._device import Accessory, wait_until_idle
from hal._errors import UnsupportedSettingError

logger = logging.getLogger("hal")


class FocusStage(Accessory):
    """A focus (z) stage. ``move_to`` starts a move; ``wait`` blocks until it has settled.

    A stage that runs hardware sequences (``supports_sequence``) takes a list of positions
    (``load_sequence``); ``start_sequence`` moves it to the first, and each trigger from the
    camera (one per frame) steps it to the next, cycling, until ``stop_sequence``. Started
    before the camera, frame ``k`` (its ``frame_number``) of that acquisition is taken at
    position ``k`` modulo the sequence's length: frames lost on the way stepped it too.

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
        if not (math.isfinite(z_nm) and lo <= z_nm <= hi):
            raise UnsupportedSettingError(
                f"z = {z_nm:g} nm is outside the stage limits [{lo:g}, {hi:g}] nm"
            )
        logger.debug("focus move to %.1f nm", z_nm)
        self._do_move_to(float(z_nm))

    def wait(self, timeout: float = 10.0, tick: Callable[[], object] | None = None) -> None:
        """Block until the stage has settled, or raise HalTimeoutError; ``tick`` is called
        meanwhile (e.g. a heartbeat)."""
        wait_until_idle(self.is_busy, timeout, "focus stage", tick)

    @property
    def supports_sequence(self) -> bool:
        """True where the stage runs hardware sequences."""
        return self.sequence_max_length > 0

    @property
    def sequence_max_length(self) -> int:
        """Most positions a sequence may hold; 0 for a stage that runs none."""
        return 0

    def load_sequence(self, z_nm: Sequence[float]) -> None:
        """Load the positions of a hardware sequence (nm, frame by frame).

        Raises
        ------
        UnsupportedSettingError
            The stage runs no sequences, too many or no positions, or one outside the limits;
            nothing is loaded.
        """
        self._require_open()
        most = self.sequence_max_length
        if most == 0:
            raise UnsupportedSettingError(f"{type(self).__name__} runs no hardware sequences")
        z = [float(v) for v in z_nm]
        if not 1 <= len(z) <= most:
            raise UnsupportedSettingError(
                f"a sequence holds 1 to {most} positions on this stage, got {len(z)}"
            )
        lo, hi = self.limits_nm
        bad = [v for v in z if not (math.isfinite(v) and lo <= v <= hi)]
        if bad:
            raise UnsupportedSettingError(
                f"sequence position {bad[0]:g} nm is outside the stage limits [{lo:g}, {hi:g}] nm"
            )
        logger.debug("focus sequence of %d positions loaded", len(z))
        self._do_load_sequence(z)

    def start_sequence(self) -> None:
        """Go to the loaded sequence's first position and follow the camera's triggers."""
        self._require_open()
        if not self.supports_sequence:
            raise UnsupportedSettingError(f"{type(self).__name__} runs no hardware sequences")
        self._do_start_sequence()

    def stop_sequence(self) -> None:
        """Stop following triggers; the stage stays where it is. Safe without a sequence."""
        self._require_open()
        if self.supports_sequence:
            self._do_stop_sequence()

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

    # A driver whose sequence_max_length can be > 0 fills these in.
    def _do_load_sequence(self, z_nm: list[float]) -> None:
        raise NotImplementedError

    def _do_start_sequence(self) -> None:
        raise NotImplementedError

    def _do_stop_sequence(self) -> None:
        raise NotImplementedError
