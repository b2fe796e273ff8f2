"""The motion thread of the devices process: runs magnet and focus commands, samples the stages.

It never runs in the frame loop: it executes commands from the motion channel
(:mod:`magacq.pipeline.magnet_channel`), follows each move to its end (or its timeout), and
samples magnet height, rotation and focus z with host timestamps into the ``motors``
MatrixBuffer: at ``sample_hz`` while anything moves, at 10 Hz at rest. The frame loop reads
:attr:`MotionThread.latest` (the newest sample: height, rotation, focus) for each frame's row,
and :attr:`error` to end the run when a motor fails. A focus move the stage refuses (outside its
limits) or that does not settle in time is acknowledged as such and the run goes on: the caller
(the Z-lock) decides.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from hal import DeviceError, HalError, HalTimeoutError, UnsupportedSettingError
from magacq.pipeline.magnet_channel import MOVE_BY, MOVE_TO, STOP, Command, CommandInbox, Status
from magacq.pipeline.rows import BatchedRows

logger = logging.getLogger("magacq.motion")

_REST_PERIOD_S = 0.1
_FLUSH_S = 0.1


@dataclass
class _Pending:
    """A command in progress: which axes it waits for, and until when."""

    id: int
    axes: tuple[str, ...]
    deadline: float


class MotionThread(threading.Thread):
    """Runs the magnets (and samples the focus stage) beside the frame loop.

    Parameters
    ----------
    magnets : hal.Magnets or None
    focus : hal.FocusStage or None
    motors : MatrixBuffer
        Samples: time, height mm, rotation turns, focus z nm.
    inbox : CommandInbox or None
        Commands (None: sampling only).
    sample_hz : float
    move_timeout_s : float
        A move still running after this long is a motor fault.
    """

    def __init__(
        self,
        magnets: Any,
        focus: Any,
        motors: Any,
        inbox: CommandInbox | None,
        *,
        sample_hz: float,
        move_timeout_s: float,
    ) -> None:
        super().__init__(name="motion", daemon=True)
        self.magnets, self.focus, self.inbox = magnets, focus, inbox
        self.rows = BatchedRows(motors)
        self.period = 1.0 / sample_hz
        self.move_timeout_s = move_timeout_s
        self.latest: tuple[float, float, float] = (math.nan, math.nan, math.nan)
        self.error: str | None = None
        self._halt = threading.Event()
        self._pending: list[_Pending] = []

    def halt(self) -> None:
        """Stop the thread (the magnets stay where they are) and flush the last samples."""
        self._halt.set()
        if self.is_alive():
            self.join(5.0)
        self.rows.flush()

    def run(self) -> None:
        last_flush = time.monotonic()
        try:
            while not self._halt.is_set():
                if self.inbox is not None:
                    for cmd in self.inbox.take():
                        self._execute(cmd)
                now = self.sample()
                self._follow(now)
                if now - last_flush >= _FLUSH_S:
                    self.rows.flush()
                    last_flush = now
                self._halt.wait(self.period if self._pending else _REST_PERIOD_S)
        except HalError as exc:
            self.error = f"magnets failed: {exc}"
            logger.error(self.error)
            for p in self._pending:
                self._ack(p.id, Status.TIMED_OUT if "still moving" in str(exc) else Status.FAILED)
            self._pending.clear()
            try:
                if self.magnets is not None:
                    self.magnets.stop()
            except Exception as stop_exc:  # already failing: report, don't mask
                logger.warning("stopping the magnets after the fault failed: %s", stop_exc)

    def sample(self) -> float:
        """Read every stage once into ``motors``; returns the sample's time."""
        now = time.monotonic()
        h = r = z = math.nan
        if self.magnets is not None:
            h, r = self.magnets.positions()
        if self.focus is not None:
            z = self.focus.position_nm
        self.latest = (h, r, z)
        self.rows.add(now, h, r, z)
        return now

    def _ack(self, cid: int, status: Status) -> None:
        if self.inbox is not None:
            self.inbox.ack(cid, status)

    def _execute(self, cmd: Command) -> None:
        mag = self.magnets
        deadline = time.monotonic() + self.move_timeout_s
        if cmd.op == STOP and mag is not None:
            mag.stop()
            for p in self._pending:
                self._ack(p.id, Status.STOPPED)
            self._pending = [_Pending(cmd.id, tuple(mag.axes), deadline)]
            logger.info("magnets: stop (command %d)", cmd.id)
            return
        try:
            if cmd.axis is None or cmd.op not in (MOVE_TO, MOVE_BY):
                raise UnsupportedSettingError(f"malformed motion command {cmd}")
            if (mag if cmd.axis != "focus" else self.focus) is None:
                raise UnsupportedSettingError(f"the run has no {cmd.axis} axis")
            if cmd.axis == "focus":
                z = cmd.value if cmd.op == MOVE_TO else self.focus.position_nm + cmd.value
                self.focus.move_to(z)
            elif cmd.op == MOVE_TO:
                mag.move_to(cmd.axis, cmd.value, velocity=cmd.velocity)
            else:
                mag.move_by(cmd.axis, cmd.value, velocity=cmd.velocity)
        except UnsupportedSettingError as exc:  # a bad command, not a bad motor: the run goes on
            logger.warning("%s command %d refused: %s", cmd.axis or "motion", cmd.id, exc)
            self._ack(cmd.id, Status.REFUSED)
            return
        except DeviceError:
            self._ack(cmd.id, Status.FAILED)
            raise
        for p in [p for p in self._pending if cmd.axis in p.axes]:
            self._ack(p.id, Status.STOPPED)  # superseded by this move
            self._pending.remove(p)
        self._pending.append(_Pending(cmd.id, (cmd.axis,), deadline))
        verb = "to" if cmd.op == MOVE_TO else "by"
        log = logger.debug if cmd.axis == "focus" else logger.info  # a lock moves it often
        log("motion: %s %s %g (command %d)", cmd.axis, verb, cmd.value, cmd.id)

    def _busy(self, axis: str) -> bool:
        return self.focus.is_busy() if axis == "focus" else self.magnets.is_busy(axis)

    def _follow(self, now: float) -> None:
        for p in list(self._pending):
            if not any(self._busy(axis) for axis in p.axes):
                self.sample()  # where it arrived, readable before the ack
                self.rows.flush()
                self._ack(p.id, Status.DONE)
                self._pending.remove(p)
            elif now > p.deadline and p.axes == ("focus",):  # the run goes on: its caller acts
                logger.warning("focus stage still moving %g s after command %d",
                               self.move_timeout_s, p.id)  # fmt: skip
                self._ack(p.id, Status.TIMED_OUT)
                self._pending.remove(p)
            elif now > p.deadline:
                raise HalTimeoutError(
                    f"{'/'.join(p.axes)} still moving {self.move_timeout_s:g} s after command "
                    f"{p.id} (magnets.move_timeout_s)"
                )
