"""The simulated magnets: a height and a rotation motor above a :class:`SimCamera`'s sample.

Moves follow a trapezoidal velocity profile (:mod:`simulators.trajectory`) in real (monotonic)
time; every frame the camera takes sees the magnets where they are at its timestamp: the force
on each bead from the height (:mod:`simulators.magnetics`), the twist from the rotation
(:mod:`simulators.twist`). Without a camera the magnets only keep their positions.
"""

import time
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hal import Camera, DeviceError, DeviceSettings
from hal import Magnets as _Magnets
from hal._magnets import Axis
from simulators.camera import SimCamera
from simulators.magnetics import FORCE_LAWS, BeadType, ForceLaw, MagnetRig, moment_factors
from simulators.trajectory import Trajectory

__all__ = ["SimMagnets", "SimMagnetsSettings"]


class SimMagnetsSettings(DeviceSettings):
    """Settings of the simulated magnets."""

    axes: list[Literal["height", "rotation"]] = Field(
        ["height", "rotation"], min_length=1, description="the motors fitted"
    )
    bead_type: BeadType = Field("M270", description="selects the force law (set bead_radius_nm)")
    force_law: tuple[float, float, float, float] | None = Field(
        None, description="(f1 pN, z1 mm, f2 pN, z2 mm) instead of the bead type's law"
    )
    moment_spread: float = Field(0.05, ge=0, le=0.5, description="relative sd of bead moments")
    seed: int | None = Field(0, description="seed of the moment spread")
    height_mm: float = Field(6.0, description="start height")
    rotation_turns: float = Field(0.0, description="start rotation")
    height_limits_mm: tuple[float, float] = (0.3, 20.0)
    rotation_limits_turns: tuple[float, float] = (-500.0, 500.0)
    height_velocity_mm_s: float = Field(5.0, gt=0, description="velocity of a move")
    height_max_velocity_mm_s: float = Field(20.0, gt=0)
    height_acceleration_mm_s2: float = Field(50.0, gt=0)
    rotation_velocity_turns_s: float = Field(10.0, gt=0)
    rotation_max_velocity_turns_s: float = Field(50.0, gt=0)
    rotation_acceleration_turns_s2: float = Field(100.0, gt=0)
    fail_after_moves: int | None = Field(
        None, ge=0, description="fault injection: moves after this many raise DeviceError"
    )

    @model_validator(mode="after")
    def _check(self) -> "SimMagnetsSettings":
        for axis, start in (("height", self.height_mm), ("rotation", self.rotation_turns)):
            lo, hi = getattr(self, f"{axis}_limits_{'mm' if axis == 'height' else 'turns'}")
            if not lo < hi:
                raise ValueError(f"{axis} limits must be (low, high) with low < high")
            if not lo <= start <= hi:
                raise ValueError(f"start {axis} {start:g} is outside its limits [{lo:g}, {hi:g}]")
        if self.height_limits_mm[0] <= 0:
            raise ValueError("height_limits_mm must be above 0 (the magnets cannot touch)")
        return self


class SimMagnets(_Magnets):
    """Simulated magnet motors; with ``camera=`` (an open SimCamera) they set its beads' force
    and twist."""

    Settings = SimMagnetsSettings
    settings: SimMagnetsSettings

    def __init__(self, settings=None, *, camera: Camera | None = None) -> None:
        if camera is not None and not isinstance(camera, SimCamera):
            raise DeviceError("SimMagnets drives a SimCamera only")
        super().__init__(settings, camera=camera)
        self.rig: MagnetRig | None = None
        self._moves = 0

    @property
    def axes(self) -> tuple[Axis, ...]:
        return tuple(a for a in ("height", "rotation") if a in self.settings.axes)

    @property
    def force_law(self) -> ForceLaw:
        law = self.settings.force_law
        return ForceLaw(*law) if law is not None else FORCE_LAWS[self.settings.bead_type]

    def _do_open(self) -> None:
        s = self.settings
        scope = None
        if self.camera is not None:
            scope = self.camera.microscope  # type: ignore[attr-defined]
            if scope is None:
                raise DeviceError("SimMagnets: open the camera first")
        n = scope.n_beads if scope is not None else 0
        factors = moment_factors(n, s.moment_spread, np.random.default_rng(s.seed))
        self.rig = MagnetRig(self.force_law, factors, s.height_mm, s.rotation_turns)
        if scope is not None:  # the beads start in equilibrium at the magnets' force
            scope.magnets = self.rig
            _, rotation, force = self.rig.at(time.monotonic())
            scope.beads.set_tension(force, rotation)
            scope.beads.equilibrate()

    def _do_close(self) -> None:
        scope = getattr(self.camera, "microscope", None)
        if scope is not None and scope.magnets is self.rig:
            scope.magnets = None
        self.rig = None

    def _unit(self, axis: Axis) -> str:
        return "mm" if axis == "height" else "turns"

    def _do_limits(self, axis: Axis) -> tuple[float, float]:
        return getattr(self.settings, f"{axis}_limits_{self._unit(axis)}")

    def _do_max_velocity(self, axis: Axis) -> float:
        return getattr(self.settings, f"{axis}_max_velocity_{self._unit(axis)}_s")

    def _acceleration(self, axis: Axis) -> float:
        return getattr(self.settings, f"{axis}_acceleration_{self._unit(axis)}_s2")

    def _do_move_to(self, axis: Axis, target: float, velocity: float | None) -> None:
        limit = self.settings.fail_after_moves
        if limit is not None and self._moves >= limit:
            raise DeviceError(f"SimMagnets: injected motor fault on {axis} move {self._moves + 1}")
        self._moves += 1
        rig = self.rig
        assert rig is not None
        if velocity is None:
            velocity = getattr(self.settings, f"{axis}_velocity_{self._unit(axis)}_s")
        now = time.monotonic()
        current = getattr(rig, axis)  # a new target during a move: it blends from its speed
        move = Trajectory.move(current.position(now), target, now, velocity,
                               self._acceleration(axis), v0=current.velocity(now))  # fmt: skip
        setattr(rig, axis, move)

    def _do_position(self, axis: Axis) -> float:
        assert self.rig is not None
        return getattr(self.rig, axis).position(time.monotonic())

    def _do_is_busy(self, axis: Axis) -> bool:
        assert self.rig is not None
        return getattr(self.rig, axis).moving(time.monotonic())

    def _do_stop(self) -> None:
        rig = self.rig
        assert rig is not None
        now = time.monotonic()
        for axis in self.axes:
            setattr(rig, axis, getattr(rig, axis).stopped(now, self._acceleration(axis)))
