"""The protocol process: runs the run's experiment program and writes its events.

It executes the expanded :class:`~magacq.protocol.Plan` (or calls a user's script with a
:class:`~magacq.protocol.ProtocolApi`) on the magnets through their command channel, and writes
the start and end of every action to the ``events`` MatrixBuffer, which the writer saves. User
code runs only here: an exception or a hang ends this process, never the acquisition; the
supervisor then stops the run with the reason, everything acquired saved.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from buffers import MatrixBuffer
from magacq.pipeline.channels.events import EVENTS
from magacq.pipeline.channels.heartbeat import PROTOCOL
from magacq.pipeline.channels.motor_channel import MotorControl, MotorError
from magacq.pipeline.channels.streams import POSITIONS
from magacq.pipeline.processes.event_rows import EventRows
from magacq.pipeline.wiring import RunWiring
from magacq.protocol import (
    ProtocolApi,
    ProtocolError,
    ProtocolStopped,
    Runner,
    load_script,
    script_path,
)

logger = logging.getLogger("magacq.protocol")


class ChannelLink:
    """The stages through the motors' command channel (the devices process moves them)."""

    def __init__(self, control: MotorControl) -> None:
        self.control = control

    def move(self, axis: str, target: float, velocity: float | None) -> None:
        # the focus stage takes no speed: its ramps are its waypoints, 0.1 s apart
        self.control.move_to(axis, target, velocity=None if axis == "focus" else velocity)

    def busy(self, axis: str) -> bool:
        return self.control.busy(axis)

    def position(self, axis: str) -> float:
        _, height, rotation, focus = self.control.position()
        return {"height": height, "rotation": rotation, "focus": focus}[axis]

    def stop(self) -> None:
        self.control.stop()


def run_protocol(wiring: RunWiring) -> None:
    """Entry point of the protocol process: the run's protocol and its locks (a thread,
    :class:`~magacq.pipeline.processes.lock_runner.LockThread`); with locks only, it runs them
    until the run stops."""
    from magacq.pipeline.processes.lock_runner import LockThread

    wiring.enter_child("protocol", PROTOCOL)
    # a thread beats: the program itself may block in a user's script for as long as it likes
    # (its timeout_s bounds that); a stopped or dead process beats no more
    beating = threading.Thread(target=_beat, args=(wiring,), name="heartbeat", daemon=True)
    beating.start()
    stats = wiring.stats
    events = MatrixBuffer(create=False, locks=wiring.locks, name=EVENTS, namespace=wiring.namespace)
    script = wiring.protocol is not None and wiring.protocol.plan.script is not None
    rows = EventRows(events, stats, "script" if script else "protocol")

    def stopped() -> bool:
        return wiring.protocol_stop.is_set() or wiring.stop.is_set()

    locks = LockThread(wiring, rows, stopped) if wiring.feedback is not None else None
    if locks is not None:
        locks.start()
    try:
        failed = False
        if wiring.protocol is not None:  # the run ends with it
            failed = _run_plan(wiring, rows, stopped)
        else:  # locks only: until the run stops
            while locks is not None and locks.is_alive() and not stopped():
                locks.join(0.1)
    finally:
        wiring.protocol_stop.set()  # the locks end with the protocol
        if locks is not None:
            locks.join(5.0)
        events.close()
    if locks is not None and locks.error is not None:
        wiring.events.put(("error", "protocol", f"the locks failed: {locks.error}"))
        failed = True
    if failed:
        raise SystemExit(1)
    stats.set("protocol_ended", time.monotonic())  # an exit without it is no protocol's end


def _beat(wiring: RunWiring) -> None:
    while True:
        wiring.beats.beat(PROTOCOL)
        time.sleep(0.2)


def _run_plan(wiring: RunWiring, rows: EventRows, stopped: Callable[[], bool]) -> bool:
    """Execute the run's protocol to its end; True when it failed (reported to the supervisor)."""
    spec = wiring.protocol
    assert spec is not None
    stats = wiring.stats
    stats.set("protocol_actions", len(spec.plan.actions))
    stats.set("protocol_seconds", spec.plan.seconds)
    control = MotorControl(wiring.namespace, by="script" if spec.plan.script else "protocol")
    runner = Runner(ChannelLink(control), rows, spec.devices, spec.plan.forces, stopped=stopped)
    failed = False
    try:
        if spec.plan.script is not None:
            path = script_path(spec.plan.script, Path(spec.base))
            fn = load_script(path, spec.plan.script.function)
            fn(ProtocolApi(runner, latest=_latest_of(wiring)))
        else:
            runner.execute(spec.plan)
        logger.info("protocol done")
    except ProtocolStopped:
        logger.info("protocol stopped with the run")
    except (ProtocolError, MotorError) as exc:
        failed = True
        wiring.events.put(("error", "protocol", f"protocol failed: {exc}"))
    except BaseException as exc:  # a user's script: its traceback to the log, one line above
        failed = True
        logger.error("protocol script raised %s", type(exc).__name__, exc_info=True)
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        wiring.events.put(("error", "protocol", f"protocol script raised {what}"))
    finally:
        try:  # stopped by the run: the devices process parks them
            if not stopped() and spec.plan.end_height_mm is not None:
                runner.park(spec.plan.end_height_mm)
        except (ProtocolError, MotorError) as exc:
            logger.warning("magnets not parked: %s", exc)
        control.close()
    return failed


def _latest_of(wiring: RunWiring) -> Callable[[int], tuple[float, ...]]:
    """``latest(bead_id)``: the newest tracked ``(time, x, y, z)`` of a bead, read (not
    consumed) from the ``positions`` buffer."""
    positions = MatrixBuffer(create=False, locks=wiring.locks, name="positions",
                             namespace=wiring.namespace)  # fmt: skip
    seen = max(0, positions.rows_written - 1)
    latest: dict[int, tuple[float, ...]] = {}

    def latest_of(bead_id: int) -> tuple[float, ...]:
        nonlocal seen
        rows, seen = positions.peak_since(seen)
        p = POSITIONS.at
        for row in rows:
            latest[int(row[p.bead_id])] = (float(row[p.time]), float(row[p.x_nm]),
                                           float(row[p.y_nm]), float(row[p.z_nm]))  # fmt: skip
        return latest.get(int(bead_id), (math.nan,) * 4)

    return latest_of
