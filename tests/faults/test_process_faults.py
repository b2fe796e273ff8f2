"""A killed supervisor, writer or tracker, two runs at once, a second Ctrl-C: each run ends with
a clear line, a readable file whose state says what happened, its exit code, and nothing left
behind (issue 18, cases 1, 2, 5, 6, 8)."""

import signal
import subprocess
import time

import h5py
import numpy as np
import psutil

from buffers import list_segments
from tests.faults import _procs, _stale
from tests.pipeline import _runner as r


def test_killed_supervisor_its_processes_stop_and_close_the_file(tmp_path):
    config = r.write_config(tmp_path, duration=None)
    proc = r.start(config)
    r.wait_for_frames(proc)
    time.sleep(1.0)  # a flush or two
    children = _procs.run_processes(proc)
    titles = sorted(" ".join(c.cmdline()).split("  ")[0].strip() for c in children)
    assert [t for t in titles if t.startswith("magacq ")] == [
        "magacq producer",
        "magacq tracker 0",
        "magacq tracker 1",
        "magacq writer",
    ]  # (and under spawn, multiprocessing's resource tracker)
    proc.kill()
    proc.communicate(timeout=30)
    assert not _procs.wait_gone(children), "the run's processes outlived their supervisor"
    path = r.output_file(tmp_path)
    with h5py.File(path, "r") as f:  # closed: readable without SWMR
        assert f.attrs["state"] == "failed"
        assert f"supervisor (pid {proc.pid}) died" in f.attrs["error"]
        frames, tracks = f["frames"][:], f["tracks"][:]
    assert len(frames) > 0 and len(tracks) > 0
    assert np.isin(tracks["frame"], frames["frame"]).all()
    assert not list_segments(r.namespace(proc))  # the last of them unlinked the run's segments


def test_killed_writer_the_run_stops_and_says_so(tmp_path):
    config = r.write_config(tmp_path, duration=None)
    proc = r.start(config)
    r.wait_for_frames(proc)
    writer = r.wait_for_process(proc, "magacq writer")
    time.sleep(1.0)  # a flush or two
    writer.kill()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "error: the writer process died (exit code -9)" in err
    with h5py.File(r.output_file(tmp_path), "r") as f:  # closed for it: readable, no SWMR
        assert f.attrs["state"] == "failed"
        assert "the writer process died (exit code -9)" in f.attrs["error"]
        assert len(f["frames"]) > 0 and len(f["tracks"]) > 0  # what it had flushed


def test_tracker_killed_while_warming_up_is_restarted(tmp_path):
    """A cold numba cache and the compile child killed: the trackers compile for seconds
    themselves; one is killed meanwhile. (com: the kernels that compile fastest, still seconds;
    qi's would take half as long again, three times over.)"""
    config = r.write_config(tmp_path, duration=2, tracking={"algorithm": "com"})
    proc = r.start(config, extra_env={"NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    r.wait_for_process(proc, "magacq compile").kill()
    tracker = r.wait_for_process(proc, "magacq tracker 1")
    time.sleep(1.0)
    tracker.kill()  # "while warming up" below says it was killed before the camera started
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "tracker 1 died while warming up" in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    assert data["attrs"]["worker_restarts"] == 1
    assert len(data["tracks"]) > 0


def test_trackers_that_cannot_start_fail_the_run(tmp_path):
    """Trackers that die at every start: exit 1, one line, the file says failed (not complete)."""
    config = r.write_config(tmp_path, tracking={"options": {"no_such_option": 1}})
    done = r.run(config)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: trackers died" in done.stderr and "while warming up" in done.stderr
    attrs = r.read(r.output_file(tmp_path))["attrs"]
    assert attrs["state"] == "failed"
    assert "trackers died" in attrs["error"]


def test_two_runs_at_once_get_their_own_files_and_logs(tmp_path):
    config = r.write_config(tmp_path, output={"name": "{config}.h5"}, duration=1.0)
    procs = [r.start(config) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    saved = sorted(out.strip().removeprefix("saved ") for out, _err in results)
    runs = tmp_path / "runs"
    assert saved == [str(runs / "run-1.h5"), str(runs / "run.h5")]
    for path in saved:
        data = r.read(path)
        assert data["attrs"]["state"] == "complete" and len(data["tracks"]) > 0
    logs = sorted(runs.glob("*.log"))
    assert [log.name for log in logs] == ["run-1.log", "run.log"]
    namespaces = sorted(r.read(path)["attrs"]["namespace"] for path in saved)
    for log in logs:  # each log is its run's alone
        text = log.read_text()
        assert sum(ns in text for ns in namespaces) == 1, text


def test_second_ctrl_c_keeps_the_runs_exit_code(tmp_path):
    config = r.write_config(tmp_path, duration=None)
    proc = r.start(config)
    r.wait_for_frames(proc)
    while True:  # Ctrl-C, then again and again until the run has ended
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(0.05)
            break
        except subprocess.TimeoutExpired:
            pass
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "received SIGINT again: still stopping" in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "interrupted"


def test_magacq_clean_removes_stale_segments_of_any_namespace(tmp_path):
    """...and those whose registry record was lost (its registry deleted) too, when old and
    their creator gone; a young one, or one whose creator lives, is left."""
    seen = _stale.sweep_scenario(tmp_path, "clean")
    assert seen["returncode"] == 0, seen["stderr"]
    for k, name in enumerate(seen["old"]):
        assert f"removed old{k}/crashed ({name})" in seen["stdout"]
        assert name not in seen["left"] and name not in seen["listed"]
    for name in (seen["young"], seen["live"]):
        assert name in seen["left"] and name in seen["listed"]
    lost, young, held = seen["orphans"]
    assert f"removed {lost}: no registry record, its creator (pid " in seen["stdout"]
    assert lost not in seen["left"] and young in seen["left"] and held in seen["left"]
    assert "3 stale segment(s) removed" in seen["stdout"]


def test_next_run_removes_stale_segments_of_other_namespaces(tmp_path):
    config = r.write_config(tmp_path, duration=0.5)
    seen = _stale.sweep_scenario(tmp_path, "run", str(config))
    assert seen["returncode"] == 0, seen["stderr"]
    assert not set(seen["old"]) & (set(seen["left"]) | set(seen["listed"]))
    for name in (seen["young"], seen["live"]):
        assert name in seen["left"] and name in seen["listed"]
    lost, young, held = seen["orphans"]  # registry records lost: the old one of a dead creator
    assert lost not in seen["left"] and young in seen["left"] and held in seen["left"]
    assert "removed 3 stale segment(s) of crashed runs" in seen["stderr"]


def _spares(proc: subprocess.Popen, n: int) -> list:
    """The ``n`` children a spawned run starts before it is planned (while its camera opens:
    untitled yet), once all are there."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spares = []
        for child in _procs.run_processes(proc):
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    spares.append(child)
            except psutil.Error:  # gone meanwhile (the compile child, done)
                continue
        if len(spares) >= n:
            return spares
        time.sleep(0.05)
    raise AssertionError(f"the run started no {n} children before its plan")


def _slow_spawned_run(tmp_path, open_error: str = "", **overrides: object):
    """A spawned run whose camera takes 2 s to open (then fails with ``open_error``, if any),
    and the children it started meanwhile."""
    settings = {"frame_rate": 200, "open_s": 2.0, "open_error": open_error}
    config = r.write_config(tmp_path, camera={"settings": settings}, **overrides)
    proc = r.start(config, extra_env={"MAGACQ_START_METHOD": "spawn"})
    return proc, _spares(proc, 4)


def test_spawned_children_killed_before_the_run_starts_are_replaced(tmp_path):
    """Under spawn a run starts its producer, trackers and writer while the camera is probed
    (slow to open here); all killed then, the run starts new ones and completes as usual."""
    proc, spares = _slow_spawned_run(tmp_path)
    for child in spares:
        child.kill()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    assert set(data["tracks"]["bead_id"]) == {0, 1, 2}


def test_spawned_children_end_with_a_run_that_never_starts(tmp_path):
    """A camera that cannot be opened, or Ctrl-C while it opens: the children started for the
    run end with it, quietly (no traceback), and nothing is left."""
    proc, spares = _slow_spawned_run(tmp_path, open_error="no camera on the bus")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "error: cannot open camera" in err and "no camera on the bus" in err
    assert "Traceback" not in err
    assert not _procs.wait_gone(spares, timeout=10)

    proc, spares = _slow_spawned_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert r.read(r.output_file(tmp_path))["attrs"]["state"] == "interrupted"
    assert not _procs.wait_gone(spares, timeout=10)


def test_spawned_children_hung_before_the_run_starts_fail_it(tmp_path):
    """Children stopped (SIGSTOP) before their run was planned never beat: once the run hands
    itself to them, they are hung while starting; the run fails, naming the first killed (the
    producer), and nothing is left."""
    supervision = {"start_timeout_s": 3.0, "hang_timeout_s": 2.0}
    proc, spares = _slow_spawned_run(tmp_path, supervision=supervision)
    for child in spares:
        child.suspend()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "error: the producer hung (starting up, no heartbeat for" in err, err
    assert "Traceback" not in err and "could not mark" not in err
    assert not list((tmp_path / "runs").glob("*.h5"))  # the writer never made it
    assert not _procs.wait_gone(spares, timeout=10)
