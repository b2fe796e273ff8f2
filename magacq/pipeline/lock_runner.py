"""The locks of a long run (Z-lock, XY-lock) as a thread of the protocol process.

Never in the frame loop: the thread reads the newest tracks (``positions``, read without taking
them), feeds the pure controllers of :mod:`magacq.protocol` (:class:`~magacq.protocol.ZLock`,
:class:`~magacq.protocol.XYLock`), and sends their corrections on: focus moves through the
motion channel (:class:`~magacq.pipeline.motor_channel.MotorControl`, axis ``focus``), ROI
moves into the BeadRoiBuffer the trackers follow. Each action is an event of the run file
(action ``zlock`` or ``xylock``). A focus move refused (the stage's limit) or not done within
``z_lock.timeout_s`` switches the Z-lock off with a warning, an ``off`` event and the status's
``zlock_state`` -1; the run goes on.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from buffers import BeadRoiBuffer, MatrixBuffer
from magacq.pipeline.motor_channel import MotorControl, MotorError
from magacq.pipeline.wiring import LocksSpec, RunWiring
from magacq.protocol import XYLock, ZLock

if TYPE_CHECKING:
    from magacq.pipeline.protocol_runner import EventRows

logger = logging.getLogger("magacq.locks")

_TICK_S = 0.05  # how often the thread reads the new tracks


class LockThread(threading.Thread):
    """Runs the run's locks until ``stopped()``.

    Parameters
    ----------
    wiring : RunWiring
        The run (its ``feedback`` says which locks).
    events : EventRows
        The protocol process's events (:meth:`EventRows.lock`).
    stopped : callable
        True once the locks must end.
    """

    def __init__(self, wiring: RunWiring, events: "EventRows", stopped: Callable[[], bool]) -> None:
        super().__init__(name="locks", daemon=True)
        spec = wiring.feedback
        assert spec is not None
        self.spec: LocksSpec = spec
        self.wiring, self.events, self.stopped = wiring, events, stopped
        self.stats = wiring.stats
        self.px = float(wiring.geometry["pixel_size_nm"])
        self.error: BaseException | None = None
        z = spec.z_lock
        self.zlock = None if z is None else ZLock(
            sign=spec.sign, target_nm=z["target_nm"], gain=z["gain"],
            deadband_nm=z["deadband_nm"], max_step_nm=z["max_step_nm"],
        )  # fmt: skip
        xy = spec.xy_lock
        side = int(wiring.tracking["roi_size"])
        self.xylock = None if xy is None else XYLock(
            roi_size=side, width=int(wiring.geometry["width"]),
            height=int(wiring.geometry["height"]), threshold_px=xy["threshold_px"],
        )  # fmt: skip
        self._z: list[float] = []  # the reference bead's z since the last correction
        self._seq_from = 0  # z of frames before the last focus move is not used
        self._xy: dict[int, list[tuple[float, float]]] = {}  # bead -> (x, y) px this window

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the protocol process reports it
            self.error = exc
            logger.error("the locks failed: %s", exc)

    def _loop(self) -> None:
        w = self.wiring
        positions = MatrixBuffer(create=False, locks=w.locks, name="positions",
                                 namespace=w.namespace)  # fmt: skip
        rois = BeadRoiBuffer(create=False, locks=w.locks, namespace=w.namespace)
        control = MotorControl(w.namespace) if self.zlock is not None else None
        if control is not None:
            self.stats.set("zlock_state", 1)
        seen = max(0, positions.rows_written - 1)
        now = time.monotonic()
        next_z = now + (self.spec.z_lock["interval_s"] if self.zlock else math.inf)
        next_xy = now + (self.spec.xy_lock["window_s"] if self.xylock else math.inf)
        try:
            while not self.stopped():
                rows, seen = positions.peak_since(seen)
                self._take(rows)
                now = time.monotonic()
                if control is not None and now >= next_z:
                    if not self._correct_z(control):
                        control.close()
                        control = None
                    next_z = time.monotonic() + self.spec.z_lock["interval_s"]
                if self.xylock is not None and now >= next_xy:
                    self._recentre(rois)
                    next_xy = now + self.spec.xy_lock["window_s"]
                time.sleep(_TICK_S)
        finally:
            if control is not None:
                control.close()
            rois.close()
            positions.close()

    def _take(self, rows: np.ndarray) -> None:
        """New position rows: time, seq, bead, x, y, z (nm), flag, ..."""
        if not len(rows):
            return
        if self.zlock is not None:
            ref = rows[(rows[:, 2] == self.spec.z_lock["bead"]) & (rows[:, 1] >= self._seq_from)]
            z = ref[:, 5]
            self._z.extend(z[np.isfinite(z)].tolist())
        if self.xylock is not None:
            for bead, x, y in rows[:, [2, 3, 4]]:
                if math.isfinite(x) and math.isfinite(y):
                    self._xy.setdefault(int(bead), []).append((x / self.px, y / self.px))

    def _correct_z(self, control: MotorControl) -> bool:
        """One Z-lock update; False once the lock is off (a focus fault)."""
        if not self._z:
            return True
        z = float(np.mean(self._z))
        self._z.clear()
        engaging = self.zlock.target_nm is None  # type: ignore[union-attr]
        step = self.zlock.update(z)  # type: ignore[union-attr]
        if engaging:
            target = self.zlock.target_nm  # type: ignore[union-attr]
            self.events.lock("zlock", "start", control.position()[3], f"on, target {target:.1f} nm")
        self.stats.set("zlock_error_nm", z - self.zlock.target_nm)  # type: ignore[union-attr,operator]
        if step == 0.0:
            return True
        focus = control.position()[3]
        try:
            control.move_by("focus", step, wait=True, timeout=self.spec.z_lock["timeout_s"])
        except MotorError as exc:
            why = f"focus move of {step:+.1f} nm failed: {exc}"
            logger.warning("Z-lock switched off: %s; the run goes on", why)
            short = str(exc).split(" ", 3)[-1]  # "refused (...)", "got no answer within 5 s"
            self.events.lock("zlock", "off", focus, f"off: {step:+.1f} nm {short}")
            self.stats.set("zlock_state", -1)
            return False
        self._seq_from = int(self.stats.get("frames"))  # frames stored before the move's end
        self.stats.set("zlock_last_nm", step)
        self.events.lock("zlock", "start", focus + step, f"z {z:.1f} nm, step {step:+.1f} nm")
        return True

    def _recentre(self, rois: BeadRoiBuffer) -> None:
        """One XY-lock pass over every bead seen in the last window."""
        _, ids, boxes = rois.snapshot()
        moves = {}
        for bead, box in zip(ids.tolist(), boxes.tolist(), strict=True):
            xy = self._xy.get(int(bead))
            if not xy:
                continue
            mx, my = np.mean(xy, axis=0)
            new = self.xylock.update(tuple(int(v) for v in box), float(mx), float(my))  # type: ignore[union-attr]
            if new is not None:
                moves[int(bead)] = new
        self._xy.clear()
        if not moves:
            return
        rois.update_beads(moves)
        self.stats.add("xylock_moves", len(moves))
        for bead, (x0, _, y0, _) in moves.items():
            self.events.lock("xylock", "start", math.nan, f"bead {bead} ROI to x0 {x0} y0 {y0}")
