"""The supervisor: creates a run's buffers, starts and watches its processes, stops them cleanly.

A :class:`Run` (planned by :mod:`magacq.pipeline.acquisition` for `magacq run`, by
:mod:`magacq.calibrate` for `magacq calibrate`) is started in a :class:`Session` and watched by
:func:`supervise`: create every buffer in a namespace of its own, start the writer (a run's),
N trackers (a calibration's profile its sweep) and the producer (a calibration's follows the
sweep plan), show the live status, watch every child's exit and heartbeat and apply its role's
policy (:mod:`magacq.pipeline.roster`: a tracker is restarted, up to a limit; any other ends the
run), and on any exit (end of duration or sweep, Ctrl-C, SIGTERM, a failure) stop them all,
close the file and unlink every segment.
"""

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import multiprocessing.connection
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from buffers import (
    BeadRoiBuffer,
    LiveProfileBuffer,
    MatrixBuffer,
    VideoBuffer,
    ZLUTSweepDataset,
    make_locks,
    remove_orphan_segments,
    remove_stale_segments,
)
from magacq.config import RunConfig, TrackingConfig
from magacq.errors import RunError
from magacq.logs import RunLogging
from magacq.pipeline.channels.heartbeat import (
    PRODUCER,
    PROTOCOL,
    RECORDER,
    TRACKER0,
    WRITER,
    slot_name,
)
from magacq.pipeline.channels.live_force import FORCES
from magacq.pipeline.channels.lock_channel import STATE as LOCK_STATE
from magacq.pipeline.channels.motor_channel import ACKS, LIMITS
from magacq.pipeline.channels.status import (
    ACQUIRING,
    STATUS,
    STATUS_COLUMNS,
    STATUS_ROWS,
    STOPPING,
    StatusPublisher,
    StatusView,
)
from magacq.pipeline.processes.warmup import KernelCompile
from magacq.pipeline.roster import ROSTER, Spare, Spares, role_of
from magacq.pipeline.start_method import RunContext, start_context
from magacq.pipeline.wiring import (
    LOCK_NAMES,
    MATRICES,
    RunWiring,
    SweepSpec,
    control_primitives,
)

logger = logging.getLogger("magacq")

_STOP_GRACE_S = 0.6  # per stage of the stop sequence; three stages stay under 2 s
#: A segment whose creator is gone is removed by a run (or `magacq clean`) once this old, s.
STALE_AGE_S = 10.0
_KILL_GRACE_S = 1.0  # after a hung child is killed, the others' heartbeats may resume first
_MAX_START_RESTARTS = 3  # per tracker, while warming up, before the run gives up
_STOP_CAP_S = 120.0  # past its grace, a child still beating (parking, draining) gets this long
_PROTOCOL_ASK_S = 2.0  # a protocol asked to stop ends its action within this, or is killed


class StopSignals:
    """SIGINT/SIGTERM set a flag; the main loop stops the run.

    ``after``: the disposition both signals get on exit instead of the previous handlers
    (``signal.SIG_IGN`` for `magacq run`: once the run is over, a late signal must not change
    the process's exit code).
    """

    def __enter__(self) -> "StopSignals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __init__(self, after: Any = None) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}
        self._after = after

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
        else:  # a second Ctrl-C while stopping: the stop goes on, the run keeps its exit code
            logger.info("received %s again: still stopping", signal.Signals(signum).name)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if self._after is None else self._after)


class Run:
    """One acquisition: its buffers and processes. Use :func:`run_acquisition`."""

    def __init__(self, cfg: RunConfig, wiring: RunWiring, session: "Session") -> None:
        self.cfg = cfg
        self.wiring = wiring
        self.ctx = session.ctx
        self.kernels = session.kernels  # the trackers start once it is done
        self.spares = session.spares  # children started before the plan (spawn), for _start
        self.owned: list[
            VideoBuffer | MatrixBuffer | BeadRoiBuffer | LiveProfileBuffer | ZLUTSweepDataset
        ] = []
        self.video: VideoBuffer | None = None
        self.status_buf: MatrixBuffer | None = None
        self.producer: BaseProcess | None = None
        self.writer: BaseProcess | None = None
        self.recorder: BaseProcess | None = None
        self.workers: dict[int, BaseProcess] = {}
        self.protocol: BaseProcess | None = None
        self.protocol_done = False  # the protocol ended by itself: so does the run
        self.error: str | None = None
        self.abort: Callable[[], bool] = lambda: False
        self.restarts: deque[float] = deque()  # when trackers were restarted (monotonic)
        self.progress = (-1.0, 0.0)  # the camera's frame count, and when it last changed
        self.next_kill = 0.0  # kill_hung kills no other child before (monotonic)
        # a calibration's trackers profile its sweep (magacq.pipeline.processes.sweep)
        self.tracker_role = "profiler" if wiring.sweep is not None else "tracker"
        self.dataset: ZLUTSweepDataset | None = None  # a calibration's profiles

    # --- buffers ------------------------------------------------------------------------
    def create_buffers(self) -> None:
        w, g = self.wiring, self.wiring.geometry
        self.video = VideoBuffer(
            create=True,
            locks=w.locks,
            n_stacks=w.video.n_stacks,
            width=g.width,
            height=g.height,
            n_images=w.video.n_images,
            bits=g.bits,
            namespace=w.namespace,
            groups=w.video_groups or None,
        )
        self.owned.append(self.video)
        for name, rows in w.matrix_rows.items():
            buf = MatrixBuffer(
                create=True,
                locks=w.locks,
                name=name,
                shape=(rows, MATRICES[name]),
                overwrite=name in (ACKS, LIMITS, FORCES, LOCK_STATE),
                namespace=w.namespace,
            )
            self.owned.append(buf)
        self.status_buf = MatrixBuffer(
            create=True,
            locks=w.locks,
            name=STATUS,
            shape=(STATUS_ROWS, len(STATUS_COLUMNS)),
            overwrite=True,
            namespace=w.namespace,
        )
        self.owned.append(self.status_buf)
        rb = BeadRoiBuffer(create=True, locks=w.locks, capacity=max(64, 2 * len(w.rois)),
                           namespace=w.namespace)  # fmt: skip
        self.owned.append(rb)
        rb.replace_beads({i: (x0, x1, y0, y1) for i, x0, x1, y0, y1 in w.rois})
        rb.set_reference([i for i in self.cfg.beads.reference if i < len(w.rois)])  # for the view
        self.owned.append(LiveProfileBuffer(create=True, locks=w.locks,
                                            profile_capacity=w.tracking.roi_size,
                                            namespace=w.namespace))  # fmt: skip
        if w.sweep is not None:
            self._create_dataset(w.sweep)
        elif self.cfg.tracking.zlut is not None:
            self._publish_zlut()

    def _create_dataset(self, sweep: SweepSpec) -> None:
        """The calibration's ZLUTSweepDataset: room for every profile of the sweep, and for
        the stacks that killed profilers may have written before theirs were requeued."""
        from magacq.tracking import ProfileSpec

        n_beads, per_stack = len(self.wiring.rois), sweep.profiles_per_step
        again = self.cfg.supervision.max_restarts + 1
        self.dataset = ZLUTSweepDataset.create(
            locks=self.wiring.locks,
            capacity=(len(sweep.positions) + again) * n_beads * per_stack,
            profile_length=ProfileSpec.for_roi(self.cfg.tracking.roi_size).n_radii,
            n_steps=len(sweep.positions),
            n_beads=n_beads,
            profiles_per_bead=sweep.profiles_per_step,
            name=sweep.dataset,
            namespace=self.wiring.namespace,
        )
        self.owned.append(self.dataset)
        self.dataset.set_state(self.dataset.STATE_CAPTURING)

    def _publish_zlut(self) -> None:
        """The Z-LUT the trackers use, as one MatrixBuffer a viewer can read (written once)."""
        from magacq.runfile import ZLUT_BUFFER, load_zlut, zlut_rows

        rows = zlut_rows(load_zlut(self.cfg.tracking.zlut))
        if not len(rows):
            return
        buf = MatrixBuffer(create=True, locks=self.wiring.locks, name=ZLUT_BUFFER,
                           shape=rows.shape, namespace=self.wiring.namespace)  # fmt: skip
        self.owned.append(buf)
        buf.write(rows)

    def close(self) -> None:
        """Once its processes are gone: unlink every buffer, close the control flags."""
        for buf in reversed(self.owned):
            try:
                buf.close()
            except Exception as exc:  # keep closing the others
                logger.warning("closing %r failed: %s", buf, exc)
        self.owned.clear()
        self.wiring.close()

    # --- processes ----------------------------------------------------------------------
    def _start(self, role: str, *args: Any, name: str | None = None) -> Any:
        """Start a child of ``role`` (:data:`~magacq.pipeline.roster.ROSTER`), or hand the
        run to its spare; its heartbeat slot starts in the start-up state (so a child that
        hangs before its first beat is noticed too)."""
        index = args[0] if args else None
        self.wiring.beats.starting(ROSTER[role].slot + (index or 0))
        p = self.spares.take(role, index, self._fields())
        if p is None:
            target = ROSTER[role].target()
            p = self.ctx.Process(target=target, args=(self.wiring, *args), name=name or role,
                                 daemon=True)  # fmt: skip
            p.start()
        return p

    def _fields(self) -> dict[str, Any]:
        """The wiring's fields that a spare does not have yet: all but the controls."""
        return {f.name: getattr(self.wiring, f.name) for f in dataclasses.fields(self.wiring)
                if f.name not in self.spares.controls}  # fmt: skip

    def _writer_failed(self) -> bool:
        return self.writer is not None and not self.writer.is_alive()

    def start(self) -> None:
        """Start the children at once: the trackers import while the compile child works and
        load its kernels once it is done (``wiring.compiled``); the producer opens the camera
        meanwhile and starts it once every tracker and the recorder are ready (``wiring.go``)."""
        self.producer = self._start("producer")  # first: opening a camera takes longest
        for i in range(self.cfg.tracking.workers):  # they wait for the compile child
            self.workers[i] = self._start(self.tracker_role, i, name=f"tracker-{i}")
        if self.wiring.writer is not None:  # a calibration writes no run file
            self.writer = self._start("writer")
        if self.wiring.recorder is not None:
            self.recorder = self._start("recorder")
        restarts = 0

        def still_starting() -> bool:
            """One wait's checks (a dead child, a tracker dying at every start); False: the
            run was stopped meanwhile."""
            nonlocal restarts
            if self.abort():
                return False
            self._check_starting()
            # a child stopped while it starts (start_timeout_s) is killed; a tracker that dies
            # warming up is restarted as one that dies later
            restarts += self.kill_hung(warming_up=True)
            if restarts > _MAX_START_RESTARTS * len(self.workers):
                why = self._child_error() or "see the log"
                raise RunError(f"trackers died {restarts} times while warming up: {why}")
            if self.error:
                raise RunError(self.error)
            return True

        while not self.kernels.wait(0.25):  # compiled once, the trackers load them from disk
            if not still_starting():
                return
        logger.debug("tracking kernels compiled (or found in the disk cache)")
        self.wiring.compiled.set()
        # trackers load their kernels, the recorder opens its file, before frames flow
        for _ in range(len(self.workers) + (self.recorder is not None)):
            while not self.wiring.ready.acquire(timeout=0.25):
                if not still_starting():
                    return
        self.wiring.go.set()

    def _check_starting(self) -> None:
        """While starting: a writer, recorder or producer that died fails the run, with its
        reason (a camera that does not open, a file that cannot be made)."""
        for name, p in (("writer", self.writer), ("recorder", self.recorder),
                        ("producer", self.producer)):  # fmt: skip
            if p is not None and not p.is_alive():
                raise RunError(self._child_error() or f"the {name} failed while starting")

    def start_protocol(self) -> None:
        """Start the protocol process (once the camera acquires)."""
        self.wiring.stats.set("protocol_t0", time.monotonic())
        self.protocol = self._start("protocol")

    def protocol_overdue(self) -> bool:
        """A script protocol ran past its ``timeout_s`` (sets the run's error)."""
        spec, t0 = self.wiring.protocol, self.wiring.stats.get("protocol_t0")
        if spec is None or spec.timeout_s is None or not t0 or self.protocol_done:
            return False
        if time.monotonic() - t0 <= spec.timeout_s:
            return False
        self.error = self.error or f"the protocol script ran past its {spec.timeout_s:g} s timeout"
        return True

    def _restart_dead_trackers(self, warming_up: bool = False) -> int:
        """Restart every tracker that died (its claimed stacks requeued); return how many.
        More than ``supervision.max_restarts`` within its window fail the run instead."""
        policy = self.cfg.supervision
        dead = [(i, p) for i, p in self.workers.items() if not p.is_alive()]
        for i, p in dead:
            p.join()
            self.wiring.beats.clear(TRACKER0 + i)
            assert self.video is not None  # made by create_buffers, before any child
            recovered = self.video.reclaim_dead_claims(requeue=True)
            self.wiring.stats.add("stacks_lost", len(recovered))
            now = time.monotonic()
            self.restarts.append(now)
            while now - self.restarts[0] > policy.restart_window_s:
                self.restarts.popleft()
            if len(self.restarts) > policy.max_restarts:
                why = self._child_error() or f"exit code {p.exitcode}"
                self.error = self.error or (
                    f"trackers died {len(self.restarts)} times within "
                    f"{policy.restart_window_s:g} s (supervision.max_restarts "
                    f"{policy.max_restarts}); the last: {why}"
                )
                del self.workers[i]
                continue
            self.wiring.stats.add("worker_restarts")
            logger.warning(
                "tracker %d died%s (exit code %s); %d claimed stack(s) requeued; restarting",
                i, " while warming up" if warming_up else "", p.exitcode, len(recovered),
            )  # fmt: skip
            self.workers[i] = self._start(self.tracker_role, i, name=f"tracker-{i}")
        return len(dead)

    def _children(self) -> dict[int, BaseProcess]:
        """The live children by heartbeat slot."""
        slots = {PRODUCER: self.producer, WRITER: self.writer, RECORDER: self.recorder,
                 PROTOCOL: self.protocol}  # fmt: skip
        slots.update({TRACKER0 + i: p for i, p in self.workers.items()})
        return {k: p for k, p in slots.items() if p is not None and p.is_alive()}

    def kill_hung(self, warming_up: bool = False) -> int:
        """Kill every child whose heartbeat is older than its limit (SIGSTOPped, deadlocked, in
        a driver call that never returns); a tracker is then restarted, any other fails the
        run, named, with the reason. Returns the trackers restarted (dead or hung)."""
        policy = self.cfg.supervision
        now = time.monotonic()
        overdue = []
        for slot, p in self._children().items():
            silent, starting = self.wiring.beats.silence(slot, now)
            limit = policy.start_timeout_s if starting else policy.hang_timeout_s
            if silent > limit:
                overdue.append((silent - limit, slot, p, silent, starting))
        # One at a time, the longest overdue first: a child hung while holding a buffer's lock
        # stops the others that wait for it, and they resume once it is killed.
        if overdue and now >= self.next_kill:
            _, slot, p, silent, starting = max(overdue, key=lambda o: o[0])
            what = "starting up" if starting else "running"
            message = f"the {slot_name(slot)} hung ({what}, no heartbeat for {silent:.1f} s)"
            logger.error("%s; killing it", message)
            p.kill()
            p.join(2.0)
            self.next_kill = time.monotonic() + _KILL_GRACE_S
            if not role_of(slot).restart:  # the roster: this role's hang ends the run
                self.error = self.error or message
        return self._restart_dead_trackers(warming_up)

    def camera_silent(self) -> None:
        """Fail the run when the camera has delivered no frame for ``camera_timeout_s``, not
        counting the time the producer keeps it idle by plan (``camera_resting``)."""
        stats, limit = self.wiring.stats, self.cfg.supervision.camera_timeout_s
        if not stats.get("acquiring"):
            return
        count = stats.get("frames") + stats.get("dropped") + stats.get("camera_gaps")
        now = time.monotonic()
        if count != self.progress[0] or stats.get("camera_resting"):
            self.progress = (count, now)
        elif not count and now - self.progress[1] > self.cfg.supervision.start_timeout_s:
            self.error = self.error or (
                f"the camera delivered no frame in the {self.cfg.supervision.start_timeout_s:g} "
                "s after it started (supervision.start_timeout_s)"
            )
        elif count and now - self.progress[1] > limit:
            self.error = self.error or f"the camera delivered no frame for {limit:g} s"

    def watch(self, timeout: float) -> None:
        """Wait up to ``timeout`` for a child to exit; restart dead trackers, note failures."""
        if self.producer is None:
            return
        procs = [self.producer, self.writer, self.recorder, self.protocol, *self.workers.values()]
        ready = mp.connection.wait([p.sentinel for p in procs if p is not None], timeout)
        self.kill_hung()
        self.camera_silent()
        if not ready:
            return
        if self.recorder is not None and not self.recorder.is_alive():
            self._recorder_died()
        p = self.protocol
        if p is not None and not p.is_alive() and not self.protocol_done:
            if p.exitcode == 0 and self.wiring.stats.get("protocol_ended"):
                self.protocol_done = True
            elif p.exitcode == 0:
                self.error = self.error or "the protocol process exited before its protocol ended"
            else:
                self.error = (
                    self.error
                    or self._child_error()
                    or (f"the protocol process died (exit code {p.exitcode})")
                )
        if self._writer_failed() and not self.wiring.writer_finish.is_set():
            assert self.writer is not None
            self.error = (
                self.error
                or self._child_error()
                or f"the writer process died (exit code {self.writer.exitcode})"
            )
        # exit code 0: a finite camera (e.g. replay) delivered all its frames
        if (not self.producer.is_alive() and not self.wiring.stop.is_set()
                and self.producer.exitcode != 0):  # fmt: skip
            self.error = (
                self.error
                or self._child_error()
                or (f"the producer process stopped (exit code {self.producer.exitcode})")
            )

    def _recorder_died(self) -> None:
        """Stop the run (a full disk always; its death as ``on_recorder_exit`` says), or go on
        tracking: a recorder that discards every stack takes its place in the ring."""
        from magacq.pipeline.processes.recorder import EXIT_FAILED

        p = self.recorder
        assert p is not None
        p.join()
        if self.wiring.workers_stop.is_set() or p.exitcode == 0:
            self.recorder = None
            return
        if p.exitcode == EXIT_FAILED:
            self.error = self.error or self._child_error() or "the recorder failed"
            self.recorder = None
            return
        died = f"the recorder died (exit code {p.exitcode})"
        if self.cfg.output.video.on_recorder_exit == "stop":
            self.error = self.error or f"{died}; video saved up to its last flush"
            self.recorder = None
            return
        assert self.video is not None  # a recorder records the video buffer
        lost = self.video.reclaim_dead_claims(requeue=True)
        self.wiring.stats.add("recorder_restarts")
        logger.warning("%s; tracking goes on without video (%d claimed stack(s) requeued)",
                       died, len(lost))  # fmt: skip
        self.recorder = self._start("recorder", True)

    def _child_error(self) -> str | None:
        try:
            while True:
                kind, _role, message = self.wiring.events.get(timeout=0.2)
                if kind == "error":
                    return message
        except Exception:  # queue.Empty
            return None

    def stop_protocol(self) -> None:
        """End the protocol first, while the devices still run: asked, then killed (a script
        that does not return, a hung process). The devices process parks the magnets."""
        p, w = self.protocol, self.wiring
        if p is None or not p.is_alive():
            return
        w.protocol_stop.set()
        p.join(_PROTOCOL_ASK_S)
        if p.is_alive():
            logger.warning("the protocol did not stop within %g s when asked; killing it",
                           _PROTOCOL_ASK_S)  # fmt: skip
            p.kill()
            p.join(1.0)

    def stop(self, state: str) -> None:
        """Stop everything: the protocol, the producer (it parks the magnets), then workers,
        the recorder, then the writer. Each gets a short grace, longer while it beats (a
        child still busy, not hung); one that must be killed fails the run."""
        w = self.wiring
        self.stop_protocol()
        w.stop.set()
        killed = [self._join(self.producer, PRODUCER, _STOP_GRACE_S)]
        w.workers_stop.set()
        killed += [self._join(p, TRACKER0 + i, 1.2) for i, p in self.workers.items()]
        killed.append(self._join(self.recorder, RECORDER, 3.0))  # it records queued stacks
        if self.video is not None:
            lost = self.video.reclaim_dead_claims(requeue=False)
            w.stats.add("stacks_lost", len(lost))
        if any(killed):
            names = ", ".join(k for k in killed if k)
            self.error = self.error or f"{names} did not stop (hung); killed"
        w.final_state.value = (state if not self.error else "failed").encode()[:31]
        w.final_error.value = (self.error or "").encode()[:1023]
        w.writer_finish.set()
        if self._join(self.writer, WRITER, 2.0):
            self.error = self.error or "the writer did not finish (hung); killed"
        if self.writer is not None and self.writer.exitcode not in (0, None) and w.writer:
            self._close_abandoned(w.writer.path)
        if w.writer and w.recorder and self.writer is not None and not self.writer.is_alive():
            self._reconcile_video(Path(w.writer.path), self.writer.exitcode != 0)

    def _join(self, p: BaseProcess | None, slot: int, grace: float) -> str | None:
        """Wait for ``p`` to end: ``grace`` seconds, and beyond while its heartbeat is fresh;
        kill it when it is silent past its limit. Returns its name when it was killed."""
        if p is None:
            return None
        policy = self.cfg.supervision
        deadline = time.monotonic() + grace
        while True:
            p.join(0.05)
            if not p.is_alive():
                return None
            silent, starting = self.wiring.beats.silence(slot)
            limit = policy.start_timeout_s if starting else policy.hang_timeout_s
            now = time.monotonic()
            if now > deadline and (silent > limit or now > deadline + _STOP_CAP_S):
                break
        logger.warning("the %s did not stop in time; killing it", slot_name(slot))
        p.kill()
        p.join(1.0)
        return slot_name(slot)

    def _reconcile_video(self, path: Path, unlisted: bool) -> None:
        """List in the run file exactly the frames of the video file (a writer that stopped
        before the recorder never read its last reports; ``unlisted``: nor listed the frames
        nobody reported)."""
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        from magacq.runfile import clear_write_flags, reconcile_video

        try:  # in a child: HDF5 failing on a full disk can crash its process at exit
            with ProcessPoolExecutor(1, mp_context=self.ctx) as pool:
                done = pool.submit(reconcile_video, path, unlisted=unlisted).result()
        except (OSError, RuntimeError, KeyError, BrokenProcessPool) as exc:
            logger.warning("could not match %s's video_frames to its video: %s", path.name, exc)
            with contextlib.suppress(OSError):  # a failed write leaves the file flagged open
                clear_write_flags(path)
            return
        if any(done):
            logger.info("video_frames of %s matched to its video: %d listed, %d moved to "
                        "video_skipped, %d cut from the video, %d listed nowhere now skipped",
                        path.name, *done)  # fmt: skip

    def _close_abandoned(self, path: str) -> None:
        """The writer died without closing the file: mark it failed, with the reason."""
        from magacq.runfile import close_abandoned

        try:
            if close_abandoned(path, {"state": "failed", "error": self.error or "writer died"}):
                logger.info("closed the dead writer's file %s as failed", path)
        except (OSError, RuntimeError) as exc:  # a damaged or missing file: it says `running`
            logger.warning("could not mark %s as failed: %s", path, exc)


@dataclass
class Session:
    """What every kind of run (`magacq run`, `magacq calibrate`) is started in: the start
    method, the terminal, the log listener, the children's event queue, the stop signals and
    the kernels' compile child (:func:`run_session`)."""

    ctx: RunContext
    console: Console
    logs: RunLogging
    events: "Queue[Any]"
    signals: StopSignals
    kernels: KernelCompile
    spares: Spares  # the run's control primitives, and its children started early (spawn)

    def wiring(self, **fields: Any) -> RunWiring:
        """The run's wiring: the session's control primitives and ``fields``."""
        return RunWiring(**self.spares.controls, **fields)


@contextmanager
def run_session(
    tracking: TrackingConfig,
    debug: bool,
    *,
    groups: tuple[str, ...] = (),
    extra_locks: tuple[str, ...] = (),
    spares: Sequence[Spare] = (),
) -> Iterator[Session]:
    """Start a session (logging, signals, the kernels' compile for ``tracking``, the run's
    control primitives with locks for every buffer of a run, the VideoBuffer's consumer
    ``groups`` and ``extra_locks``, and under spawn the children of roles ``spares``); end it.

    SIGINT and SIGTERM stop the run from the start (a second one while stopping changes
    nothing) and are ignored once it is over, so the exit code is the run's."""
    ctx = start_context()
    console = Console(stderr=True)
    logs = RunLogging(console, debug=debug, ctx=ctx)
    logs.start()
    events: Queue[Any] = ctx.Queue()
    try:
        with StopSignals(after=signal.SIG_IGN) as signals:
            kernels = KernelCompile(ctx, tracking)  # forked before any device is opened
            controls = {
                "locks": make_locks(*LOCK_NAMES, *extra_locks, context=ctx, groups=groups),
                **control_primitives(ctx, logs, events),
            }
            early = Spares(ctx, controls, spares)
            try:
                yield Session(ctx, console, logs, events, signals, kernels, early)
            finally:
                early.close()
                kernels.close()
    finally:
        events.close()
        events.join_thread()
        logs.stop()


def remove_stale(min_age_s: float = STALE_AGE_S) -> None:
    """Remove the segments of crashed runs, in any namespace, once ``min_age_s`` old: those
    of this registry, and (Linux) those whose registry record was lost (`magacq clean`)."""
    removed = remove_stale_segments(min_age_s=min_age_s)
    orphans = remove_orphan_segments(min_age_s=min_age_s) or ()
    if removed or orphans:
        logger.info("removed %d stale segment(s) of crashed runs", len(removed) + len(orphans))


def supervise(run: Run, session: Session) -> str:
    """Start the run's processes, watch them until the end, stop them; return the final
    state: ``complete`` (the duration is up, the protocol ended, a finite camera or a sweep is
    done), ``interrupted`` (a signal) or ``failed`` (``run.error`` says why)."""
    cfg, console, signals, w = run.cfg, session.console, session.signals, run.wiring
    plan = w.protocol.plan if w.protocol is not None else None
    steps = tuple(a.describe() for a in plan.actions) if plan is not None else ()
    sweep = len(w.sweep.positions) if w.sweep is not None else 0
    duration = None if sweep else cfg.duration  # a calibration ends with its sweep
    view = StatusView(w.stats, len(w.rois), cfg.tracking.workers, duration, steps,
                      recording=w.recorder is not None, sweep=sweep)  # fmt: skip
    published = StatusPublisher(
        run.status_buf, view
    )  # for `magacq view` (magacq.pipeline.channels.status)
    published.publish()
    state = "failed"  # until the run ends as it should
    run.abort = lambda: signals.received is not None
    live = Live(view, console=console, refresh_per_second=4, transient=False)
    try:
        run.start()
        if console.is_terminal:
            live.start()
        started = False
        end: float | None = None  # when the duration is up (monotonic), once started
        last_line = time.monotonic()
        while True:
            run.watch(0.25 if end is None else min(0.25, max(0.0, end - time.monotonic())))
            published.publish()
            if signals.received is not None:
                state = "interrupted"
                logger.info("received %s: stopping", signal.Signals(signals.received).name)
                break
            if run.error:
                break
            if run.producer is None or not run.producer.is_alive():  # a finite camera ended
                run.watch(0)  # ... or failed since the last watch: that sets run.error
                state = "complete"
                break
            if not started and (t0 := run.wiring.stats.get("acquiring")):
                started = True  # the duration counts from the camera's start (t0)
                end = None if duration is None else t0 + duration
                view.restart_clock()
                published.state = ACQUIRING
            wanted = run.wiring.protocol is not None or run.wiring.feedback is not None
            want_protocol = wanted and run.protocol is None
            if want_protocol and started and run.wiring.stats.get("frames") > 0:
                run.start_protocol()  # once frames are stored: each event gets its frame
            if run.protocol_done:
                logger.info("protocol ended: stopping the run")
                state = "complete"
                break
            if run.protocol_overdue():
                break
            if end is not None and time.monotonic() >= end:
                state = "complete"
                break
            if not console.is_terminal and time.monotonic() - last_line > 5:
                logger.info(view.line())
                last_line = time.monotonic()
    except BaseException as exc:  # recorded in the file as what ended the run
        run.error = run.error or (str(exc) or type(exc).__name__)
        raise
    finally:
        published.state = STOPPING
        published.publish()
        run.stop(state if not run.error else "failed")
        if console.is_terminal:
            live.stop()
    logger.info(view.line())
    return state
