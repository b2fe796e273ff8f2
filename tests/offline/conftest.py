"""A recorded run to re-track: a real Z-LUT (`magacq calibrate`) and a real `magacq run` that
tracks with it and keeps every frame; and a Dask scheduler and worker started as real processes
(the `dask` command line, loopback only)."""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.pipeline import _runner as r
from tests.recorded import SIM

BEADS = [[24, 32], [72, 32]]
DASK = str(Path(sys.executable).parent / "dask")


def config(tmp: Path, **overrides: object) -> Path:
    """The small sim camera at 100 frames/s, both beads, every frame kept in `video`."""
    cfg: dict = {
        "camera": {"driver": "sim", "settings": {**SIM, "frame_rate": 100}},
        "focus_stage": {"driver": "sim", "settings": {"settle_time_s": 0.01}},
        "buffers": {"n_stacks": 32, "images_per_stack": 5},
        "tracking": {"workers": 2, "roi_size": 32, "algorithm": "qi"},
        "beads": {"rois": BEADS},
        "output": {"dir": str(tmp / "runs"), "video": {"mode": "frames"}},
        "calibration": {"start_nm": 5000, "stop_nm": 7000, "step_nm": 100, "settle_s": 0.0,
                        "profiles_per_step": 5},  # fmt: skip
        "duration": 3,
    }
    cfg.update(overrides)
    path = tmp / "rec.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def zlut(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("retrack_zlut")
    out = tmp / "zlut.h5"
    done = r.cli("calibrate", str(config(tmp)), "--output", str(out), cwd=tmp, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def recorded(tmp_path_factory, zlut) -> Path:
    """A live run tracking z with ``zlut``, every frame recorded."""
    tmp = tmp_path_factory.mktemp("retrack_run")
    cfg = config(tmp)
    data = yaml.safe_load(cfg.read_text())
    data["tracking"]["zlut"] = str(zlut)
    cfg.write_text(yaml.safe_dump(data))
    done = r.run(cfg, timeout=180)
    assert done.returncode == 0, done.stderr
    return r.output_file(tmp)


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[str]:
    """A scheduler and a worker (two single-threaded processes) started with `dask`; yields the
    scheduler's address; both stopped (SIGTERM, waited for) afterwards."""
    info = tmp_path / "scheduler.json"
    common = {"cwd": tmp_path, "env": r.env(), "stdout": subprocess.DEVNULL,
              "stderr": subprocess.DEVNULL}  # fmt: skip
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(info)], **common,
    )  # fmt: skip
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert scheduler.poll() is None and time.monotonic() < deadline, "no scheduler"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen(
            [DASK, "worker", "--scheduler-file", str(info), "--host", "127.0.0.1",
             "--nworkers", "2", "--nthreads", "1", "--no-dashboard"], **common,
        ))  # fmt: skip
        yield address
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
