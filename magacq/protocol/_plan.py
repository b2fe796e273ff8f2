"""Expand a protocol into a flat, checked plan of actions before anything moves.

Recipes become steps, repeats are unrolled, relative moves become absolute ones, forces become
magnet heights (force table), ramps become waypoints, and every target is checked against the
devices' limits. What comes out is what the protocol process executes, and what `magacq
validate` and `run --dry-run` print.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from magacq.errors import ConfigError

from ._force_table import ForceCurve, load_force_table
from ._script import check_script
from ._steps import (
    FocusStep,
    ForceCalibrationRecipe,
    ForceClamp,
    ForceExtension,
    ForceRamp,
    HoldStep,
    MagnetsStep,
    MarkStep,
    RampStep,
    RepeatStep,
    RotationCurve,
    ScriptProtocol,
    StepsProtocol,
)

#: The axes a plan moves: magnet height (mm), magnet rotation (turns), focus (nm).
AXES = ("height", "rotation", "focus")
UNITS = {"height": "mm", "rotation": "turns", "focus": "nm", "force": "pN"}
#: A force ramp is followed in height segments of at most this long (a focus ramp in steps).
RAMP_SEGMENT_S = 0.1
_MAX_SEGMENTS = 2000


@dataclass(frozen=True)
class Action:
    """One thing the protocol process does.

    Attributes
    ----------
    kind : {"move", "ramp", "hold", "mark"}
    step : int
        Index of the top-level step (or recipe item) it comes from.
    label : str
    targets : tuple of (axis, value)
        ``move``: where each axis goes (absolute, device units), all at once.
    path : tuple of (t_s, value)
        ``ramp``: waypoints of ``axis`` from the ramp's start, piecewise linear.
    axis : str or None
        ``ramp``: the axis it moves.
    velocity : float or None
        ``move``: the speed asked for (None: the device's).
    seconds : float
        Expected duration (a move: distance over speed, acceleration not counted).
    force_pn : float
        The nominal force at its end, where a force table says it (NaN otherwise).
    at : tuple of (axis, value)
        Where every axis is planned to be at its end (known axes only).
    """

    kind: str
    step: int
    label: str
    targets: tuple[tuple[str, float], ...] = ()
    path: tuple[tuple[float, float], ...] = ()
    axis: str | None = None
    velocity: float | None = None
    seconds: float = 0.0
    force_pn: float = math.nan
    at: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        """One line for `magacq validate`."""
        if self.kind == "move":
            where = ", ".join(f"{a} {v:.4g} {UNITS[a]}" for a, v in self.targets)
            return f"move {where}"
        if self.kind == "ramp":
            (_, a), (t, b) = self.path[0], self.path[-1]
            unit = UNITS[self.axis or ""]
            return f"ramp {self.axis} {a:g} -> {b:g} {unit} in {t:g} s"
        if self.kind == "hold":
            return f"hold {self.seconds:g} s"
        return f"mark {self.label!r}"


@dataclass(frozen=True)
class Plan:
    """The expanded protocol."""

    actions: tuple[Action, ...]
    end_height_mm: float | None = None
    script: ScriptProtocol | None = None  # a Python protocol: nothing to expand
    forces: ForceCurve | None = None  # the force table (a script's forces in pN)

    @property
    def seconds(self) -> float:
        """Expected total duration."""
        return float(sum(a.seconds for a in self.actions))


@dataclass
class Devices:
    """What the plan is checked against: each axis's limits, start position and top speed.

    An axis absent from ``limits`` does not exist in this run (no magnets, no focus stage).
    ``no_velocity`` holds the magnet axes that move only at their own speed, each with why
    (the device's one line): a move asking them a velocity is refused, a ramp is stepped.
    """

    limits: dict[str, tuple[float, float]]
    start: dict[str, float] = field(default_factory=dict)
    max_velocity: dict[str, float] = field(default_factory=dict)
    no_velocity: dict[str, str] = field(default_factory=dict)


def recipe_steps(protocol: object) -> list[object]:
    """The steps a recipe stands for (a steps protocol: its own steps)."""
    if isinstance(protocol, StepsProtocol):
        return list(protocol.steps)
    if isinstance(protocol, ForceExtension):
        values = protocol.forces_pn or protocol.heights_mm or []
        key = "force_pn" if protocol.forces_pn else "height_mm"
        series = list(values) + (list(values)[-2::-1] if protocol.back_down else [])
        steps: list[object] = []
        for v in series:
            unit = "pN" if key == "force_pn" else "mm"
            steps.append(MagnetsStep(step="magnets", label=f"{v:g} {unit}", **{key: v}))
            steps.append(HoldStep(step="hold", seconds=protocol.hold_s, label=f"{v:g} {unit}"))
        return steps
    if isinstance(protocol, RotationCurve):
        at = (
            {"force_pn": protocol.force_pn}
            if protocol.force_pn
            else {"height_mm": protocol.height_mm}
        )
        n = int(round(protocol.max_turns / protocol.step_turns))
        up = [k * protocol.step_turns for k in range(-n, n + 1)]
        turns = up + (up[-2::-1] if protocol.sweep_back else []) + [0.0]
        steps = [MagnetsStep(step="magnets", label="rotation curve", **at)]
        for t in turns:
            steps.append(MagnetsStep(step="magnets", rotation_turns=t, velocity=protocol.velocity,
                                     label=f"{t:g} turns"))  # fmt: skip
            steps.append(HoldStep(step="hold", seconds=protocol.hold_s, label=f"{t:g} turns"))
        return steps
    if isinstance(protocol, ForceRamp):
        a, b, rate = protocol.start_pn, protocol.stop_pn, protocol.loading_rate_pn_s
        steps = [
            MagnetsStep(step="magnets", force_pn=a, label=f"{a:g} pN"),
            RampStep(step="ramp", axis="force", start=a, stop=b, rate=rate, label="ramp"),
        ]
        if protocol.hold_s:
            steps.append(HoldStep(step="hold", seconds=protocol.hold_s, label=f"{b:g} pN"))
        if protocol.back:
            steps.append(RampStep(step="ramp", axis="force", start=b, stop=a, rate=rate,
                                  label="ramp back"))  # fmt: skip
        return steps
    if isinstance(protocol, ForceClamp):
        f = protocol.force_pn
        return [
            MagnetsStep(step="magnets", force_pn=f, label=f"{f:g} pN"),
            HoldStep(step="hold", seconds=protocol.duration_s, label=f"clamp {f:g} pN"),
        ]
    if isinstance(protocol, ForceCalibrationRecipe):
        steps = []
        for h in protocol.heights_mm:
            steps.append(MagnetsStep(step="magnets", height_mm=h, label=f"{h:g} mm"))
            steps.append(HoldStep(step="hold", seconds=protocol.hold_s, label=f"{h:g} mm"))
        return steps
    raise TypeError(f"not a protocol: {protocol!r}")


class _Expander:
    def __init__(self, devices: Devices, forces: ForceCurve | None) -> None:
        self.devices = devices
        self.forces = forces
        self.where = {a: devices.start.get(a, math.nan) for a in AXES}

    def _check(self, where: str, axis: str, value: float) -> float:
        if axis not in self.devices.limits:
            what = "focus stage" if axis == "focus" else f"magnet {axis} axis"
            raise ConfigError(f"{where}: this run has no {what}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {axis} target unknown (relative to an unknown position)")
        lo, hi = self.devices.limits[axis]
        if not lo <= value <= hi:
            raise ConfigError(
                f"{where}: {axis} {value:g} {UNITS[axis]} is outside the limits "
                f"{lo:g}..{hi:g} {UNITS[axis]}"
            )
        return value

    def _height_of(self, where: str, force_pn: float) -> float:
        if self.forces is None:
            raise ConfigError(f"{where}: a force in pN needs protocol.force_table")
        try:
            return self.forces.height(force_pn)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def _force_at(self, height: float) -> float:
        if self.forces is None or not math.isfinite(height):
            return math.nan
        lo, hi = self.forces.heights_mm[0], self.forces.heights_mm[-1]
        return self.forces.force(height) if lo <= height <= hi else math.nan

    def _seconds(self, axis: str, distance: float, velocity: float | None) -> float:
        v = velocity or self.devices.max_velocity.get(axis)
        return abs(distance) / v if v and math.isfinite(distance) else 0.0

    def steps(self, steps: Sequence[object], where: str, top: int | None) -> Iterator[Action]:
        for i, step in enumerate(steps):
            here = f"{where}.{i}"
            for action in self.step(step, here, i if top is None else top):
                at = tuple((a, v) for a, v in self.where.items() if math.isfinite(v))
                yield replace(action, at=at)

    def step(self, s: object, where: str, top: int) -> Iterator[Action]:
        label = getattr(s, "label", None) or ""
        if isinstance(s, MagnetsStep):
            targets: list[tuple[str, float]] = []
            if s.force_pn is not None:
                targets.append(("height", self._height_of(where, s.force_pn)))
            elif s.height_mm is not None:
                base = self.where["height"] if s.relative else 0.0
                targets.append(("height", base + s.height_mm))
            if s.rotation_turns is not None:
                base = self.where["rotation"] if s.relative else 0.0
                targets.append(("rotation", base + s.rotation_turns))
            yield self._move(where, top, label, targets, s.velocity)
        elif isinstance(s, FocusStep):
            base = self.where["focus"] if s.relative else 0.0
            yield self._move(where, top, label, [("focus", base + s.z_nm)], None)
        elif isinstance(s, RampStep):
            yield from self._ramp(s, where, top, label)
        elif isinstance(s, HoldStep):
            force = self._force_at(self.where["height"])
            yield Action("hold", top, label or "hold", seconds=s.seconds, force_pn=force)
        elif isinstance(s, MarkStep):
            yield Action("mark", top, s.label)
        elif isinstance(s, RepeatStep):
            for k in range(s.times):
                for a in self.steps(s.steps, f"{where}.steps", top):
                    yield replace(a, label=a.label or f"{label or 'repeat'} {k + 1}")

    def _move(self, where: str, top: int, label: str, targets: list[tuple[str, float]],
              velocity: float | None) -> Action:  # fmt: skip
        seconds = 0.0
        for axis, value in targets:
            self._check(where, axis, value)
            if velocity is not None and axis in self.devices.no_velocity:
                why = self.devices.no_velocity[axis]
                raise ConfigError(
                    f"{where}: velocity {velocity:g} {UNITS[axis]}/s asked, but {why}"
                )
            seconds = max(seconds, self._seconds(axis, value - self.where[axis], velocity))
            self.where[axis] = value
        force = self._force_at(self.where["height"])
        text = label or ", ".join(f"{a} {v:g}" for a, v in targets)
        return Action("move", top, text, targets=tuple(targets), velocity=velocity,
                      seconds=seconds, force_pn=force)  # fmt: skip

    def _ramp(self, s: RampStep, where: str, top: int, label: str) -> Iterator[Action]:
        axis = "height" if s.axis == "force" else s.axis
        if s.axis == "force":
            start = s.start if s.start is not None else self._force_at(self.where["height"])
            if not math.isfinite(start):
                raise ConfigError(f"{where}: a force ramp needs a start force or a known height")
            duration = abs(s.stop - start) / s.rate
            n = _segments(duration)
            t = np.linspace(0.0, duration, n + 1)
            values = [self._height_of(where, f) for f in np.linspace(start, s.stop, n + 1)]
        else:
            start = s.start if s.start is not None else self.where[axis]
            duration = abs(s.stop - start) / s.rate
            # a stage that takes no speed is stepped along the ramp, RAMP_SEGMENT_S apart
            stepped = axis == "focus" or axis in self.devices.no_velocity
            n = _segments(duration) if stepped else 1
            t = np.linspace(0.0, duration, n + 1)
            values = np.linspace(start, s.stop, n + 1).tolist()
        for v in values:
            self._check(where, axis, v)
        top_speed = self.devices.max_velocity.get(axis)
        speed = float(np.max(np.abs(np.diff(values)) / np.diff(t))) if duration > 0 else 0.0
        if top_speed and speed > top_speed * (1 + 1e-9):
            raise ConfigError(
                f"{where}: the ramp needs {speed:.3g} {UNITS[axis]}/s, more than the "
                f"{axis} axis's top speed {top_speed:g} {UNITS[axis]}/s"
            )
        if s.start is not None and axis in self.devices.limits:  # go to the start first
            yield self._move(where, top, f"{label or 'ramp'} start", [(axis, values[0])], None)
        self.where[axis] = values[-1]
        yield Action("ramp", top, label or f"ramp {s.axis}", axis=axis,
                     path=tuple(zip(t.tolist(), values, strict=True)), seconds=float(duration),
                     force_pn=self._force_at(self.where["height"]))  # fmt: skip


def _segments(duration: float) -> int:
    """Segments of at most RAMP_SEGMENT_S (and at most _MAX_SEGMENTS) a ramp is followed in."""
    return int(min(_MAX_SEGMENTS, max(1, math.ceil(duration / RAMP_SEGMENT_S))))


def expand(protocol: object, devices: Devices, *, base: Path | None = None) -> Plan:
    """The plan of ``protocol`` (a ``RunConfig.protocol``) on ``devices``.

    Raises
    ------
    ConfigError
        A target outside the limits or the force table, a force without a table, a step on an
        axis this run does not have, a script that does not exist.
    """
    forces = None
    if getattr(protocol, "force_table", None) is not None:
        forces = load_force_table(protocol.force_table, base)  # type: ignore[attr-defined]
    end = getattr(protocol, "end_height_mm", None)
    if end is not None:
        _Expander(devices, forces)._check("protocol.end_height_mm", "height", end)
    if isinstance(protocol, ScriptProtocol):
        check_script(protocol, base)  # exists, parses, defines the function (not run)
        return Plan((), end, protocol, forces)
    ex = _Expander(devices, forces)
    actions = tuple(ex.steps(recipe_steps(protocol), "protocol.steps", None))
    return Plan(actions, end, None, forces)
