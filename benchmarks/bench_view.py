"""Does `magacq view` slow the run it watches? Frame rate and dropped frames of a sim run with the
viewer attached against without, in one invocation.

Each trial is a real `magacq run` subprocess on ``configs/sim.yaml`` (512x512, 12 beads, QI) for
``--seconds``; in the "viewer" trials a real `magacq view --run NS` subprocess (Qt offscreen) is
attached from before the camera starts until the run ends. Trials alternate (without, with, ...)
so drifts of the machine fall on both. The sim camera runs flat out by default
(``--frame-rate 0``): the run's frame rate is then what this machine sustains, the number a
viewer competing for CPU would lower. With ``--frame-rate N`` the camera is paced: the sim
renders each frame on demand, so a producer that falls behind makes fewer frames (late, never
dropped), and frames are dropped only when the trackers fall a whole ring behind. Paced just
under this machine's capacity (``--frame-rate 1200`` on two quiet cores, which flat out make
about 1300-1400 frames/s), CPU the viewer takes shows as a frame rate under the pace, or as drops.

Frame rate = frames stored / seconds acquired (the run's duration counts from the camera's start).
The viewer's CPU share (1 = one core, psutil: user + system) is taken over the acquisition
less its first and last second. The load average at the end says how busy the machine was.

Usage: ``python benchmarks/bench_view.py [--seconds 10] [--repeats 2] [--frame-rate 0]``
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(namespace: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MAGACQ_NAMESPACE"] = namespace
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _config(tmp: Path, args: argparse.Namespace) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "sim.yaml").read_text())
    cfg["camera"]["settings"]["frame_rate"] = args.frame_rate
    cfg["tracking"]["workers"] = args.workers
    cfg["duration"] = args.seconds
    cfg["output"]["dir"] = str(tmp / "runs")
    path = tmp / "bench_view.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _wait_for_run(namespace: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    from magacq.view import find_runs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.namespace == namespace for r in find_runs()):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the run exited early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise RuntimeError("the run's buffers did not appear")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _cpu_window(run_ns: str, run: subprocess.Popen, pid: int, seconds: float) -> float:
    """CPU share (1 = one core) of process ``pid`` over a window inside the acquisition.

    From 1 s after the camera starts to 1 s before the run's duration is up: the viewer's start
    (Qt, the first frames) and the run's end are left out.
    """
    from magacq.pipeline.channels.status import ACQUIRING, read_status

    while (status := read_status(run_ns)) is None or status["state"] != ACQUIRING:
        if run.poll() is not None:
            return float("nan")
        time.sleep(0.05)
    time.sleep(1.0)
    t0, c0 = time.monotonic(), _cpu_s(pid)
    time.sleep(max(0.5, seconds - 2.0))
    return (_cpu_s(pid) - c0) / (time.monotonic() - t0)


def trial(config: Path, with_viewer: bool, seconds: float, k: int) -> dict:
    """One `magacq run` (and viewer); its frames stored, dropped and frame rate."""
    out = config.parent / f"trial{k}"
    namespace = f"benchview{os.getpid()}t{k}"
    run = subprocess.Popen(
        [str(BIN / "magacq"), "run", str(config), "--output", str(out)],
        env=_env(namespace),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    viewer = None
    viewer_cpu = float("nan")
    try:
        if with_viewer:
            run_ns = f"{namespace}-run{run.pid}"
            _wait_for_run(run_ns, run)
            viewer = subprocess.Popen(
                [str(BIN / "magacq"), "view", "--run", run_ns],
                env=_env(namespace),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            viewer_cpu = _cpu_window(run_ns, run, viewer.pid, seconds)
        _, err = run.communicate(timeout=seconds + 180)
        if run.returncode != 0:
            raise RuntimeError(f"magacq run failed ({run.returncode}): {err}")
        if viewer is not None:
            # it must have stayed attached all along: alive now, showing the run-ended banner
            if viewer.poll() is not None:
                raise RuntimeError(f"the viewer exited during the run: {viewer.stderr.read()}")
    finally:
        for proc in (viewer, run):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc is not None and proc.stderr is not None:
                proc.stderr.close()
    (path,) = out.glob("*.h5")
    with h5py.File(path, "r") as f:
        stored = int(f.attrs["frames_stored"])
        dropped = int(f.attrs["frames_dropped"]) + int(f.attrs["frames_lost_by_camera"])
        tracked = len(np.unique(f["tracks"]["frame"]))
        p99 = float(f.attrs.get("latency_p99_s", np.nan))
    return {
        "viewer": with_viewer,
        "stored": stored,
        "dropped": dropped,
        "tracked": tracked,
        "fps": stored / seconds,
        "p99_ms": 1e3 * p99,
        "viewer_cpu": viewer_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="acquisition per trial")
    parser.add_argument("--repeats", type=int, default=2, help="trials of each kind")
    parser.add_argument("--frame-rate", type=float, default=0.0, help="sim pacing (0: flat out)")
    parser.add_argument("--workers", type=int, default=2, help="tracker processes")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="bench_view") as tmp:
        config = _config(Path(tmp), args)
        for k in range(2 * args.repeats):
            res = trial(config, with_viewer=bool(k % 2), seconds=args.seconds, k=k)
            results.append(res)
            print(
                f"{'with viewer' if res['viewer'] else 'no viewer  '}: {res['fps']:7.1f} frames/s, "
                f"{res['stored']} stored, {res['dropped']} dropped, {res['tracked']} tracked, "
                f"latency p99 {res['p99_ms']:.0f} ms"
                + (f", viewer CPU {100 * res['viewer_cpu']:.0f}%" if res["viewer"] else ""),
                flush=True,
            )
    rate = {v: np.mean([r["fps"] for r in results if r["viewer"] == v]) for v in (False, True)}
    drops = {v: sum(r["dropped"] for r in results if r["viewer"] == v) for v in (False, True)}
    pace = f"paced at {args.frame_rate:g} frames/s" if args.frame_rate else "flat out"
    print(
        f"\nsim 512x512, 12 beads, {args.workers} trackers, {pace}, {args.seconds:g} s x "
        f"{args.repeats} per kind, {os.cpu_count()} cores"
    )
    print(f"frame rate without viewer {rate[False]:.1f}/s, with {rate[True]:.1f}/s")
    print(f"dropped frames without viewer {drops[False]}, with {drops[True]}")
    cpu = np.mean([r["viewer_cpu"] for r in results if r["viewer"]])
    print(f"viewer CPU {100 * cpu:.0f}% of one core (mean over its trials)")
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in psutil.getloadavg())}")
    print(f"ratio with/without: {rate[True] / rate[False]:.3f}")


if __name__ == "__main__":
    main()
