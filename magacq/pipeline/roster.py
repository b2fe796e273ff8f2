"""The roster of a run's children: each role once, with its entry point, its heartbeat slot
and what its death or hang means for the run. The supervisor starts children and applies
these policies from here, and nowhere else names them."""

import contextlib
import importlib
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from magacq.pipeline.channels.heartbeat import PRODUCER, PROTOCOL, RECORDER, TRACKER0, WRITER


@dataclass(frozen=True)
class Role:
    """One kind of child process of a run."""

    name: str
    entry: str  # "module:function", called with the RunWiring (and the role's arguments)
    slot: int  # its heartbeat slot (a tracker ``i``: ``slot + i``)
    restart: bool  # dead or hung: restarted (its stacks requeued), up to the restart limit
    on_death: str  # what its death or hang does to the run otherwise
    kernels: bool = False  # runs numba kernels (a spare sets numba up while it waits)

    def target(self) -> Callable[..., Any]:
        module, function = self.entry.split(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


_P = "magacq.pipeline.processes"
ROSTER = {
    role.name: role
    for role in (
        Role("producer", f"{_P}.devices:run_producer", PRODUCER, False,
             "ends the run failed (an exit 0 is a finite camera's end)", kernels=True),
        Role("writer", f"{_P}.writer:run_writer", WRITER, False,
             "ends the run failed; the supervisor closes its file"),
        Role("recorder", f"{_P}.recorder:run_recorder", RECORDER, False,
             "ends the run failed (output.video.on_recorder_exit: continue restarts it, "
             "without video)"),
        Role("protocol", f"{_P}.protocol_runner:run_protocol", PROTOCOL, False,
             "ends the run failed (an exit 0 without the protocol's end too); the devices "
             "process parks the magnets"),
        Role("tracker", f"{_P}.tracker:run_worker", TRACKER0, True,
             "restarted, its stacks requeued; too many restarts end the run failed",
             kernels=True),
        Role("profiler", f"{_P}.sweep:run_profiler", TRACKER0, True,
             "a calibration's tracker: restarted as a tracker is; profiles it lost fail the "
             "calibration at its end"),
    )
}  # fmt: skip


def role_of(slot: int) -> Role:
    """The role of a heartbeat slot (trackers and profilers share theirs, and their policy)."""
    if slot >= TRACKER0:
        return ROSTER["tracker"]
    return next(r for r in ROSTER.values() if r.slot == slot)


@dataclass(frozen=True)
class Spare:
    """A child to start before its run is planned: its role, a tracker's index, and the
    device drivers (kind, name) whose modules it imports meanwhile (those it will open)."""

    role: str
    index: int | None = None
    drivers: tuple[tuple[str, str], ...] = ()


def await_run(controls: dict[str, Any], conn: Any, spare: Spare) -> None:
    """Entry of a spare: a child started (spawn) before its run is planned, so that its
    imports overlap the camera's probe. It imports its role's module and drivers, then takes
    the run's other fields from ``conn``; none (the run never started, or the supervisor
    died): it exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's (enter_child)
    target = ROSTER[spare.role].target()
    if ROSTER[spare.role].kernels:  # numba's CPU target, set up at a process's first kernel
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    from magacq.config import driver_class
    from magacq.pipeline.wiring import RunWiring

    for kind, name in spare.drivers:
        with contextlib.suppress(Exception):  # the probe reports a driver that fails to load
            driver_class(kind, name)
    try:
        fields = conn.recv()
    except (EOFError, OSError):
        return
    finally:
        conn.close()
    target(RunWiring(**controls, **fields), *(() if spare.index is None else (spare.index,)))


class Spares:
    """The children of a run started before it is planned, under spawn: a spawned child
    spends most of its start importing (numpy, numba, pydantic, the role's module), which
    then overlaps the supervisor's camera probe. Their control primitives are made here, at
    once (multiprocessing hands those over only when a child starts); the run's other fields
    follow, pickled, when the run starts a role (:meth:`take`). Forked children inherit the
    probe's imports instead: there are no spares."""

    def __init__(self, ctx: Any, controls: dict[str, Any], spares: Sequence[Spare]) -> None:
        self.controls = controls
        self._spares: dict[tuple[str, int | None], tuple[Any, Any]] = {}
        if ctx.get_start_method() == "fork":
            return
        for spare in spares:
            conn, send = ctx.Pipe(duplex=False)
            name = spare.role if spare.index is None else f"{spare.role}-{spare.index}"
            p = ctx.Process(target=await_run, args=(controls, conn, spare), name=name,
                            daemon=True)  # fmt: skip
            p.start()
            conn.close()
            self._spares[spare.role, spare.index] = (p, send)

    def take(self, role: str, index: int | None, fields: dict[str, Any]) -> Any:
        """The spare of ``role`` (tracker ``index``), handed the run's ``fields``; None where
        there is none (or it died: the caller starts a child of its own)."""
        spare = self._spares.pop((role, index), None)
        if spare is None:
            return None
        p, send = spare
        if not p.is_alive():
            send.close()
            p.join()
            return None
        # in a thread: a spare that is stopped (SIGSTOP) must not block the supervisor on a
        # full pipe; the supervisor's hang check kills it, which ends the send
        threading.Thread(target=_hand_over, args=(send, fields), daemon=True).start()
        return p

    def close(self) -> None:
        """End the spares never taken (the run failed before it started): each sees its pipe
        closed and exits; killed after a short grace."""
        for _, send in self._spares.values():
            send.close()
        for p, _ in self._spares.values():
            p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join()
        self._spares.clear()


def _hand_over(send: Any, fields: dict[str, Any]) -> None:
    try:
        send.send(fields)
    except OSError:  # the spare died meanwhile: the supervisor sees it as a dead child
        pass
    finally:
        send.close()
