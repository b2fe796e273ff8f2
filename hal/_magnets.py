"""The Magnets interface: the magnet pair above the sample, height (mm) and rotation (turns).

Lowering the magnets (smaller height) raises the force on the beads; rotating them twists the
tethers. A driver may move one axis only; asking for the other raises UnsupportedSettingError.
Limits and velocities are checked here, before anything moves.
"""

import logging
import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Literal, NamedTuple, get_args

from hal._device import Accessory, wait_until_idle
from hal._errors import UnsupportedSettingError

logger = logging.getLogger("hal")

Axis = Literal["height", "rotation"]
AXES: tuple[Axis, ...] = get_args(Axis)
#: Unit of each axis.
UNITS: dict[str, str] = {"height": "mm", "rotation": "turns"}


class MagnetPosition(NamedTuple):
    """Where the magnets are; NaN for an axis the device does not have."""

    height_mm: float
    rotation_turns: float


class Magnets(Accessory):
    """Magnets on a height axis (mm above the sample) and a rotation axis (turns).

    ``move_to`` / ``move_by`` start a move and return; ``is_busy`` and ``wait`` follow it;
    ``position`` reads where the axis is now (cheap enough to sample at 100 Hz or more);
    ``stop`` halts both axes.

    Parameters
    ----------
    settings : mapping, optional
        Driver settings, validated against :attr:`Settings`.
    camera : Camera, optional
        The camera of the same driver, when the magnets share its connection.
    """

    def _check_axis(self, axis: str) -> Axis:
        if axis not in AXES:
            raise UnsupportedSettingError(
                f"no magnet axis {axis!r}; the axes are {', '.join(AXES)}"
            )
        if axis not in self.axes:
            raise UnsupportedSettingError(
                f"{type(self).__name__} has no {axis} axis (it moves {', '.join(self.axes)})"
            )
        return axis

    def limits(self, axis: str) -> tuple[float, float]:
        """``(lowest, highest)`` reachable position of ``axis``, in its unit."""
        return self._do_limits(self._check_axis(axis))

    def max_velocity(self, axis: str) -> float:
        """Fastest velocity of ``axis`` (unit/s) a move may ask for; inf where unknown.

        Raises UnsupportedSettingError where the axis takes no velocity (it moves at its own
        speed; a move that asks for one is refused)."""
        return self._do_max_velocity(self._check_axis(axis))

    def move_to(self, axis: str, target: float, *, velocity: float | None = None) -> None:
        """Start a move of ``axis`` to ``target``; returns at once.

        Parameters
        ----------
        axis : {"height", "rotation"}
        target : float
            mm (height) or turns (rotation).
        velocity : float, optional
            unit/s; default: the device's own.

        Raises
        ------
        UnsupportedSettingError
            No such axis, a target outside the limits, or a velocity <= 0 or above the
            maximum; nothing has moved.
        """
        self._require_open()
        ax = self._check_axis(axis)
        unit = UNITS[ax]
        lo, hi = self._do_limits(ax)
        if not (math.isfinite(target) and lo <= target <= hi):
            raise UnsupportedSettingError(
                f"magnet {ax} {target:g} {unit} is outside the limits [{lo:g}, {hi:g}] {unit}"
            )
        if velocity is not None:
            vmax = self._do_max_velocity(ax)
            if not 0 < velocity <= vmax:
                raise UnsupportedSettingError(
                    f"magnet {ax} velocity {velocity:g} {unit}/s must be > 0 and <= {vmax:g}"
                )
        logger.debug("magnet %s move to %g %s", ax, target, unit)
        self._do_move_to(ax, float(target), None if velocity is None else float(velocity))

    def move_by(self, axis: str, delta: float, *, velocity: float | None = None) -> None:
        """Start a move of ``axis`` by ``delta`` from where it is now (see :meth:`move_to`)."""
        self.move_to(axis, self.position(axis) + delta, velocity=velocity)

    def position(self, axis: str) -> float:
        """Where ``axis`` is now, in its unit."""
        self._require_open()
        return self._do_position(self._check_axis(axis))

    def positions(self) -> MagnetPosition:
        """Both axes now; NaN for an axis the device does not have."""
        self._require_open()
        values = {ax: self._do_position(ax) if ax in self.axes else math.nan for ax in AXES}
        return MagnetPosition(values["height"], values["rotation"])

    def is_busy(self, axis: str | None = None) -> bool:
        """True while ``axis`` (default: any axis) is moving."""
        self._require_open()
        axes = self.axes if axis is None else (self._check_axis(axis),)
        return any(self._do_is_busy(ax) for ax in axes)

    def wait(
        self,
        timeout: float = 30.0,
        axis: str | None = None,
        tick: Callable[[], object] | None = None,
    ) -> None:
        """Block until ``axis`` (default: every axis) has stopped, or raise HalTimeoutError;
        ``tick`` is called meanwhile (e.g. a heartbeat)."""
        wait_until_idle(lambda: self.is_busy(axis), timeout, "magnets", tick)

    def stop(self) -> None:
        """Halt every axis where it is (a motor may decelerate first: follow with ``wait``)."""
        self._require_open()
        logger.debug("magnets stop")
        self._do_stop()

    # --- driver hooks (and Device's _do_open, _do_close) ---------------------------------
    @property
    @abstractmethod
    def axes(self) -> tuple[Axis, ...]:
        """The axes this device moves: ``("height", "rotation")`` or one of them."""

    @abstractmethod
    def _do_limits(self, axis: Axis) -> tuple[float, float]: ...

    def _do_max_velocity(self, axis: Axis) -> float:
        return math.inf

    @abstractmethod
    def _do_move_to(self, axis: Axis, target: float, velocity: float | None) -> None: ...

    @abstractmethod
    def _do_position(self, axis: Axis) -> float: ...

    @abstractmethod
    def _do_is_busy(self, axis: Axis) -> bool: ...

    @abstractmethod
    def _do_stop(self) -> None: ...
