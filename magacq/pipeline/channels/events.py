"""The ``events`` MatrixBuffer: the protocol's and the locks' actions on their way to the file.

Rows are float64: time (host ``time.monotonic()``), action index, source step index, action kind
(:data:`ACTIONS`), phase (:data:`PHASES`: 0 start, 1 end, 2 off: a lock switched off), height
mm, rotation turns, focus nm (where the action leaves each axis; NaN where unknown), nominal
force pN, who asked for it (:data:`BY`), and the label's UTF-8 bytes in :data:`LABEL_WORDS`
columns. The writer adds each event's frame: the first frame taken at or after it.

Two processes write events: the protocol process (its steps, its script's moves, the locks) and
the devices process (the moves anyone else commands: ``magacq magnets``, the viewer, a user's
own :class:`~magacq.pipeline.MotorControl`).
"""

import math
import threading
import time

import numpy as np

from buffers import BufferOverflow, MatrixBuffer
from magacq.runfile import EVENTS_DTYPE

EVENTS = "events"
ACTIONS = ("move", "ramp", "hold", "mark", "zlock", "xylock")
PHASES = (b"start", b"end", b"off")
#: Who asked for an action: the protocol's steps, its script, a lock, ``magacq magnets``, the
#: viewer, or a Python program of the user's with its own MotorControl.
BY = ("protocol", "script", "lock", "cli", "view", "python")
LABEL_BYTES = EVENTS_DTYPE["label"].itemsize
LABEL_WORDS = LABEL_BYTES // 8
EVENT_COLUMNS = 10 + LABEL_WORDS
EVENT_ROWS = 4096  # the writer drains every 0.1 s; a protocol makes a few events a second


def encode_label(label: str) -> np.ndarray:
    """``label`` as :data:`LABEL_WORDS` float64 words (UTF-8, cut at a character boundary)."""
    raw = label.encode()[:LABEL_BYTES].decode(errors="ignore").encode()
    return np.frombuffer(raw.ljust(LABEL_BYTES, b"\0"), dtype=np.float64).copy()


def event_records(rows: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``events`` rows as :data:`~magacq.runfile.EVENTS_DTYPE` records, with their ``frames``
    (-1: after the run's last frame)."""
    out = np.zeros(len(rows), dtype=EVENTS_DTYPE)
    out["time"] = rows[:, 0]
    out["frame"] = frames
    out["step"] = rows[:, 1]
    out["source"] = rows[:, 2]
    out["action"] = np.array([a.encode() for a in ACTIONS])[rows[:, 3].astype(int)]
    out["kind"] = np.array(PHASES)[rows[:, 4].astype(int)]
    out["magnet_mm"], out["turns"], out["focus_nm"], out["force_pn"] = rows[:, 5:9].T
    out["by"] = np.array([b.encode() for b in BY])[rows[:, 9].astype(int)]
    words = np.ascontiguousarray(rows[:, 10:], dtype=np.float64)
    out["label"] = words.view(f"S{LABEL_BYTES}").reshape(-1)
    return out


class EventWriter:
    """Writes a process's events into the ``events`` MatrixBuffer (thread-safe)."""

    def __init__(self, buf: MatrixBuffer) -> None:
        self.buf = buf
        self._lock = threading.Lock()

    def write(self, kind: str, phase: str, *, by: str, index: int = -1, source: int = -1,
              height: float = math.nan, rotation: float = math.nan, focus: float = math.nan,
              force: float = math.nan, label: str = "") -> None:  # fmt: skip
        """One event now; waits up to 5 s while the writer is behind (then OverflowError)."""
        row = np.empty((1, EVENT_COLUMNS))
        row[0, :10] = (time.monotonic(), index, source, ACTIONS.index(kind),
                       PHASES.index(phase.encode()), height, rotation, focus, force,
                       BY.index(by))  # fmt: skip
        row[0, 10:] = encode_label(label)
        deadline = time.monotonic() + 5.0
        with self._lock:
            while True:
                try:
                    self.buf.write(row)
                    return
                except BufferOverflow:  # the writer is behind; it drains every 0.1 s
                    if time.monotonic() > deadline:
                        raise OverflowError("the events buffer stayed full for 5 s") from None
                    time.sleep(0.01)
