"""The motion thread of the devices process: runs motor commands, samples the stages.

It never runs in the frame loop: it executes commands from the motors' channel
(:mod:`magacq.pipeline.channels.motor_channel`) on the magnets and the focus stage, follows
each move to its end (or its timeout), and samples magnet height, rotation and focus z with host
timestamps into the ``motors`` MatrixBuffer: at ``sample_hz`` while anything moves, at 10 Hz at
rest. The frame loop reads :attr:`MotionThread.latest` (height, rotation, focus) for each
frame's row, and :attr:`error` to end the run when a motor fails. A focus move that does not
arrive in time is no motor fault: it is acknowledged TIMED_OUT (a Z-lock switches off on it)
and the run goes on.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hal import DeviceError, HalError, HalTimeoutError, UnsupportedSettingError
from magacq.pipeline.channels.events import EventWriter
from magacq.pipeline.channels.motor_channel import (
    MOVE_BY,
    MOVE_TO,
    STOP,
    AxisLimits,
    Command,
    CommandInbox,
    Status,
)
from magacq.pipeline.channels.rows import BatchedRows

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
    inbox : CommandInbox
        Commands in, acknowledgements out.
    sample_hz : float
    move_timeout_s : float
        A magnet move still running after this long is a motor fault.
    focus_timeout_s : float
        A focus move still running after this long is acknowledged TIMED_OUT.
    events : EventWriter, optional
        The run's events: every command not from the protocol process (which records its own)
        is one, with who sent it.
    """

    def __init__(
        self,
        magnets: Any,
        focus: Any,
        motors: Any,
        inbox: CommandInbox,
        *,
        sample_hz: float,
        move_timeout_s: float,
        focus_timeout_s: float = 10.0,
        events: EventWriter | None = None,
    ) -> None:
        super().__init__(name="motion", daemon=True)
        self.magnets, self.focus, self.inbox = magnets, focus, inbox
        self.events = events  # where the moves nobody else records become events
        self.rows = BatchedRows(motors)
        self.period = 1.0 / sample_hz
        self.move_timeout_s = move_timeout_s
        self.focus_timeout_s = focus_timeout_s
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

    def park(self, height_mm: float, timeout: float, beat: Callable[[], None]) -> None:
        """After :meth:`halt`: move the magnets to ``height_mm`` (the run's end), sampling as they
        go and calling ``beat`` (the process's heartbeat) meanwhile; a failure is logged."""
        if self.magnets is None or "height" not in self.magnets.axes:
            return
        try:
            self.magnets.stop()
            self.magnets.move_to("height", height_mm)
            deadline = time.monotonic() + timeout
            while self.magnets.is_busy("height"):
                beat()
                self.sample()
                if time.monotonic() > deadline:
                    raise HalTimeoutError(f"still moving after {timeout:g} s")
                time.sleep(self.period)
            self.sample()
            logger.info("magnets parked at %g mm", height_mm)
        except HalError as exc:
            logger.error("magnets not parked at %g mm: %s", height_mm, exc)
        finally:
            self.rows.flush()

    def run(self) -> None:
        last_flush = due = time.monotonic()
        try:
            while not self._halt.is_set():
                for cmd in self.inbox.take():
                    self._execute(cmd)
                now = self.sample()
                self._follow(now)
                if now - last_flush >= _FLUSH_S:
                    self.rows.flush()
                    last_flush = now
                # on a fixed schedule, so the time a sample takes does not lower the rate
                due = max(due + (self.period if self._pending else _REST_PERIOD_S), now)
                self._halt.wait(max(0.0, due - time.monotonic()))
        except Exception as exc:  # a motor fault (or a bug here): the run ends with it
            device = "magnets" if self.magnets is not None else "focus stage"
            what = str(exc) if isinstance(exc, HalError) else f"{type(exc).__name__}: {exc}"
            self.error = f"{device} failed: {what}"
            logger.error(self.error, exc_info=not isinstance(exc, HalError))
            timed_out = isinstance(exc, HalTimeoutError)
            self._end_pending(Status.TIMED_OUT if timed_out else Status.FAILED)
            try:
                if self.magnets is not None:
                    self.magnets.stop()
            except Exception as stop_exc:  # already failing: report, don't mask
                logger.warning("stopping the magnets after the fault failed: %s", stop_exc)
        else:
            self._end_pending(Status.STOPPED)  # the run is stopping: no waiter waits in vain

    def _end_pending(self, status: Status) -> None:
        for p in self._pending:
            self._ack(p.id, status)
        self._pending.clear()

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

    def limits(self) -> dict[str, AxisLimits]:
        """What each axis of the run allows, for the channel's clients."""
        out = {}
        if self.magnets is not None:
            for axis in self.magnets.axes:
                try:
                    vmax = self.magnets.max_velocity(axis)
                except UnsupportedSettingError:  # no settable velocity
                    vmax = math.nan
                lo, hi = self.magnets.limits(axis)
                out[axis] = AxisLimits(lo, hi, vmax, self.magnets.position(axis))
        if self.focus is not None:
            lo, hi = self.focus.limits_nm
            out["focus"] = AxisLimits(lo, hi, math.nan, self.focus.position_nm)
        return out

    def _ack(self, cid: int, status: Status) -> None:
        self.inbox.ack(cid, status)

    def _busy(self, axis: str) -> bool:
        busy: bool = self.focus.is_busy() if axis == "focus" else self.magnets.is_busy(axis)
        return busy

    def _move(self, cmd: Command) -> None:
        """Start the move of ``cmd``; UnsupportedSettingError for a command the run refuses."""
        if cmd.axis is None or cmd.op not in (MOVE_TO, MOVE_BY):
            raise UnsupportedSettingError(f"malformed motor command {cmd}")
        if cmd.axis == "focus":
            if self.focus is None:
                raise UnsupportedSettingError("this run has no focus stage")
            if cmd.velocity is not None:
                raise UnsupportedSettingError("the focus stage takes no velocity")
            base = self.focus.position_nm if cmd.op == MOVE_BY else 0.0
            self.focus.move_to(base + cmd.value)
        elif self.magnets is None:
            raise UnsupportedSettingError("this run has no magnets")
        elif cmd.op == MOVE_TO:
            self.magnets.move_to(cmd.axis, cmd.value, velocity=cmd.velocity)
        else:
            self.magnets.move_by(cmd.axis, cmd.value, velocity=cmd.velocity)

    def _execute(self, cmd: Command) -> None:
        timeout = self.focus_timeout_s if cmd.axis == "focus" else self.move_timeout_s
        deadline = time.monotonic() + timeout
        if cmd.op == STOP:
            axes: tuple[str, ...] = ()
            if self.magnets is not None:
                self.magnets.stop()
                axes = tuple(self.magnets.axes)
            for p in [p for p in self._pending if set(p.axes) & set(axes)]:
                self._ack(p.id, Status.STOPPED)
                self._pending.remove(p)
            self._pending.append(_Pending(cmd.id, axes, deadline))
            logger.info("magnets: stop (command %d)", cmd.id)
            self._record(cmd, math.nan)
            return
        target = self._destination(cmd)
        try:
            self._move(cmd)
        except UnsupportedSettingError as exc:  # a bad command, not a bad motor: the run goes on
            logger.warning("motor command %d refused: %s", cmd.id, exc)
            self._ack(cmd.id, Status.REFUSED)
            return
        except DeviceError:
            self._ack(cmd.id, Status.FAILED)
            raise
        for p in [p for p in self._pending if cmd.axis in p.axes]:
            self._ack(p.id, Status.STOPPED)  # superseded by this move
            self._pending.remove(p)
        self._record(cmd, target)
        assert cmd.axis is not None  # a move names its axis (only a stop has none)
        self._pending.append(_Pending(cmd.id, (cmd.axis,), deadline))
        verb = "to" if cmd.op == MOVE_TO else "by"
        logger.info("motors: %s %s %g (command %d)", cmd.axis, verb, cmd.value, cmd.id)

    def _destination(self, cmd: Command) -> float:
        """Where a move command goes (before it starts: a relative move from here)."""
        if cmd.op == MOVE_TO or cmd.axis is None:
            return cmd.value
        try:
            at: float = (
                self.focus.position_nm if cmd.axis == "focus" else self.magnets.position(cmd.axis)
            )
        except (AttributeError, HalError):  # no such device: the command is refused anyway
            return math.nan
        return at + cmd.value

    def _record(self, cmd: Command, target: float) -> None:
        """A command from outside the protocol process, as an event: what, where to, by whom."""
        if self.events is None or cmd.by in ("protocol", "script", "lock"):
            return
        at = {} if cmd.op == STOP else {cmd.axis: target}
        verb = {MOVE_TO: "to", MOVE_BY: "by", STOP: "stop"}[cmd.op]
        label = f"{cmd.by}: {cmd.axis or 'magnets'} {verb} {cmd.value:g} (command {cmd.id})"
        try:
            self.events.write("move", "start", by=cmd.by, height=at.get("height", math.nan),
                              rotation=at.get("rotation", math.nan),
                              focus=at.get("focus", math.nan), label=label)  # fmt: skip
        except OverflowError as exc:
            logger.warning("event of command %d lost: %s", cmd.id, exc)

    def _follow(self, now: float) -> None:
        for p in list(self._pending):
            if not any(self._busy(axis) for axis in p.axes):
                self.sample()  # where it arrived, readable before the ack
                self.rows.flush()
                self._ack(p.id, Status.DONE)
                self._pending.remove(p)
            elif now > p.deadline and p.axes == ("focus",):  # the run goes on without it
                logger.warning("focus still moving %g s after command %d "
                               "(focus_stage.move_timeout_s): given up", self.focus_timeout_s,
                               p.id)  # fmt: skip
                self._ack(p.id, Status.TIMED_OUT)
                self._pending.remove(p)
            elif now > p.deadline:
                raise HalTimeoutError(
                    f"{'/'.join(p.axes)} still moving {self.move_timeout_s:g} s after command "
                    f"{p.id} (magnets.move_timeout_s)"
                )
