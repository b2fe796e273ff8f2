"""Idle means idle: a run whose camera delivers nothing uses almost no CPU."""

import os
import signal
import time

import psutil

from magacq.pipeline.channels.status import read_status
from tests.pipeline import _runner as r

MEASURE_S = 4.0
# Every process of the run together, over MEASURE_S: blocking waits cost a few ms a second;
# one spinning process alone would cost MEASURE_S.
CPU_BOUND_S = 0.1 * MEASURE_S


def _cpu_seconds(procs: list[psutil.Process]) -> dict[str, float]:
    """CPU seconds (user + system) of each process, by title."""
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[f"{p.pid} {' '.join(p.cmdline())[:40]}"] = t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return out


def test_run_with_a_silent_camera_uses_almost_no_cpu(tmp_path):
    settings = {"width": 128, "height": 128, "n_beads": 1, "frame_rate": 0.001}
    config = r.write_config(
        tmp_path,
        camera={"driver": "sim", "settings": settings},
        beads={"rois": [[64, 64]]},  # no detection: it would wait for frames
        duration=None,
    )
    proc = r.start(config)
    try:
        r.wait_for_frames(proc)  # the producer runs: trackers are warm
        namespace = f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the camera is open (costly for the sim) and started
            status = read_status(namespace)
            if status is not None and status["frames"] >= 1:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run never stored a frame")
        time.sleep(1.0)  # frame 0 came at once; then nothing for 1000 s
        run = psutil.Process(proc.pid)
        procs = [run, *run.children(recursive=True)]
        assert sum("magacq tracker" in " ".join(p.cmdline()) for p in procs) == 2
        before = _cpu_seconds(procs)
        time.sleep(MEASURE_S)
        after = _cpu_seconds(procs)
        each = {k: round(v - before.get(k, 0.0), 3) for k, v in after.items()}
        used = sum(each.values())
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert used < CPU_BOUND_S, f"{used:.3f} CPU s in {MEASURE_S} s idle: {each}"
    print(f"idle run: {used:.3f} CPU s over {MEASURE_S} s, {len(procs)} processes")
