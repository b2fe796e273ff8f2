"""Heartbeats: how the supervisor tells a hung child from a busy one.

Every child of a run has one slot in a process-shared array of doubles (a ``RawArray``: no lock
a dying process could hold). The child writes ``time.monotonic()`` into its slot from its main
loop, each loop at most a fraction of a second apart, and a negative time while it starts up
(compiling, opening a camera, an HDF5 file) when a longer silence is allowed. The supervisor
reads the slots: a live child whose slot is older than its limit has hung (SIGSTOP, a deadlock,
a driver call that never returns) and is treated as dead. ``time.monotonic()`` is one clock for
every process of the host on Linux, macOS and Windows.
"""

import time
from typing import Any

#: The slots of the run's children; a tracker ``i`` has ``TRACKER0 + i``.
PRODUCER, WRITER, RECORDER, PROTOCOL, TRACKER0 = range(5)
_MAX_SLOTS = TRACKER0 + 64


def slot_name(slot: int) -> str:
    """The child a slot belongs to, as the supervisor names it in messages."""
    names = ("producer", "writer", "recorder", "protocol")
    return names[slot] if slot < TRACKER0 else f"tracker {slot - TRACKER0}"


class Heartbeats:
    """The run's heartbeat slots (picklable: handed to every child).

    Parameters
    ----------
    ctx : multiprocessing context
        The context the children are started with.
    """

    def __init__(self, ctx: Any) -> None:
        self._t = ctx.RawArray("d", _MAX_SLOTS)

    def beat(self, slot: int) -> None:
        """The child of ``slot`` is alive and making progress (its only writer)."""
        self._t[slot] = time.monotonic()

    def starting(self, slot: int) -> None:
        """The child of ``slot`` starts something long (compiling, opening a device)."""
        self._t[slot] = -time.monotonic()

    def clear(self, slot: int) -> None:
        """Forget ``slot`` (its child is restarted, or gone)."""
        self._t[slot] = 0.0

    def silence(self, slot: int, now: float | None = None) -> tuple[float, bool]:
        """``(seconds since the last beat, whether it was a start-up beat)``; 0 before any."""
        t = self._t[slot]
        if t == 0.0:
            return 0.0, False
        now = time.monotonic() if now is None else now
        return now - abs(t), t < 0
