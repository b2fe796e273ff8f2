"""Bounded memory over hours (issue 26): the writer's state does not grow with the run.

The writer's own drain (:func:`magacq.pipeline.processes.writer._drain`) takes minutes of a
500 frames/s run from real MatrixBuffers into a real run file; what it keeps between drains (the
frame map, the camera clock's fit, the latency figures, the drift) must be the same size after
8 minutes as after 2.
"""

import numpy as np

from buffers import MatrixBuffer
from magacq.pipeline.channels.streams import FRAMES, POSITIONS
from magacq.pipeline.processes.clock import Latency
from magacq.pipeline.processes.frame_map import FrameMap
from magacq.pipeline.processes.writer import _drain, _Drift
from magacq.runfile import ROIS_DTYPE, RunFile

RATE, BEADS = 500, 2


def _size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of the arrays, and items of the lists, dicts and sets, that ``obj`` holds."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, RunFile):
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return len(obj) + sum(_size(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple | set):
        return len(obj) + sum(_size(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return _size(vars(obj), seen)
    return 0


def test_the_writers_state_stays_the_same_size_through_a_long_run(tmp_path):
    rf = RunFile(tmp_path / "run.h5", {}, np.zeros(BEADS, ROIS_DTYPE), with_truth=False)
    frames = MatrixBuffer(create=True, name="frames", shape=(4 * RATE, FRAMES.width))
    positions = MatrixBuffer(
        create=True, name="positions", shape=(4 * RATE * BEADS, POSITIONS.width)
    )
    latency, fmap, drift = Latency(), FrameMap(), _Drift(rf, [0])
    state = (latency, fmap, drift)
    sizes = {}
    try:
        buffers = {"frames": frames, "positions": positions}
        for second in range(8 * 60):  # a drain a second, the trackers a second behind
            fn = np.arange(second * RATE, (second + 1) * RATE)
            host = 100.0 + fn / RATE
            rows = np.zeros((RATE, FRAMES.width))
            rows[:, [FRAMES.at.frame, FRAMES.at.seq]] = fn[:, None]
            rows[:, FRAMES.at.timestamp] = fn / RATE
            rows[:, FRAMES.at.host_time] = host
            frames.write(rows)
            if second:
                tracked = np.repeat(fn - RATE, BEADS)
                pos = np.zeros((len(tracked), POSITIONS.width))
                pos[:, POSITIONS.at.seq] = tracked
                pos[:, POSITIONS.at.bead_id] = np.tile(np.arange(BEADS), RATE)
                pos[:, POSITIONS.at.t_written] = host[-1] + 0.01
                positions.write(pos)
            _drain(rf, buffers, latency, fmap, drift)
            if second + 1 in (2 * 60, 8 * 60):
                sizes[second + 1] = _size(state)
        assert len(rf.tables["tracks"]) == (8 * 60 - 1) * RATE * BEADS  # all went to the file
        assert sizes[8 * 60] <= sizes[2 * 60]
    finally:
        rf.close({})
        frames.close()
        positions.close()
