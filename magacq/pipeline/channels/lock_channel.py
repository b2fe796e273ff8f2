"""The locks' channel: other programs (``magacq view``) see the run's locks and switch them.

Two MatrixBuffers of the run's namespace, made when the run has a lock:

- ``lock_state`` (:data:`STATE_COLUMNS`), overwritten as a ring: the lock thread appends a row
  at each of its updates; the newest row is the locks' state now.
- ``lock_commands`` (lock, on, t_sent): many writers, read by the lock thread (lock 0 Z-lock,
  1 XY-lock; on 1 or 0).

They are flock-guarded MatrixBuffers like the motors' channel
(:mod:`magacq.pipeline.channels.motor_channel`): a process dying anywhere cannot wedge them.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from buffers import BufferOverflow, BufferUnderflow
from magacq.errors import MagacqError
from magacq.pipeline.channels.channel import MISSING, attach_channel, close_channel

__all__ = [
    "FAULT",
    "LOCK_CHANNEL",
    "OFF",
    "ON",
    "LockControl",
    "LockError",
    "LockInbox",
    "LockState",
]

STATE, COMMANDS = "lock_state", "lock_commands"
#: A lock's state (also the status's ``zlock_state``); NaN: the run has no such lock.
ON, OFF, FAULT = 1.0, 2.0, -1.0  # on; switched off by a user; switched off by a fault
#: Columns of ``lock_state``, in order.
STATE_COLUMNS = (
    "t",  # time.monotonic() of the update
    "z_state",
    "z_error_nm",  # the reference bead's mean z over the last update minus the target
    "z_last_nm",  # the last focus correction
    "z_target_nm",
    "xy_state",
    "xy_error_px",  # the largest bead offset from its ROI's centre at the last pass
    "xy_moves",  # ROIs re-centred so far
    "xy_last_bead",  # the last ROI moved: bead, and by how much (px)
    "xy_last_dx_px",
    "xy_last_dy_px",
)
#: The channel's MatrixBuffers: name -> columns (``lock_state`` is made with overwrite).
LOCK_CHANNEL = {STATE: len(STATE_COLUMNS), COMMANDS: 3}
LOCK_ROWS = {STATE: 16, COMMANDS: 64}
LOCKS = ("z", "xy")


class LockError(MagacqError):
    """The run has no locks, or its lock channel is full."""


@dataclass(frozen=True)
class LockState:
    """The locks as of their thread's last update (fields: :data:`STATE_COLUMNS`)."""

    t: float
    z_state: float
    z_error_nm: float
    z_last_nm: float
    z_target_nm: float
    xy_state: float
    xy_error_px: float
    xy_moves: float
    xy_last_bead: float
    xy_last_dx_px: float
    xy_last_dy_px: float

    def row(self) -> np.ndarray:
        return np.array([[getattr(self, c) for c in STATE_COLUMNS]], dtype=np.float64)


class _Channel:
    """The channel's buffers of the run in ``namespace``, attached (LockError: none)."""

    def __init__(self, namespace: str) -> None:
        try:
            self._bufs = attach_channel(LOCK_CHANNEL, namespace)
        except MISSING as exc:
            raise LockError(f"run {namespace!r} has no locks ({exc})") from None

    def close(self) -> None:
        close_channel(self._bufs)


class LockControl(_Channel):
    """See and switch the locks of a running acquisition from any process.

    Parameters
    ----------
    namespace : str
        The run's shared-memory namespace.

    Raises
    ------
    LockError
        No such run, or it has no lock.
    """

    def state(self) -> LockState | None:
        """The newest state row (None before the lock thread's first update)."""
        rows = self._bufs[STATE].peak_sorted()
        rows = rows[np.isfinite(rows[:, 0])]
        if not len(rows):
            return None
        return LockState(*(float(v) for v in rows[-1]))

    def switch(self, lock: str, on: bool) -> None:
        """Ask the lock thread to switch ``lock`` (``"z"`` or ``"xy"``) on or off."""
        if lock not in LOCKS:
            raise LockError(f"no lock {lock!r}; the locks are {', '.join(LOCKS)}")
        row = np.array([[LOCKS.index(lock), float(on), time.monotonic()]])
        try:
            self._bufs[COMMANDS].write(row)
        except BufferOverflow:
            raise LockError("the locks' command queue is full: is the run stuck?") from None


class LockInbox(_Channel):
    """The lock thread's end: take the switch commands, publish the state."""

    def take(self) -> list[tuple[str, bool]]:
        """The switches asked for since the last call, oldest first: (lock, on)."""
        try:
            rows = self._bufs[COMMANDS].read()
        except BufferUnderflow:
            return []
        return [
            (LOCKS[int(lock)], bool(on))
            for lock, on, _ in np.asarray(rows, dtype=np.float64)
            if math.isfinite(lock) and int(lock) in (0, 1)
        ]

    def publish(self, state: LockState) -> None:
        self._bufs[STATE].write(state.row())
