"""The roster of a run's children: each role once, with its entry point, its heartbeat slot
and what its death or hang means for the run. The supervisor starts children and applies
these policies from here, and nowhere else names them."""

import importlib
from collections.abc import Callable
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

    def target(self) -> Callable[..., Any]:
        module, function = self.entry.split(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


_P = "magacq.pipeline.processes"
ROSTER = {
    role.name: role
    for role in (
        Role("producer", f"{_P}.devices:run_producer", PRODUCER, False,
             "ends the run failed (an exit 0 is a finite camera's end)"),
        Role("writer", f"{_P}.writer:run_writer", WRITER, False,
             "ends the run failed; the supervisor closes its file"),
        Role("recorder", f"{_P}.recorder:run_recorder", RECORDER, False,
             "ends the run failed (output.video.on_recorder_exit: continue restarts it, "
             "without video)"),
        Role("protocol", f"{_P}.protocol_runner:run_protocol", PROTOCOL, False,
             "ends the run failed (an exit 0 without the protocol's end too); the devices "
             "process parks the magnets"),
        Role("tracker", f"{_P}.tracker:run_worker", TRACKER0, True,
             "restarted, its stacks requeued; too many restarts end the run failed"),
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
