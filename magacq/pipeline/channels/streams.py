"""The data streams of a run, each defined once: a MatrixBuffer's name, its float64 columns by
name, and a schema version. Every process reads and writes rows through these names
(``POSITIONS.at.z_nm`` is the column of z); no other module numbers their columns.

On the wire a ``positions`` or ``recorded`` row names its frame by the VideoBuffer's sequence
number (``seq``); the writer maps it to the camera's frame number for the file.
"""

from collections import namedtuple
from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Stream:
    """One stream: its buffer's name, its columns in order, its version."""

    name: str
    columns: tuple[str, ...]
    version: int = 1

    @cached_property
    def at(self) -> Any:
        """The columns' indices by name (a namedtuple: ``stream.at.time``; made once)."""
        return namedtuple(f"{self.name.title()}Columns", self.columns)(*range(len(self.columns)))

    @property
    def width(self) -> int:
        return len(self.columns)


POSITIONS = Stream(
    "positions", ("time", "seq", "bead_id", "x_nm", "y_nm", "z_nm", "flag", "t_written")
)
#: The camera frame, its timestamp, the buffer slot's sequence number, where the stages stood,
#: and the host ``time.monotonic()`` when it reached the producer.
FRAMES = Stream(
    "frames",
    ("frame", "timestamp", "seq", "magnet_height_mm", "magnet_rotation_turns", "focus_z_nm",
     "host_time"),
    version=2,
)  # fmt: skip
DROPPED = Stream("dropped", ("frame", "timestamp", "reason"))
TRUTH = Stream(
    "truth",
    ("frame", "bead_id", "x_nm", "y_nm", "z_nm", "force_pn", "extension_nm", "magnet_height_mm",
     "magnet_rotation_turns", "sim_bead"),
)  # fmt: skip
MOTORS = Stream("motors", ("time", "magnet_height_mm", "magnet_rotation_turns", "focus_z_nm"))
RECORDED = Stream("recorded", ("seq", "timestamp", "skipped"))
STREAMS = {s.name: s for s in (POSITIONS, FRAMES, DROPPED, TRUTH, MOTORS, RECORDED)}
