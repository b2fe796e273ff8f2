"""Run the real `magacq` CLI in a subprocess on a config written for the test."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
MAGACQ = [str(Path(sys.executable).parent / "magacq")]
RINGCAM = "tests.pipeline.ringcam:RingCam"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["COLUMNS"] = "200"
    return e


def write_config(
    tmp: Path, base: dict | None = None, name: str = "run", **overrides: object
) -> Path:
    """``tmp/NAME.yaml``: ``base`` (default: the ring camera's small run) with ``overrides``
    (sections merged one level deep)."""
    cfg: dict = base or {
        "camera": {"driver": RINGCAM, "settings": {"frame_rate": 200}},
        "buffers": {"n_stacks": 8, "images_per_stack": 5},
        "tracking": {"workers": 2, "roi_size": 32},
        "output": {"dir": str(tmp / "runs")},
        "duration": 1.5,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def two_beads(tmp: Path, beads: list, sweep_nm: tuple[float, float], **camera: object) -> dict:
    """The small sim run of the tests that calibrate a Z-LUT: a 128x64 camera with two beads at
    ``beads`` (``camera``: more sim settings), their 32 px ROIs, the sim focus stage, one qi
    tracker, a sweep over ``sweep_nm`` in 100 nm steps. A ``base`` for :func:`write_config`."""
    settings = {"width": 128, "height": 64, "n_beads": 2, "roi_size": 32, "fraction_stuck": 0.0,
                "bead_xy_px": beads, **camera}  # fmt: skip
    return {
        "camera": {"driver": "sim", "settings": settings},
        "focus_stage": {"driver": "sim", "settings": {"settle_time_s": 0.01}},
        "buffers": {"n_stacks": 8, "images_per_stack": 5},
        "tracking": {"workers": 1, "roi_size": 32, "algorithm": "qi"},
        "beads": {"rois": beads},
        "output": {"dir": str(tmp / "runs")},
        "calibration": {
            "start_nm": sweep_nm[0],
            "stop_nm": sweep_nm[1],
            "step_nm": 100,
            "settle_s": 0.0,
            "profiles_per_step": 5,
        },
    }


def start(config: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """``magacq run CONFIG ARGS...`` started in the config's folder."""
    return start_cli("run", str(config), *args, cwd=config.parent, extra_env=extra_env)


def start_cli(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """``magacq ARGS...`` started in ``cwd``, its output piped."""
    return subprocess.Popen(
        [*MAGACQ, *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``magacq ARGS...`` run to its end in ``cwd``, its output captured."""
    return subprocess.run(
        [*MAGACQ, *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )


def run(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return cli("run", str(config), *args, cwd=config.parent, timeout=timeout)


def namespace(proc: subprocess.Popen) -> str:
    """The shared-memory namespace of the run started as ``proc``."""
    return f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}"


def interrupt(proc: subprocess.Popen) -> str:
    """Ctrl-C the run; it must end with exit code 0. Its stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def wait_for_process(proc: subprocess.Popen, title: str, timeout: float = 120) -> psutil.Process:
    """The run's process titled ``title`` (e.g. ``magacq writer``) as soon as it appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if " ".join(child.cmdline()).startswith(title):
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.02)
    raise AssertionError(f"no {title!r} process appeared")


def wait_for_frames(proc: subprocess.Popen, role: str = "magacq producer", timeout: float = 90):
    """Wait until the run has a live process titled ``role`` and has stored frames."""
    child = wait_for_process(proc, role, timeout)
    wait_for_status(proc, "frames", 1, timeout)
    time.sleep(0.2)  # let frames flow
    return child


def wait_for_status(
    proc: subprocess.Popen, field: str, at_least: float, timeout: float = 90
) -> dict[str, float]:
    """Wait until the run's published status has ``field`` >= ``at_least`` (e.g. 50 frames
    stored); return that status."""
    from magacq.pipeline import read_status

    ns = namespace(proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(ns) or {}
        if status.get(field, 0) >= at_least:
            return status
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the run ended first (exit code {proc.returncode}): {err}")
        time.sleep(0.05)
    raise AssertionError(f"the run's status never had {field} >= {at_least}")


def wait_for_tracks(proc: subprocess.Popen, tmp: Path, timeout: float = 90) -> None:
    """Wait until the run's file (in ``tmp/runs``) holds tracks (flushed: readers see them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended first (exit code {proc.returncode})"
        try:
            with h5py.File(output_file(tmp), "r", swmr=True) as f:
                if len(f["tracks"]):
                    return
        except (AssertionError, OSError, KeyError):  # not made, or not flushed yet
            pass
        time.sleep(0.1)
    raise AssertionError("the run's file never had tracks")


def output_file(tmp: Path) -> Path:
    files = sorted(p for p in (tmp / "runs").glob("*.h5") if not p.name.endswith(".video.h5"))
    assert len(files) == 1, files
    return files[0]


def read(path: Path) -> dict:
    with h5py.File(path, "r", swmr=True) as f:
        return {
            "attrs": dict(f.attrs),
            **{name: f[name][:] for name in f},
        }
