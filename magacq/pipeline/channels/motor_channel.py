"""The motors' command channel: other processes move the magnets (and the focus stage) of a
running acquisition.

The devices process owns the stages; anyone else (the protocol engine, ``magacq view``,
``magacq magnets``) sends it commands through MatrixBuffers of the run's namespace and reads
where the stages are from the ``motors`` MatrixBuffer:

- ``motor_commands`` (id, op, axis, value, velocity, t_sent, by): many writers, read by the
  devices process's motion thread; op 0 move_to, 1 move_by, 2 stop; axis 0 height (mm), 1
  rotation (turns), 2 focus (nm); velocity NaN for the device's own; by: who sends it
  (:data:`magacq.pipeline.channels.events.BY`: the devices process makes an event of every move that
  the protocol process does not record itself).
- ``motor_acks`` (id, status, time), overwritten as a ring: how each command ended
  (:class:`Status`).
- ``motor_limits`` (axis, low, high, max_velocity, start), written once when the devices open:
  one row per axis the run has.

They are MatrixBuffers: flock-guarded segments the kernel unlocks when a holder dies, with a
journal that undoes a half-made change, so a process that dies anywhere cannot wedge the
channel; a waiter polls the acks (every 10 ms) and gives up after its timeout.
"""

import itertools
import math
import os
import time
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from buffers import BufferOverflow, BufferUnderflow, MatrixBuffer
from magacq.errors import MagacqError
from magacq.pipeline.channels.channel import MISSING, attach_channel, close_channel
from magacq.pipeline.channels.events import BY

__all__ = [
    "MOTOR_CHANNEL",
    "AxisLimits",
    "Command",
    "CommandInbox",
    "MotorControl",
    "MotorError",
    "Status",
]

COMMANDS, ACKS, LIMITS, MOTORS = "motor_commands", "motor_acks", "motor_limits", "motors"
#: The channel's MatrixBuffers: name -> columns (the acks ring is created with overwrite).
MOTOR_CHANNEL = {COMMANDS: 7, ACKS: 3, LIMITS: 5}
COMMAND_ROWS, ACK_ROWS = 1024, 256
LIMIT_ROWS = 3
#: Axes, in the order of their code in the command rows; the motors columns after time.
AXES = ("height", "rotation", "focus")
MOVE_TO, MOVE_BY, STOP = 0, 1, 2
_POLL_S = 0.01


class Status(IntEnum):
    """How a command ended."""

    DONE = 1  # the move arrived (a stop: the magnets halted)
    REFUSED = 2  # bad command (no such axis, outside the limits): nothing moved
    FAILED = 3  # the motor reported a fault
    TIMED_OUT = 4  # not arrived within magnets.move_timeout_s (focus: focus_stage.move_timeout_s)
    STOPPED = 5  # a stop, or a later move of the same axis, ended it first


class MotorError(MagacqError):
    """A magnet command was refused, failed, or got no answer."""


@dataclass(frozen=True)
class Command:
    """One command as the motion thread receives it."""

    id: int
    op: int
    axis: str | None
    value: float
    velocity: float | None
    by: str = "python"


@dataclass(frozen=True)
class AxisLimits:
    """What the run's device allows on one axis (unit: mm, turns or nm)."""

    low: float
    high: float
    max_velocity: float  # unit/s; inf where the device does not say
    start: float  # where it was when the devices opened


class MotorControl:
    """Move the magnets (and focus stage) of a running acquisition from any process.

    Each move returns a command id at once; :meth:`wait` blocks until it ended, :meth:`busy`
    says whether an axis's last move is still going (the protocol engine's DeviceLink).

    Parameters
    ----------
    namespace : str
        The run's shared-memory namespace (``magacq view`` shows it; a run's log names it).

    Raises
    ------
    MotorError
        No such run, or it has neither magnets nor a focus stage.
    """

    _ids = itertools.count(1)

    def __init__(self, namespace: str, by: str = "python") -> None:
        if by not in BY:
            raise ValueError(f"by must be one of {', '.join(BY)}")
        self.namespace, self.by = namespace, by
        try:
            self._bufs = attach_channel((COMMANDS, ACKS, LIMITS, MOTORS), namespace)
        except MISSING as exc:
            raise MotorError(f"run {namespace!r} has no motors to move ({exc})") from None
        self._seen = max(0, self._bufs[MOTORS].rows_written - 1)
        self._latest = np.full(4, math.nan)
        self._last: dict[str, int] = {}  # axis -> id of its last move

    def limits(self) -> dict[str, AxisLimits]:
        """The run's axes (those it has) and what each allows; empty until the devices opened."""
        rows = self._bufs[LIMITS].peak_unsorted()
        return {
            AXES[int(a)]: AxisLimits(float(lo), float(hi), float(v), float(s))
            for a, lo, hi, v, s in rows
            if np.isfinite(a)
        }

    def _send(self, op: int, axis: str | None, value: float, velocity: float | None) -> int:
        if axis is not None and axis not in AXES:
            raise MotorError(f"no motor axis {axis!r}; the axes are {', '.join(AXES)}")
        cid = (os.getpid() << 20) + next(self._ids)
        row = np.array(
            [[cid, op, math.nan if axis is None else AXES.index(axis), value,
              math.nan if velocity is None else velocity, time.monotonic(), BY.index(self.by)]]
        )  # fmt: skip
        try:
            self._bufs[COMMANDS].write(row)
        except BufferOverflow:
            raise MotorError("the motors' command queue is full: is the run stuck?") from None
        for ax in AXES if axis is None else (axis,):
            self._last[ax] = cid
        return cid

    def move_to(
        self, axis: str, value: float, *, velocity: float | None = None, wait: bool = False,
        timeout: float = 60.0,
    ) -> int:  # fmt: skip
        """Send a move of ``axis`` (height mm, rotation turns, focus nm) to ``value``; its
        command id.
        With ``wait``, block until it ended (:meth:`wait`)."""
        cid = self._send(MOVE_TO, axis, float(value), velocity)
        if wait:
            self.wait(cid, timeout)
        return cid

    def move_by(
        self, axis: str, delta: float, *, velocity: float | None = None, wait: bool = False,
        timeout: float = 60.0,
    ) -> int:  # fmt: skip
        """Send a move of ``axis`` by ``delta`` from where it is when the command runs."""
        cid = self._send(MOVE_BY, axis, float(delta), velocity)
        if wait:
            self.wait(cid, timeout)
        return cid

    def stop(self, *, wait: bool = False, timeout: float = 60.0) -> int:
        """Halt the magnets (their moves in progress end as STOPPED)."""
        cid = self._send(STOP, None, math.nan, None)
        if wait:
            self.wait(cid, timeout)
        return cid

    def status(self, cid: int) -> Status | None:
        """How command ``cid`` ended, or None while it runs (or once it left the acks ring)."""
        rows = self._bufs[ACKS].peak_unsorted()
        hit = rows[rows[:, 0] == cid]
        return Status(int(hit[-1, 1])) if len(hit) else None

    def wait(self, cid: int, timeout: float = 60.0) -> None:
        """Block until command ``cid`` ended.

        Raises
        ------
        MotorError
            It was refused, failed, timed out or was stopped, or no answer came in ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while (status := self.status(cid)) is None:
            if time.monotonic() > deadline:
                raise MotorError(f"motor command {cid} got no answer within {timeout:g} s")
            time.sleep(_POLL_S)
        _raise_unless_done(cid, status)

    def busy(self, axis: str) -> bool:
        """Whether the last move sent for ``axis`` (from here) is still going.

        Raises
        ------
        MotorError
            That move was refused, failed, timed out or was stopped.
        """
        cid = self._last.get(axis)
        if cid is None:
            return False
        status = self.status(cid)
        if status is None:
            return True
        _raise_unless_done(cid, status)
        return False

    def position(self) -> tuple[float, float, float, float]:
        """The latest sample: (time s, height mm, rotation turns, focus z nm); NaN before any."""
        rows, self._seen = self._bufs[MOTORS].peak_since(self._seen)
        if len(rows):
            self._latest = rows[-1]
        return tuple(float(v) for v in self._latest)  # type: ignore[return-value]

    def close(self) -> None:
        close_channel(self._bufs)

    def __enter__(self) -> "MotorControl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_unless_done(cid: int, status: Status) -> None:
    if status is not Status.DONE:
        raise MotorError(f"motor command {cid} {status.name.lower()} (see the run's log)")


class CommandInbox:
    """The devices process's end of the channel: take commands, acknowledge them."""

    def __init__(self, commands: MatrixBuffer, acks: MatrixBuffer, limits: MatrixBuffer) -> None:
        self.commands, self.acks, self.limits = commands, acks, limits

    def publish_limits(self, limits: dict[str, AxisLimits]) -> None:
        """What each axis of the run allows, for :meth:`MotorControl.limits` (once, at start)."""
        rows = [[AXES.index(a), v.low, v.high, v.max_velocity, v.start] for a, v in limits.items()]
        if rows:
            self.limits.write(np.asarray(rows, dtype=np.float64))

    def take(self) -> list[Command]:
        try:
            rows = self.commands.read()
        except BufferUnderflow:
            return []
        out = []
        for cid, op, axis, value, velocity, _, by in np.asarray(rows, dtype=np.float64):
            ax = None if math.isnan(axis) or int(axis) not in (0, 1, 2) else AXES[int(axis)]
            vel = None if math.isnan(velocity) else float(velocity)
            who = BY[int(by)] if 0 <= by < len(BY) else "python"
            out.append(Command(int(cid), int(op), ax, float(value), vel, who))
        return out

    def ack(self, cid: int, status: Status) -> None:
        self.acks.write(np.array([[cid, int(status), time.monotonic()]], dtype=np.float64))
