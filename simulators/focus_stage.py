"""The simulated focus stage: moves the focal plane of a :class:`~simulators.camera.SimCamera`."""

import time
from collections.abc import Callable

from pydantic import Field

from hal import Camera, DeviceError, DeviceSettings, HalTimeoutError
from hal import FocusStage as _FocusStage
from simulators.camera import SimCamera
from simulators.microscope import SimMicroscope

__all__ = ["SimFocusStage", "SimFocusStageSettings"]


class SimFocusStageSettings(DeviceSettings):
    """Settings of the simulated focus stage."""

    settle_time_s: float = Field(0.01, ge=0, description="time a move takes to settle")
    limits_nm: tuple[float, float] | None = Field(
        None, description="default: the camera's focus_limits_nm, else (-10000, 10000)"
    )
    start_nm: float | None = Field(None, description="standalone stage: initial position")
    sequence_max_length: int = Field(
        0,
        ge=0,
        description="most positions of a hardware sequence, stepped at the end of each camera "
        "frame; 0 (default): the stage runs none, as a standalone one never does",
    )


class SimFocusStage(_FocusStage):
    """A focus stage that moves the focal plane of a :class:`SimCamera`'s microscope.

    Without a camera it is a standalone stage that only keeps its position. A move takes
    ``settle_time_s``; frames taken meanwhile see the focal plane part-way. A hardware
    sequence's first position is a move; each later one is reached at once, when the camera's
    frame before it ends (:meth:`SimCamera.connect_trigger`).
    """

    Settings = SimFocusStageSettings

    def __init__(self, settings=None, *, camera: Camera | None = None) -> None:
        if camera is not None and not isinstance(camera, SimCamera):
            raise DeviceError("SimFocusStage drives a SimCamera only")
        super().__init__(settings, camera=camera)
        self.settings: SimFocusStageSettings
        start = self.settings.start_nm
        if camera is not None:
            start = camera.settings.focus_nm
        self._target = 0.0 if start is None else float(start)
        self._settled_at = 0.0
        self._sequence: list[float] = []
        self._index = 0

    def _scope(self) -> SimMicroscope | None:
        if self.camera is None:
            return None
        scope = self.camera.microscope  # type: ignore[attr-defined]
        if scope is None:
            raise DeviceError("SimFocusStage: open the camera first")
        return scope

    def _do_open(self) -> None:
        scope = self._scope()
        if scope is not None:
            self._target = scope.focus_target_nm()

    def _do_close(self) -> None:
        self._disconnect()

    def _disconnect(self) -> None:
        if isinstance(self.camera, SimCamera):
            self.camera.connect_trigger(None)

    def _do_move_to(self, z_nm: float) -> None:
        duration = self.settings.settle_time_s
        scope = self._scope()
        if scope is not None:
            scope.move_focus(z_nm, duration)
        self._target = z_nm
        self._settled_at = time.monotonic() + duration

    @property
    def position_nm(self) -> float:
        scope = self._scope() if self._is_open else None
        return scope.focal_z_nm() if scope is not None else self._target

    @property
    def limits_nm(self) -> tuple[float, float]:
        if self.settings.limits_nm is not None:
            return self.settings.limits_nm
        if self.camera is not None:
            return self.camera.settings.focus_limits_nm  # type: ignore[attr-defined]
        return (-10_000.0, 10_000.0)

    @property
    def sequence_max_length(self) -> int:
        return self.settings.sequence_max_length if self.camera is not None else 0

    def _do_load_sequence(self, z_nm: list[float]) -> None:
        self._sequence = z_nm

    def _do_start_sequence(self) -> None:
        if not self._sequence:
            raise DeviceError("SimFocusStage: load a sequence before starting it")
        assert isinstance(self.camera, SimCamera)  # sequence_max_length is 0 without one
        self._index = 0
        self._do_move_to(self._sequence[0])
        self.camera.connect_trigger(self._step)

    def _do_stop_sequence(self) -> None:
        self._disconnect()

    def _step(self, exposures: int) -> None:
        """The camera's trigger: ``exposures`` positions on, cycling; reached at once."""
        self._index = (self._index + exposures) % len(self._sequence)
        z = self._sequence[self._index]
        scope = self._scope()
        if scope is not None:
            scope.move_focus(z, 0.0)
        self._target = z
        self._settled_at = time.monotonic()

    def is_busy(self) -> bool:
        return time.monotonic() < self._settled_at

    def wait(self, timeout: float = 10.0, tick: Callable[[], object] | None = None) -> None:
        """Block (sleeping, not polling) until the move has settled; ``tick`` is called every
        0.1 s meanwhile."""
        deadline = time.monotonic() + timeout
        while (now := time.monotonic()) < self._settled_at:
            if tick is not None:
                tick()
            if now >= deadline:
                raise HalTimeoutError(f"focus stage still moving after {timeout:g} s")
            step = min(self._settled_at, deadline) - now
            time.sleep(step if tick is None else min(step, 0.1))
