"""Finding the runs on this host a viewer can attach to.

A run is a shared-memory namespace holding a VideoBuffer whose creator (the run's supervisor) is
still alive. Segments are named ``magacq.<namespace>.<name>``, so the namespace is read straight
off the segment name; nothing is attached to find them.
"""

from dataclasses import dataclass

import psutil

from buffers import SEGMENT_PREFIX, default_namespace, list_segments

VIDEO_KIND = "VideoBuffer"


class ViewError(Exception):
    """The viewer cannot start: no run, several runs and none chosen, a run that vanished."""


@dataclass(frozen=True)
class RunInfo:
    """One live run on this host."""

    namespace: str
    owner_pid: int
    segments: tuple[str, ...]


def find_runs() -> list[RunInfo]:
    """Every live run on this host, sorted by namespace.

    Returns
    -------
    list of RunInfo
        One entry per namespace whose VideoBuffer's creator is alive.
    """
    by_ns: dict[str, list] = {}
    for info in list_segments():
        parts = info.name.split(".", 2)
        if len(parts) == 3 and parts[0] == SEGMENT_PREFIX:
            by_ns.setdefault(parts[1], []).append(info)
    runs = []
    for ns, infos in sorted(by_ns.items()):
        video = [i for i in infos if i.kind == VIDEO_KIND and i.owner_alive]
        if video:
            names = tuple(sorted(i.name.split(".", 2)[2] for i in infos))
            runs.append(RunInfo(ns, video[0].owner_pid, names))
    return runs


def mine(runs: list[RunInfo]) -> list[RunInfo]:
    """The runs of this user in this session's namespace (``MAGACQ_NAMESPACE``): those a
    command may attach to unnamed. Another user's run is never commanded by chance."""
    me, prefix = psutil.Process().username(), f"{default_namespace()}-run"
    out = []
    for run in runs:
        try:
            if run.namespace.startswith(prefix) and psutil.Process(run.owner_pid).username() == me:
                out.append(run)
        except psutil.Error:  # gone, or not ours to look at
            continue
    return out


def choose_run(runs: list[RunInfo], requested: str | None) -> RunInfo:
    """The run to attach to: ``requested`` if given, else the only one of :func:`mine`.

    Raises
    ------
    ViewError
        No run, the requested one is not live, or several and none requested (the message lists
        them).
    """
    if requested is not None:
        for run in runs:
            if run.namespace == requested:
                return run
        listed = ", ".join(r.namespace for r in runs) or "none"
        raise ViewError(f"no live run {requested!r} on this host (live runs: {listed})")
    own = mine(runs)
    if not own:
        others = f" ({len(runs)} of other users or sessions: name one with --run)" if runs else ""
        raise ViewError(f"no magacq run of yours is live on this host{others}: start one with "
                        "`magacq run CONFIG`")  # fmt: skip
    if len(own) > 1:
        listed = "\n".join(f"  {r.namespace}  (supervisor pid {r.owner_pid})" for r in own)
        raise ViewError(f"several runs of yours are live; choose one with --run:\n{listed}")
    return own[0]
