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


def config(tmp: Path) -> Path:
    """The small sim camera at 100 frames/s, both beads, every frame kept in `video`."""
    base = r.two_beads(tmp, BEADS, (5000, 7000), **SIM, frame_rate=100)
    base["buffers"]["n_stacks"] = 32
    base["tracking"]["workers"] = 2
    base["output"]["video"] = {"mode": "frames"}
    base["duration"] = 3
    return r.write_config(tmp, base, "rec")


@pytest.fixture(scope="session")
def zlut(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("retrack_zlut")
    out = tmp / "zlut.h5"
    done = r.cli("calibrate", str(config(tmp)), "--output", str(out), cwd=tmp, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def _recorded_run(tmp: Path, zlut: Path, mode: str) -> Path:
    cfg = config(tmp)
    data = yaml.safe_load(cfg.read_text())
    data["tracking"]["zlut"] = str(zlut)
    data["output"]["video"] = {"mode": mode}
    cfg.write_text(yaml.safe_dump(data))
    done = r.run(cfg, timeout=180)
    assert done.returncode == 0, done.stderr
    return r.output_file(tmp)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory, zlut) -> Path:
    """A live run tracking z with ``zlut``, every frame recorded."""
    return _recorded_run(tmp_path_factory.mktemp("retrack_run"), zlut, "frames")


@pytest.fixture(scope="session")
def recorded_rois(tmp_path_factory, zlut) -> Path:
    """The same, recording each bead's ROI of every frame (``roi_video``)."""
    return _recorded_run(tmp_path_factory.mktemp("retrack_rois"), zlut, "rois")


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
