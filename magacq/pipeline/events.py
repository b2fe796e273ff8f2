"""The ``events`` MatrixBuffer: the protocol's and the locks' actions on their way to the file.

Rows are float64: time (host ``time.monotonic()``), action index, source step index, action kind
(:data:`ACTIONS`), phase (:data:`PHASES`: 0 start, 1 end, 2 off: a lock switched off), height
mm, rotation turns, focus nm (where the action leaves each axis; NaN where unknown), nominal
force pN, and the label's UTF-8 bytes in :data:`LABEL_WORDS` columns. The writer adds each
event's frame: the first frame taken at or after it.
"""

import numpy as np

from magacq.runfile import EVENTS_DTYPE

EVENTS = "events"
ACTIONS = ("move", "ramp", "hold", "mark", "zlock", "xylock")
PHASES = (b"start", b"end", b"off")
LABEL_BYTES = EVENTS_DTYPE["label"].itemsize
LABEL_WORDS = LABEL_BYTES // 8
EVENT_COLUMNS = 9 + LABEL_WORDS
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
    words = np.ascontiguousarray(rows[:, 9:], dtype=np.float64)
    out["label"] = words.view(f"S{LABEL_BYTES}").reshape(-1)
    return out
