"""The run's status, published in shared memory, read by a separate program (as `magacq view`)."""

import os
import signal
import time

from magacq.pipeline.channels.status import ACQUIRING, STATUS_COLUMNS, read_status
from tests.pipeline import _runner as r


def test_status_is_published_while_running_and_gone_after(tmp_path):
    config = r.write_config(tmp_path, duration=None)
    proc = r.start(config)
    namespace = f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}"
    try:
        r.wait_for_frames(proc)
        first = read_status(namespace)
        time.sleep(1.0)
        later = read_status(namespace)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert first is not None and later is not None
    assert set(later) == set(STATUS_COLUMNS)
    assert later["state"] == ACQUIRING and later["t"] > first["t"]
    assert later["frames"] > first["frames"] > 0 and later["fps"] > 0
    assert later["stacks_tracked"] > 0 and later["dropped"] == 0
    assert later["n_beads"] == 3 and later["n_workers"] == 2
    assert 0 <= later["buffer_level"] <= 1 and later["latency_p99"] >= later["latency_p50"] > 0
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["frames_stored"] >= later["frames"]
    assert read_status(namespace) is None  # unlinked with the run's buffers
