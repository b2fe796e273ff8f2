"""End-to-end: the real `magacq run` CLI, real processes, shared memory and HDF5 files."""

import signal

import numpy as np
import psutil
import pytest

from tests.pipeline import _runner as r


def _check_complete(data: dict, state: str = "complete") -> None:
    attrs = data["attrs"]
    assert attrs["schema"] == "magacq.run" and attrs["schema_version"] == 2
    assert attrs["state"] == state
    assert attrs["frames_stored"] == len(data["frames"]) > 0
    frames = data["frames"]["frame"]
    assert np.all(np.diff(frames) > 0)  # every stored frame once, in order
    tracks = data["tracks"]
    # every tracked frame is a stored one, each with one row per bead
    assert np.isin(tracks["frame"], frames).all()
    _, counts = np.unique(tracks["frame"], return_counts=True)
    assert (counts == len(data["rois"])).all()


def test_short_run_matches_ground_truth(tmp_path):
    config = r.write_config(tmp_path)
    done = r.run(config)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    _check_complete(data)
    assert data["attrs"]["stacks_tracked"] > 0
    truth, tracks = data["truth"], data["tracks"]
    first = truth[truth["frame"] == truth["frame"][0]]
    assert len(data["rois"]) == len(first)  # automatic detection found every bead
    for bead in range(len(data["rois"])):  # detected ids need not follow the camera's order
        t = tracks[tracks["bead_id"] == bead]
        g = first[np.argmin(np.hypot(first["x_nm"] - t["x_nm"][0], first["y_nm"] - t["y_nm"][0]))]
        assert np.abs(t["x_nm"] - g["x_nm"]).max() < 20
        assert np.abs(t["y_nm"] - g["y_nm"]).max() < 20
    assert (tmp_path / "runs" / (r.output_file(tmp_path).stem + ".log")).exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly(tmp_path, sig):
    config = r.write_config(tmp_path, duration=None)
    proc = r.start(config)
    r.wait_for_frames(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data = r.read(r.output_file(tmp_path))
    _check_complete(data, state="interrupted")


def test_killed_tracker_is_replaced(tmp_path):
    config = r.write_config(tmp_path, duration=4)
    proc = r.start(config)
    r.wait_for_frames(proc)  # trackers are warm once the producer runs
    tracker = r.wait_for_frames(proc, role="magacq tracker 1")
    tracker.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    data = r.read(r.output_file(tmp_path))
    _check_complete(data)
    assert data["attrs"]["worker_restarts"] == 1
    assert "tracker 1 died" in err


def test_full_buffer_drops_are_counted(tmp_path):
    config = r.write_config(
        tmp_path, tracking={"workers": 1, "debug_delay_s": 0.2}, buffers={"n_stacks": 2}
    )
    done = r.run(config)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    _check_complete(data)
    dropped = data["dropped"]
    assert data["attrs"]["frames_dropped"] == len(dropped) > 0
    assert (dropped["reason"] == 0).all()
    # a dropped frame is never also stored; together they cover every frame number
    stored = data["frames"]["frame"]
    assert not np.isin(dropped["frame"], stored).any()
    everything = np.sort(np.concatenate([stored, dropped["frame"]]))
    assert (everything == np.arange(len(everything))).all()


def test_camera_failure_saves_and_exits_1(tmp_path):
    config = r.write_config(tmp_path, camera={"settings": {"frame_rate": 200, "fail_after": 60}},
                            duration=30)  # fmt: skip
    done = r.run(config)
    assert done.returncode == 1
    assert "simulated camera failure" in done.stderr
    assert "Traceback" not in done.stderr
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed"
    assert len(data["frames"]) == 60


def test_sigkilled_run_file_is_readable(tmp_path):
    from buffers import remove_stale_segments

    config = r.write_config(tmp_path, duration=None)
    proc = r.start(config)
    r.wait_for_frames(proc)
    import time

    time.sleep(1.5)  # > one flush interval
    # everything of the run but multiprocessing's resource tracker, which unlinks the semaphores
    # of the dead processes as it would after any crash
    children = psutil.Process(proc.pid).children(recursive=True)
    everyone = [proc.pid] + [
        c.pid for c in children if "resource_tracker" not in " ".join(c.cmdline())
    ]
    for pid in everyone:
        psutil.Process(pid).kill()
    proc.communicate(timeout=30)
    psutil.wait_procs([p for p in psutil.process_iter() if p.pid in everyone], timeout=10)
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "running"
    assert len(data["frames"]) > 0 and len(data["tracks"]) > 0
    import os

    remove_stale_segments(f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}")


def test_a_focus_stage_failure_is_named_as_the_stage_not_the_camera(tmp_path):
    config = r.write_config(tmp_path, focus_stage={"driver": "tests.pipeline.ringcam:DeadStage",
                                                   "settings": {}})  # fmt: skip
    done = r.run(config)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: focus stage 'tests.pipeline.ringcam:DeadStage' failed: ")
    assert "encoder lost" in last and "camera" not in last
