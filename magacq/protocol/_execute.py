"""Execute a plan (or a user's script) on the devices, one action at a time, with events.

The executor knows the devices only through a :class:`DeviceLink` (start a move, is it busy,
where is it, stop) and reports through an :class:`EventLog`; the run's protocol process gives it
both (commands to the devices process, rows into the ``events`` buffer). Every action is checked
against the limits again as it is built, so a script cannot move beyond them either.
"""

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from magacq.errors import MagacqError

from ._force_table import ForceCurve
from ._plan import Action, Devices, Plan, _Expander
from ._steps import FocusStep, HoldStep, MagnetsStep, MarkStep, RampStep

logger = logging.getLogger("magacq.protocol")

_POLL_S = 0.01
_MOVE_MARGIN_S = 10.0  # a move may take this much longer than expected before it times out


class ProtocolError(MagacqError):
    """A protocol could not go on: a move failed or timed out, a script raised."""


class ProtocolStopped(MagacqError):
    """The run is stopping (Ctrl-C, duration, a failure): the protocol ends early."""


class DeviceLink(Protocol):
    """The devices as the protocol process sees them."""

    def move(self, axis: str, target: float, velocity: float | None) -> None:
        """Start moving ``axis`` to ``target``; raise on a refused move."""

    def busy(self, axis: str) -> bool:
        """Whether ``axis`` is still moving; raise when its move failed."""

    def position(self, axis: str) -> float:
        """Where ``axis`` is now."""

    def stop(self) -> None:
        """Halt every axis."""


class EventLog(Protocol):
    """Where the start and end of every action go (the run file's ``events``)."""

    def event(self, phase: str, index: int, action: Action) -> None:
        """``phase`` "start" or "end" of action number ``index``."""


class Runner:
    """Runs actions on a link, in order, numbering them and logging their events.

    Parameters
    ----------
    link, events
        The devices and the event log.
    devices : Devices
        Limits and speeds, for the actions a script builds.
    forces : ForceCurve, optional
        The force table.
    stopped : callable
        True once the run is stopping.
    """

    def __init__(self, link: DeviceLink, events: EventLog, devices: Devices,
                 forces: ForceCurve | None, stopped: Callable[[], bool]) -> None:  # fmt: skip
        self.link = link
        self.events = events
        self.stopped = stopped
        self.forces = forces
        self._expander = _Expander(devices, forces)
        self.index = 0

    def execute(self, plan: Plan) -> None:
        """Run every action of ``plan``."""
        for action in plan.actions:
            self.run(action)

    @property
    def axes(self) -> list[str]:
        """The axes the devices have (height, rotation, focus)."""
        return list(self._expander.devices.limits)

    def build(self, step: object) -> list[Action]:
        """The actions of one step (checked against the limits, from where the axes are)."""
        for axis in self.axes:
            self._expander.where[axis] = self.link.position(axis)
        return list(self._expander.steps([step], "protocol", self.index))

    def run(self, action: Action, *, wait: bool = True) -> None:
        """Run one action to its end (``wait=False``: a move is started, not waited for)."""
        self._check_stop()
        self.events.event("start", self.index, action)
        try:
            if action.kind == "move":
                for axis, value in action.targets:
                    self.link.move(axis, value, action.velocity)
                if wait:
                    self.wait([a for a, _ in action.targets], action.seconds)
            elif action.kind == "ramp":
                self._ramp(action)
            elif action.kind == "hold":
                self.sleep(action.seconds)
        except ProtocolStopped:  # cut short by the run's stop: it ends there
            self.events.event("end", self.index, action)
            raise
        self.events.event("end", self.index, action)
        self.index += 1

    def park(self, height_mm: float | None, timeout: float = 60.0) -> None:
        """Move the magnets to ``height_mm`` at the end (stopping or not); None: leave them."""
        if height_mm is None:
            return
        self.link.move("height", height_mm, None)
        if not self._settle(["height"], timeout, stoppable=False):
            raise ProtocolError(f"magnets did not reach {height_mm:g} mm in {timeout:g} s")

    def _ramp(self, action: Action) -> None:
        """Each waypoint is sent at its segment's start, at the speed that reaches it at its
        time from where the axis is (a command's latency is made up in the next segment), and
        without waiting for the previous one to arrive (a new target supersedes it): the axis
        moves on through the waypoints as in a real ramp, not in stops and starts."""
        axis = action.axis
        assert axis is not None
        devices = self._expander.devices
        top = devices.max_velocity.get(axis, math.inf)
        t0 = time.monotonic()
        for (t_a, _), (t_b, v_b) in zip(action.path, action.path[1:], strict=False):
            if (ahead := t0 + t_a - time.monotonic()) > 0:
                self.sleep(ahead)
            left = max(t0 + t_b - time.monotonic(), 0.5 * (t_b - t_a))
            distance = abs(v_b - self.link.position(axis))
            if distance > 0:  # a stage that takes no speed goes at its own, waypoint by waypoint
                speed = None if axis in devices.no_velocity else min(top, distance / left)
                self.link.move(axis, v_b, speed)
        self.wait([axis], action.path[-1][0] - (time.monotonic() - t0))

    def wait(self, axes: list[str], expected_s: float) -> None:
        """Until every axis in ``axes`` stopped; ProtocolError past the expected time."""
        if not self._settle(axes, 2 * max(0.0, expected_s) + _MOVE_MARGIN_S):
            self.link.stop()
            raise ProtocolError(f"move of {', '.join(axes)} timed out")

    def _settle(self, axes: list[str], timeout: float, *, stoppable: bool = True) -> bool:
        """Poll until every axis in ``axes`` stopped; False past ``timeout`` s. ``stoppable``:
        ProtocolStopped as soon as the run stops."""
        deadline = time.monotonic() + timeout
        while any(self.link.busy(a) for a in axes):
            if stoppable:
                self._check_stop()
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def sleep(self, seconds: float) -> None:
        """Hold for ``seconds``, ending early (ProtocolStopped) when the run stops."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._check_stop()
            time.sleep(min(left, 0.05))

    def _check_stop(self) -> None:
        if self.stopped():
            raise ProtocolStopped("the run is stopping")


class ProtocolApi:
    """What a Python protocol's function receives: move, wait, hold, mark, read the beads.

    Every move is checked against the devices' limits and recorded in the file's events, like a
    step's. Long loops should test :attr:`stopping` (or call :meth:`hold`, which returns early by
    raising when the run stops).
    """

    def __init__(self, runner: Runner, latest: Callable[[int], tuple[float, ...]]) -> None:
        self._runner = runner
        self._latest = latest
        self.log = logging.getLogger("magacq.protocol.script")

    @property
    def stopping(self) -> bool:
        """True once the run is stopping: return soon."""
        return self._runner.stopped()

    def move_magnets(self, *, height_mm: float | None = None, force_pn: float | None = None,
                     rotation_turns: float | None = None, relative: bool = False,
                     velocity: float | None = None, wait: bool = True) -> None:  # fmt: skip
        """Move the magnets (as a ``magnets`` step); ``wait=False`` returns once started."""
        step = MagnetsStep(
            step="magnets",
            height_mm=height_mm,
            force_pn=force_pn,
            rotation_turns=rotation_turns,
            relative=relative,
            velocity=velocity,
        )
        for action in self._runner.build(step):
            self._runner.run(action, wait=wait)

    def move_focus(self, z_nm: float, *, relative: bool = False, wait: bool = True) -> None:
        """Move the focus stage (as a ``focus`` step)."""
        for action in self._runner.build(FocusStep(step="focus", z_nm=z_nm, relative=relative)):
            self._runner.run(action, wait=wait)

    def ramp(self, axis: str, stop: float, rate: float, start: float | None = None) -> None:
        """A ``ramp`` step: ``axis`` (height, rotation, focus or force) to ``stop`` at ``rate``."""
        step = RampStep(step="ramp", axis=axis, start=start, stop=stop, rate=rate)
        for action in self._runner.build(step):
            self._runner.run(action)

    def wait(self, timeout: float = 60.0) -> None:
        """Until every axis stopped moving."""
        self._runner.wait(self._runner.axes, timeout / 2)

    def hold(self, seconds: float, label: str | None = None) -> None:
        """Hold (a ``hold`` step, a plateau in the events)."""
        for action in self._runner.build(HoldStep(step="hold", seconds=seconds, label=label)):
            self._runner.run(action)

    def mark(self, label: str) -> None:
        """A label in the events, now."""
        for action in self._runner.build(MarkStep(step="mark", label=label)):
            self._runner.run(action)

    def position(self, axis: str) -> float:
        """Where ``axis`` (height mm, rotation turns, focus nm) is now."""
        return self._runner.link.position(axis)

    def bead(self, bead_id: int) -> tuple[float, ...]:
        """The latest tracked ``(time_s, x_nm, y_nm, z_nm)`` of a bead (NaN before any)."""
        return self._latest(bead_id)

    def force_at(self, height_mm: float) -> float:
        """The force table's force at ``height_mm`` (NaN without a table)."""
        forces = self._runner.forces
        return forces.force(height_mm) if forces is not None else math.nan
