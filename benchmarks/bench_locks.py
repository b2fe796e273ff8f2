"""Locks: what the Z-lock and XY-lock cost a run at 1 kHz with 20 beads.

Runs the real ``magacq run`` on the sim camera (1 kHz, 20 beads, drifting as a real stage does)
with both locks on and, alternately, the same run without them; all runs in this one call. Prints,
per pair and in total: the CPU the protocol process takes (it runs only the locks' thread here:
the controller's cost, as a share of one core, against the 5 % target), the whole run's CPU with
and without the locks (ratio), and the tracking latency (frame timestamp to positions, p50 and
p99 over each run, from the run file) with and without (ratios; 1.0: the locks add nothing).
A Z-LUT of the 20 beads is made first by ``magacq calibrate``. The frame rate each run reached is
printed too: a machine that cannot track 20 beads at 1 kHz gives the locks fewer rows to read
(and its latencies are then the backlog's, not the locks').

Usage: ``python benchmarks/bench_locks.py [--seconds 20] [--pairs 2]`` (about 3 minutes).
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import psutil
import yaml

from magacq.pipeline.channels.status import ACQUIRING, read_status

MAGACQ = str(Path(sys.executable).parent / "magacq")
SIDE, N = 64, 20  # ROI side (px), beads
BEADS = [[40 + SIDE * (i % 10), 40 + SIDE * (i // 10)] for i in range(N)]  # 10 x 2 grid
LOCKS = {"z_lock": {"bead": 1}, "xy_lock": {}}  # the defaults (interval 0.5 s, window 0.5 s)


def config(tmp: Path, name: str, **extra: object) -> Path:
    cfg = {
        "camera": {"driver": "sim", "settings": {
            "width": 10 * SIDE + 16, "height": 2 * SIDE + 16, "n_beads": N, "roi_size": SIDE,
            "seed": 3, "bead_xy_px": BEADS, "fraction_stuck": 0.1, "frame_rate": 1000}},
        "focus_stage": {"driver": "sim", "settings": {"settle_time_s": 0.005}},
        "buffers": {"n_stacks": 32, "images_per_stack": 20},
        "tracking": {"workers": 2, "roi_size": SIDE},
        "beads": {"rois": BEADS, "reference": [1]},
        "output": {"dir": str(tmp / name)},
        "calibration": {"start_nm": 5000, "stop_nm": 7000, "step_nm": 100, "settle_s": 0.0,
                        "profiles_per_step": 5},
        **extra,
    }  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def magacq(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([MAGACQ, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def tree_cpu(proc: psutil.Process) -> tuple[float, float]:
    """CPU seconds of the run's whole process tree, and of its protocol process (0: none)."""
    total = protocol = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            cpu = t.user + t.system
            total += cpu
            if " ".join(p.cmdline()).startswith("magacq protocol"):
                protocol = cpu
        except psutil.NoSuchProcess:
            continue
    return total, protocol


def measure(cfg: Path, seconds: float, warmup: float = 5.0) -> dict[str, float]:
    """One run: CPU (cores) of the tree and of the protocol process over ``seconds`` after
    ``warmup``, and the latency percentiles from its file."""
    run = magacq("run", str(cfg), "--duration", str(warmup + seconds + 2), cwd=cfg.parent)
    proc = psutil.Process(run.pid)
    namespace = f"{os.environ.get('MAGACQ_NAMESPACE', 'default')}-run{run.pid}"
    while (status := read_status(namespace)) is None or status["state"] != ACQUIRING:
        if run.poll() is not None:
            raise SystemExit(f"run failed: {run.stderr.read()[-2000:]}")
        time.sleep(0.2)
    time.sleep(warmup)
    t0, (c0, p0), f0 = time.monotonic(), tree_cpu(proc), read_status(namespace)
    time.sleep(seconds)
    t1, (c1, p1), f1 = time.monotonic(), tree_cpu(proc), read_status(namespace)
    _, err = run.communicate(timeout=120)
    if run.returncode != 0:
        raise SystemExit(f"run failed ({run.returncode}): {err[-2000:]}")
    out = Path(yaml.safe_load(cfg.read_text())["output"]["dir"])
    with h5py.File(next(out.glob("*.h5")), "r") as f:
        attrs = dict(f.attrs)
        dropped = int(attrs.get("frames_dropped", 0))
    wall = t1 - t0
    fps = (f1["frames"] - f0["frames"]) / wall if f0 and f1 else math.nan
    return {"tree": (c1 - c0) / wall, "protocol": (p1 - p0) / wall, "fps": fps,
            "p50": float(attrs["latency_p50_s"]), "p99": float(attrs["latency_p99_s"]),
            "dropped": dropped}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    ap.add_argument("--pairs", type=int, default=2, help="runs without / with the locks")
    args = ap.parse_args()
    print(f"load average {psutil.getloadavg()[0]:.2f}, {psutil.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        lut = tmp / "lut.h5"
        cal = magacq("calibrate", str(config(tmp, "cal")), "--output", str(lut), cwd=tmp)
        if cal.wait(timeout=600) != 0:
            raise SystemExit(f"calibrate failed: {cal.stderr.read()[-2000:]}")
        off, on = [], []
        for i in range(args.pairs):
            track = {"workers": 2, "roi_size": SIDE, "zlut": str(lut)}
            off.append(measure(config(tmp, f"off{i}", tracking=track), args.seconds))
            on.append(measure(config(tmp, f"on{i}", tracking=track, locks=LOCKS), args.seconds))
            a, b = off[-1], on[-1]
            print(f"pair {i + 1}: locks' process {100 * b['protocol']:.2f} % of a core; run "
                  f"{a['tree']:.2f} -> {b['tree']:.2f} cores; latency p50 {1e3 * a['p50']:.1f} -> "
                  f"{1e3 * b['p50']:.1f} ms, p99 {1e3 * a['p99']:.1f} -> {1e3 * b['p99']:.1f} ms; "
                  f"dropped {a['dropped']} / {b['dropped']}; camera {a['fps']:.0f} / "
                  f"{b['fps']:.0f} frames/s")  # fmt: skip

        def mean(runs: list[dict[str, float]], key: str) -> float:
            return sum(r[key] for r in runs) / len(runs)

    share = mean(on, "protocol")
    print(f"locks' controller: {100 * share:.2f} % of a core "
          f"({'under' if share < 0.05 else 'OVER'} the 5 % target); "
          f"whole run with / without locks: x{mean(on, 'tree') / mean(off, 'tree'):.3f} CPU; "
          f"tracking latency with / without: p50 x{mean(on, 'p50') / mean(off, 'p50'):.3f}, "
          f"p99 x{mean(on, 'p99') / mean(off, 'p99'):.3f}")  # fmt: skip
    print(f"load average at the end {psutil.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
