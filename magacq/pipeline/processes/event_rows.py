"""The protocol process's events: its steps' actions and its locks' corrections, as rows of
the ``events`` channel (:mod:`magacq.pipeline.channels.events`)."""

import math
import time

from buffers import MatrixBuffer
from magacq.pipeline.channels.events import EventWriter
from magacq.pipeline.channels.status import RunStats
from magacq.protocol import Action, ProtocolError


class EventRows:
    """The :class:`~magacq.protocol.EventLog` of the protocol process: its actions' events."""

    def __init__(self, buf: MatrixBuffer, stats: RunStats, by: str) -> None:
        self.out, self.stats, self.by = EventWriter(buf), stats, by

    def event(self, phase: str, index: int, action: Action) -> None:
        targets = dict(action.at)
        self._write(action.kind, phase, index=index, source=action.step,
                    height=targets.get("height", math.nan),
                    rotation=targets.get("rotation", math.nan),
                    focus=targets.get("focus", math.nan), force=action.force_pn,
                    label=action.label)  # fmt: skip
        if phase == "start":
            self.stats.set("protocol_action", index + 1)
            self.stats.set("protocol_started", time.monotonic())

    def lock(self, kind: str, phase: str, focus_nm: float, label: str) -> None:
        """A lock's action (``kind`` zlock or xylock; ``phase`` start: a correction, off: the
        lock switched off), ``focus_nm`` where it leaves the focus."""
        self._write(kind, phase, by="lock", focus=focus_nm, label=label)

    def _write(self, kind: str, phase: str, *, by: str | None = None, **fields: object) -> None:
        try:
            self.out.write(kind, phase, by=by or self.by, **fields)  # type: ignore[arg-type]
        except OverflowError as exc:
            raise ProtocolError(str(exc)) from None
