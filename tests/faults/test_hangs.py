"""Hung (SIGSTOPped) processes, a silent camera, a restart storm, camera read errors: each
ends as the run's roster says, with one line and a file whose state is the truth (issue 26,
cases 1-3)."""

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.pipeline import _runner as r

QUICK = {"hang_timeout_s": 3.0}  # the default is 5 s


def _suspend(proc: subprocess.Popen, title: str, tmp: Path) -> psutil.Process:
    """SIGSTOP the run's process titled ``title`` once frames flow and tracks are in its file
    (a loaded machine's trackers may lag the frames); it hangs from then on."""
    r.wait_for_status(proc, "frames", 100)
    r.wait_for_tracks(proc, tmp)
    child = r.wait_for_process(proc, title)
    child.suspend()
    return child


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def test_hung_tracker_is_killed_and_restarted_and_frames_flow_again(tmp_path):
    config = r.write_config(tmp_path, duration=10, supervision=QUICK)
    proc = r.start(config)
    _suspend(proc, "magacq tracker 0", tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "the tracker 0 hung (running, no heartbeat for" in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    assert data["attrs"]["worker_restarts"] == 1
    frames, tracks = data["frames"]["frame"], data["tracks"]["frame"]
    # the ring blocked only until the kill: the run's last seconds are stored and tracked
    assert frames.max() > 1500 and tracks.max() >= frames.max() - 10
    assert np.isin(frames, tracks).all()  # the stack the hung tracker held was requeued


def test_tracker_hung_while_starting_is_killed_and_restarted(tmp_path):
    """A tracker SIGSTOPped before it is ready (the camera waits for every tracker; a cold
    kernel cache keeps them starting): killed after ``start_timeout_s``, restarted, and the run
    goes on."""
    supervision = {"start_timeout_s": 5.0, **QUICK}
    config = r.write_config(tmp_path, duration=2, supervision=supervision,
                            tracking={"algorithm": "com"})  # fmt: skip
    proc = r.start(config, extra_env={"NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    r.wait_for_process(proc, "magacq tracker 1").suspend()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "the tracker 1 hung (starting up, no heartbeat for" in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    assert data["attrs"]["worker_restarts"] == 1
    assert len(data["tracks"]) > 0


@pytest.mark.parametrize("role", ["writer", "producer"])
def test_hung_writer_or_producer_fails_the_run(tmp_path, role):
    config = r.write_config(tmp_path, duration=None, supervision=QUICK)
    proc = r.start(config)
    _suspend(proc, f"magacq {role}", tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    last = _last_line(err)
    assert last.startswith(f"error: the {role} hung (running, no heartbeat for"), err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed"
    assert f"the {role} hung" in data["attrs"]["error"]
    assert len(data["tracks"]) > 0  # what was flushed is kept


def test_hung_recorder_fails_the_run(tmp_path):
    video = {"mode": "frames", "on_backlog": "drop_video"}
    config = r.write_config(tmp_path, duration=None, supervision=QUICK, output={
        "dir": str(tmp_path / "runs"), "video": video})  # fmt: skip
    proc = r.start(config)
    _suspend(proc, "magacq recorder", tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert _last_line(err).startswith("error: the recorder hung (running, no heartbeat for"), err
    assert r.read(r.output_file(tmp_path))["attrs"]["state"] == "failed"


def test_silent_camera_fails_the_run(tmp_path):
    camera = {"settings": {"frame_rate": 200, "stall_after": 100}}
    config = r.write_config(tmp_path, duration=60, supervision={"camera_timeout_s": 2},
                            camera=camera)  # fmt: skip
    done = r.run(config)
    assert done.returncode == 1, done.stderr
    assert _last_line(done.stderr).startswith("error: the camera delivered no frame for 2 s")
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed"
    assert len(data["frames"]) == 100


def test_restart_storm_fails_the_run(tmp_path):
    config = r.write_config(tmp_path, duration=None, supervision={"max_restarts": 1})
    proc = r.start(config)
    r.wait_for_status(proc, "frames", 100)
    for _ in range(2):  # the second death within the window is one too many
        tracker = r.wait_for_process(proc, "magacq tracker 0")
        tracker.kill()
        tracker.wait(10)
        time.sleep(0.5)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "error: trackers died 2 times within 30 s (supervision.max_restarts 1)" in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed" and "trackers died" in data["attrs"]["error"]


def test_transient_camera_errors_are_dropped_frames(tmp_path):
    base = r.two_beads(tmp_path, [[32, 32], [96, 32]], (0, 100), error_rate=0.02, frame_rate=200)
    config = r.write_config(tmp_path, base, duration=3)
    done = r.run(config)
    assert done.returncode == 0, done.stderr
    assert "camera read error (frame lost)" in done.stderr
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    dropped = data["dropped"]
    by_camera = int((dropped["reason"] == 1).sum())
    assert by_camera > 0  # (a loaded machine may also fill the ring: 0)
    # the run's last status line counts the frames its file lists as dropped, the camera's too
    said = " ".join(done.stderr.split())
    assert f"dropped {len(dropped):,} ({by_camera:,} by the camera)" in said
    stored = data["frames"]["frame"]  # every frame number is stored or listed as dropped
    everything = np.sort(np.concatenate([stored, dropped["frame"]]))
    assert (everything == np.arange(len(everything))).all()
    assert np.isin(stored, data["tracks"]["frame"]).all()


def _magnet_run(tmp_path, protocol: dict, **overrides: object):
    base = r.two_beads(tmp_path, [[32, 32], [96, 32]], (0, 100), frame_rate=100)
    base["magnets"] = {"driver": "sim", "settings": {"bead_type": "M270"}, "height_mm": 8.0}
    return r.write_config(tmp_path, base, duration=120, protocol=protocol, **overrides)


HOLD_LOW = {"steps": [{"step": "magnets", "height_mm": 2.0}, {"step": "hold", "seconds": 60}],
            "end_height_mm": 7.5}  # fmt: skip


def test_hung_protocol_fails_the_run_and_the_magnets_are_parked(tmp_path):
    config = _magnet_run(tmp_path, HOLD_LOW, supervision=QUICK)
    proc = r.start(config)
    r.wait_for_status(proc, "protocol_action", 2)  # holding at 2 mm
    r.wait_for_process(proc, "magacq protocol").suspend()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert _last_line(err).startswith("error: the protocol hung (running, no heartbeat for")
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed"
    height = data["motors"]["magnet_height_mm"]
    assert height.min() == pytest.approx(2.0) and height[-1] == pytest.approx(7.5)


SCRIPT_DEAF = """
import signal, time
def protocol(api):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    api.move_magnets(height_mm=2.0)
    api.mark("deaf now")
    while True:  # ignores api.stopping and SIGTERM
        time.sleep(0.01)
"""
SCRIPT_EXITS = """
import os
def protocol(api):
    api.move_magnets(height_mm=2.0)
    api.mark("exiting")
    os._exit({code})
"""


def test_ctrl_c_ends_a_deaf_script_and_parks_the_magnets(tmp_path):
    (tmp_path / "p.py").write_text(SCRIPT_DEAF)
    config = _magnet_run(tmp_path, {"script": "p.py", "end_height_mm": 7.5})
    proc = r.start(config)
    r.wait_for_status(proc, "protocol_action", 1)
    time.sleep(3)  # at 2 mm by now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "the protocol did not stop within 2 s when asked; killing it" in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "interrupted"
    height = data["motors"]["magnet_height_mm"]
    assert height.min() == pytest.approx(2.0) and height[-1] == pytest.approx(7.5)


@pytest.mark.parametrize("code", [0, 3])
def test_a_script_that_exits_the_process_fails_the_run_and_the_magnets_are_parked(tmp_path, code):
    (tmp_path / "p.py").write_text(SCRIPT_EXITS.format(code=code))
    config = _magnet_run(tmp_path, {"script": "p.py", "end_height_mm": 7.5})
    done = r.run(config)
    assert done.returncode == 1, done.stderr
    want = "exited before its protocol ended" if code == 0 else f"died (exit code {code})"
    assert want in _last_line(done.stderr), done.stderr
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed"
    assert data["motors"]["magnet_height_mm"][-1] == pytest.approx(7.5)


def test_ctrl_c_while_the_magnets_go_to_their_start(tmp_path):
    """Ctrl-C during start-up (the magnets moving 6 -> 1 mm at 0.5 mm/s): the run ends at once,
    `interrupted`, nothing killed, and the magnets are parked where the protocol ends."""
    base = r.two_beads(tmp_path, [[32, 32], [96, 32]], (0, 100), frame_rate=100)
    base["magnets"] = {"driver": "sim", "height_mm": 1.0,
                       "settings": {"bead_type": "M270", "height_velocity_mm_s": 0.5}}  # fmt: skip
    config = r.write_config(tmp_path, base, duration=60, protocol=HOLD_LOW)
    proc = r.start(config)
    r.wait_for_process(proc, "magacq producer")
    time.sleep(2.0)  # moving down
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "did not stop in time" not in err and "killing" not in err
    assert _last_line(err).endswith(
        "stopped by signal; the file is closed, its state 'interrupted'"
    )
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "interrupted"
    height = data["motors"]["magnet_height_mm"]
    assert height[-1] == pytest.approx(7.5)  # parked (HOLD_LOW's end), never having reached 1 mm
    assert height.min() > 1.0
