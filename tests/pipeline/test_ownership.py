"""Control belongs to the run's owner (issue 26, case 5): `magacq magnets` without --run
attaches only to the single live run of the same user and session, refuses when there are
several (listing them), never moves another user's magnets; every move is an event of the run
with who asked for it, and the command says which run it moved."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from magacq._platform import is_root
from magacq.pipeline import MotorControl
from magacq.tracking._cache import cache_root
from tests.pipeline import _runner as r

MAGNETS = {"driver": "sim", "settings": {"bead_type": "MyOne"}, "height_mm": 6.0}


def _config(tmp: Path, name: str = "mag") -> Path:
    base = r.two_beads(tmp, [[32, 32], [96, 32]], (0, 100), frame_rate=100)
    base.update(magnets=MAGNETS, duration=None)
    return r.write_config(tmp, base, name)


@pytest.fixture(scope="module")
def two_then_one(tmp_path_factory) -> dict:
    """Two runs of this user and session: an unnamed command while both are live; then the
    first stopped, an unnamed command and a user's own program move the one left. (One
    scenario for the two tests below: each run's start-up is the bulk of their time.)"""
    tmp = tmp_path_factory.mktemp("own")
    cfg = _config(tmp)
    procs = [r.start(cfg) for _ in range(2)]
    try:
        for proc in procs:
            r.wait_for_status(proc, "frames", 20)
        both = r.cli("magnets", str(cfg), "--height", "3", cwd=tmp)
        r.interrupt(procs[0])
        r.wait_for_status(procs[1], "frames", 50)
        one = r.cli("magnets", str(cfg), "--height", "4.5", cwd=tmp)  # unnamed: ours
        if one.returncode == 0:
            with MotorControl(r.namespace(procs[1])) as ctl:  # a user's own program
                ctl.move_by("height", 0.5, wait=True)
    finally:
        for proc in procs:
            if proc.poll() is None:
                r.interrupt(proc)
    files = {r.read(p)["attrs"]["namespace"]: p for p in (tmp / "runs").glob("*.h5")}
    return {"both": both, "one": one, "namespaces": [r.namespace(p) for p in procs],
            "files": [files[r.namespace(p)] for p in procs]}  # fmt: skip


def test_every_move_is_an_event_with_who_asked(two_then_one):
    done, (_, ns) = two_then_one["one"], two_then_one["namespaces"]
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"magnets (run {ns}): height 4.5")
    events = r.read(two_then_one["files"][1])["events"]
    moves = events[events["action"] == b"move"]
    assert moves["by"].tolist() == [b"cli", b"python"]
    assert moves["magnet_mm"] == pytest.approx([4.5, 5.0])
    assert (moves["frame"] >= 0).all()  # placed on the run's frames
    assert b"cli: height to 4.5" in moves["label"][0]


def test_two_runs_of_yours_an_unnamed_command_is_refused(two_then_one):
    done = two_then_one["both"]
    assert done.returncode == 1
    last = done.stderr.strip()
    assert "several runs of yours are live; choose one with --run" in last
    for ns in two_then_one["namespaces"]:
        assert ns in last
    # nothing moved while both were live (the second run moved later, by the commands above)
    heights = r.read(two_then_one["files"][0])["motors"]["magnet_height_mm"]
    assert np.allclose(heights, 6.0)
    events = r.read(two_then_one["files"][1])["events"]
    assert b"height to 3" not in b"".join(events["label"])


@pytest.mark.skipif(not is_root() or not shutil.which("setpriv"), reason="needs root")
def test_another_users_run_is_never_moved_by_an_unnamed_command(monkeypatch):
    """A second user on the same PC (nobody) runs an acquisition; root's command without
    --run finds no run of its own and moves its config's magnets directly, not theirs. Both
    use one segment registry (each user has their own by default), so that root sees the run."""
    if os.environ.get("MAGACQ_START_METHOD") == "spawn":  # see the issue 26 note
        pytest.skip("as nobody under spawn, multiprocessing's resource tracker dies here")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    shared = Path(tempfile.mkdtemp(prefix="magacq-other-"))
    try:
        shared.chmod(0o777)
        cfg = _config(shared)
        if cache_root().is_dir():  # the compiled kernels, so that the other user compiles none
            shutil.copytree(cache_root(), shared / "cache")
        (shared / "runtime").mkdir()
        monkeypatch.setenv("MAGACQ_RUNTIME_DIR", str(shared / "runtime"))
        subprocess.run(["chmod", "-R", "a+rwX", str(shared)], check=True)
        env = {**r.env(), "HOME": str(shared), "MAGACQ_CACHE_DIR": str(shared / "cache")}
        other = subprocess.Popen(
            [*nobody, *r.MAGACQ, "run", str(cfg)],
            cwd=shared, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            r.wait_for_status(other, "frames", 20, timeout=180)
            mine = _config(shared, "mine")
            done = r.cli("magnets", str(mine), "--height", "3", cwd=shared)
            assert done.returncode == 0, done.stderr
            assert "(no run of yours live, moved directly)" in done.stdout
        finally:
            r.interrupt(other)
        runs = [p for p in (shared / "runs").glob("*.h5")]
        assert len(runs) == 1
        assert np.allclose(r.read(runs[0])["motors"]["magnet_height_mm"], 6.0)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
