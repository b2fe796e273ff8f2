"""The locks of a long run (Z-lock, XY-lock) as a thread of the protocol process.

Never in the frame loop: the thread reads the newest tracks (``positions``) and the focus at each
frame (``frames``), both read without taking them, feeds the pure controllers of
:mod:`magacq.protocol` (:class:`~magacq.protocol.ZLock`, :class:`~magacq.protocol.XYLock`), and
sends their corrections on: focus moves through the motion channel
(:class:`~magacq.pipeline.channels.motor_channel.MotorControl`, axis ``focus``), ROI moves into the
BeadRoiBuffer the trackers follow. Each action is an event of the run file (action ``zlock`` or
``xylock``). A focus move refused (the stage's limit), timed out, or not answered within
``z_lock.timeout_s`` switches the Z-lock off with a warning, an ``off`` event and the status's
``zlock_state`` -1; the run goes on. The state of both locks is published, and switches are
taken, through :mod:`magacq.pipeline.channels.lock_channel` (``magacq view``).
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from buffers import BeadRoiBuffer
from magacq.config import XYLockConfig, ZLockConfig
from magacq.pipeline.channels.lock_channel import FAULT, OFF, ON, LockInbox, LockState
from magacq.pipeline.channels.motor_channel import MotorControl, MotorError
from magacq.pipeline.channels.streams import FRAMES, POSITIONS
from magacq.pipeline.wiring import LocksSpec, RunWiring
from magacq.protocol import XYLock, ZLock

if TYPE_CHECKING:
    from magacq.pipeline.processes.event_rows import EventRows

logger = logging.getLogger("magacq.locks")

_TICK_S = 0.05  # how often the thread reads the new tracks
_KEEP_FRAMES = 20_000  # frames whose focus is kept to place the tracks in the sample's frame


class _FocusAtFrames:
    """Buffer sequence number -> the focus when that frame came, for the newest frames."""

    def __init__(self) -> None:
        self.seq = np.empty(0)
        self.focus = np.empty(0)

    def add(self, rows: np.ndarray) -> None:
        """``frames`` rows (:data:`~magacq.pipeline.channels.streams.FRAMES`)."""
        if len(rows):
            c = FRAMES.at
            self.seq = np.concatenate([self.seq, rows[:, c.seq]])[-_KEEP_FRAMES:]
            self.focus = np.concatenate([self.focus, rows[:, c.focus_z_nm]])[-_KEEP_FRAMES:]

    def at(self, seq: np.ndarray) -> np.ndarray:
        """The focus at each frame (NaN where not known)."""
        out = np.full(len(seq), np.nan)
        if not len(self.seq):
            return out
        k = np.minimum(np.searchsorted(self.seq, seq), len(self.seq) - 1)
        hit = self.seq[k] == seq
        out[hit] = self.focus[k[hit]]
        return out


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
        self.px = float(wiring.geometry.pixel_size_nm)
        self.error: BaseException | None = None
        self.zlock = self._new_zlock()
        xy = spec.xy_lock
        side = wiring.tracking.roi_size
        self.xylock = None if xy is None else XYLock(
            roi_size=side, width=int(wiring.geometry.width),
            height=int(wiring.geometry.height), threshold_px=xy.threshold_px,
        )  # fmt: skip
        self.z_state = math.nan if spec.z_lock is None else ON
        self.xy_state = math.nan if xy is None else ON
        self.z_last = self.xy_error = math.nan
        self.xy_last = (math.nan, math.nan, math.nan)  # bead, dx, dy px
        self._focus = _FocusAtFrames()
        self._engaged = False  # the Z-lock's first update with readings is its "on" event
        self._xy: dict[int, list[tuple[float, float]]] = {}  # bead -> (x, y) px this window

    @property
    def _z_cfg(self) -> ZLockConfig:
        """The Z-lock's settings (read only where there is a Z-lock)."""
        assert self.spec.z_lock is not None
        return self.spec.z_lock

    @property
    def _xy_cfg(self) -> XYLockConfig:
        """The XY-lock's settings (read only where there is an XY-lock)."""
        assert self.spec.xy_lock is not None
        return self.spec.xy_lock

    def _new_zlock(self) -> ZLock | None:
        z = self.spec.z_lock
        if z is None:
            return None
        return ZLock(
            sign=self.spec.sign, target_nm=z.target_nm, gain=z.gain,
            deadband_nm=z.deadband_nm, max_step_nm=z.max_step_nm, window_s=z.window_s,
        )  # fmt: skip

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the protocol process reports it
            self.error = exc
            logger.error("the locks failed: %s", exc)

    def _loop(self) -> None:
        w = self.wiring
        mats = w.attach_matrices("positions", "frames")
        positions, frames = mats["positions"], mats["frames"]
        rois = BeadRoiBuffer(create=False, locks=w.locks, namespace=w.namespace)
        inbox = LockInbox(w.namespace)
        control = MotorControl(w.namespace, by="lock") if self.zlock is not None else None
        seen = max(0, positions.rows_written - 1)
        seen_frames = max(0, frames.rows_written - 1)
        now = time.monotonic()
        z_every = self._z_cfg.interval_s if self.zlock else math.inf
        xy_every = self._xy_cfg.window_s if self.xylock else math.inf
        next_z, next_xy = now + z_every, now + xy_every
        self._publish(inbox)
        try:
            while not self.stopped():
                changed = self._switches(inbox.take())
                rows, seen = positions.peak_since(seen)
                new_frames, seen_frames = frames.peak_since(seen_frames)
                self._focus.add(new_frames)  # after the tracks: it has their frames
                self._take(rows)
                now = time.monotonic()
                if now >= next_z:
                    if control is not None and self.z_state == ON:
                        self._correct_z(control)
                        changed = True
                    next_z = time.monotonic() + z_every
                if now >= next_xy:
                    if self.xy_state == ON:
                        self._recentre(rois)
                        changed = True
                    next_xy = now + xy_every
                if changed:
                    self._publish(inbox)
                time.sleep(_TICK_S)
        finally:
            for buf in (control, inbox, rois, positions, frames):
                if buf is not None:
                    buf.close()

    def _switches(self, asked: list[tuple[str, bool]]) -> bool:
        """Switch the locks as asked through the lock channel; whether any changed."""
        changed = False
        for lock, on in asked:
            state = self.z_state if lock == "z" else self.xy_state
            if math.isnan(state) or (state == ON) == on:
                continue  # not in this run, or already so
            if lock == "z":
                self.z_state = ON if on else OFF
                if on:
                    self.zlock = self._new_zlock()  # engages again at the bead's z now
                    self._engaged = False
            else:
                self.xy_state = ON if on else OFF
                self._xy.clear()
            self.events.lock(f"{lock}lock", "start" if on else "off", math.nan,
                             "on (switched on)" if on else "off: switched off")  # fmt: skip
            logger.info("%s-lock switched %s", lock.upper(), "on" if on else "off")
            changed = True
        return changed

    def _publish(self, inbox: LockInbox) -> None:
        """The locks' state into the status and the lock channel."""
        z = self.zlock
        self.stats.set("zlock_state", 0.0 if math.isnan(self.z_state) else self.z_state)
        self.stats.set("zlock_error_nm", math.nan if z is None else z.error_nm)
        self.stats.set("zlock_last_nm", self.z_last)
        state = LockState(
            time.monotonic(), self.z_state, math.nan if z is None else z.error_nm, self.z_last,
            math.nan if z is None or z.target_nm is None else z.target_nm, self.xy_state,
            self.xy_error, self.stats.get("xylock_moves"), *self.xy_last,
        )  # fmt: skip
        inbox.publish(state)

    def _take(self, rows: np.ndarray) -> None:
        """New ``positions`` rows (:data:`~magacq.pipeline.channels.streams.POSITIONS`)."""
        if not len(rows):
            return
        p = POSITIONS.at
        if self.zlock is not None and self.z_state == ON:
            ref = rows[rows[:, p.bead_id] == self._z_cfg.bead]
            self.zlock.add(ref[:, p.time], ref[:, p.z_nm], self._focus.at(ref[:, p.seq]))
        if self.xylock is not None and self.xy_state == ON:
            for bead, x, y in rows[:, [p.bead_id, p.x_nm, p.y_nm]]:
                if math.isfinite(x) and math.isfinite(y):
                    self._xy.setdefault(int(bead), []).append((x / self.px, y / self.px))

    def _correct_z(self, control: MotorControl) -> None:
        """One Z-lock update; a focus fault switches the lock off."""
        z = self.zlock
        assert z is not None
        focus = control.position()[3]
        # aim half an interval past the newest frame: the error then averages out until the next
        at = self.stats.get("last_timestamp") + self._z_cfg.interval_s / 2
        step = z.update(at, focus)
        if math.isnan(z.error_nm):
            return  # no readings yet
        if not self._engaged:
            self.events.lock("zlock", "start", focus, f"on, target {z.target_nm:.1f} nm")
            self._engaged = True
        if step == 0.0:
            return
        try:
            control.move_by("focus", step, wait=True, timeout=self._z_cfg.timeout_s)
        except MotorError as exc:
            why = f"focus move of {step:+.1f} nm failed: {exc}"
            logger.warning("Z-lock switched off: %s; the run goes on", why)
            short = str(exc).split(" ", 3)[-1]  # "refused (...)", "got no answer within 5 s"
            self.events.lock("zlock", "off", focus, f"off: {step:+.1f} nm {short}")
            self.z_state = FAULT
            return
        self.z_last = step
        self.events.lock("zlock", "start", focus + step,
                         f"z error {z.error_nm:+.1f} nm, step {step:+.1f} nm")  # fmt: skip

    def _recentre(self, rois: BeadRoiBuffer) -> None:
        """One XY-lock pass over every bead seen in the last window."""
        lock = self.xylock
        assert lock is not None
        _, ids, boxes = rois.snapshot()
        moves, offsets = {}, []
        for bead, box in zip(ids.tolist(), boxes.tolist(), strict=True):
            xy = self._xy.get(int(bead))
            if not xy:
                continue
            mx, my = np.mean(xy, axis=0)
            old = tuple(int(v) for v in box)
            offsets.append(lock.offset_px(old, float(mx), float(my)))  # type: ignore[arg-type]
            new = lock.update(old, float(mx), float(my))  # type: ignore[arg-type]
            if new is not None:
                moves[int(bead)] = new
                self.xy_last = (float(bead), float(new[0] - old[0]), float(new[2] - old[2]))
        self._xy.clear()
        if offsets:
            self.xy_error = float(np.nanmax(offsets))
        if not moves:
            return
        rois.update_beads(moves)
        self.stats.add("xylock_moves", len(moves))
        for bead, (x0, _, y0, _) in moves.items():
            self.events.lock("xylock", "start", math.nan, f"bead {bead} ROI to x0 {x0} y0 {y0}")
