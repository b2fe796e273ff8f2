"""Memory over a long run: the resident memory of each process of `magacq run` (writer,
producer, trackers, supervisor), sampled every ``--every`` seconds through a run of
``--minutes`` at ``--rate`` frames/s on the simulated camera (configs/sim.yaml's: 12 beads,
512x512 px, ``qi`` without a Z-LUT), and each one's growth per hour from a line fitted to the
second half of the samples (the first half holds the start-up: caches filling, buffers
touched).

The trackers hold no per-frame state: their growth is the baseline of the same run (a few
MB/h at most is noise there); the writer and producer are to stay as flat.

Usage: ``python benchmarks/bench_memory.py [--minutes 60] [--rate 500] [--every 10]``
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]


def _config(tmp: Path, rate: float, seconds: float) -> Path:
    cfg = {
        "camera": {"driver": "sim", "settings": {"width": 512, "height": 512, "n_beads": 12,
                                                 "roi_size": 96, "frame_rate": rate}},
        "buffers": {"n_stacks": 32, "images_per_stack": 10},
        "tracking": {"workers": 2, "roi_size": 64, "algorithm": "qi"},
        "output": {"dir": str(tmp / "runs")},
        "duration": seconds,
    }  # fmt: skip
    path = tmp / "memory.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sample(run: psutil.Process) -> dict[str, float]:
    """RSS (MB) of the run's processes by title (the supervisor as "supervisor")."""
    out = {"supervisor": run.memory_info().rss / 1e6}
    for child in run.children(recursive=True):
        try:
            title = " ".join(child.cmdline()).strip().removeprefix("magacq ")
            out[title] = child.memory_info().rss / 1e6
        except psutil.Error:
            continue
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--every", type=float, default=10.0)
    args = ap.parse_args()
    seconds = 60 * args.minutes
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), args.rate, seconds)
        magacq = Path(sys.executable).parent / "magacq"
        proc = subprocess.Popen(
            [str(magacq), "run", str(config)],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = psutil.Process(proc.pid)
        t0 = time.monotonic()
        samples: list[tuple[float, dict[str, float]]] = []
        while proc.poll() is None:
            try:
                sample = _sample(run)
            except psutil.Error:
                break
            if proc.poll() is None:  # still running: a sample of a live run
                samples.append((time.monotonic() - t0, sample))
            time.sleep(args.every)
        err = proc.communicate()[1]
    if proc.returncode != 0:
        sys.exit(f"the run failed ({proc.returncode}):\n{err[-2000:]}")
    print(f"{args.minutes:g} min at {args.rate:g} frames/s, {len(samples)} samples")
    print(f"{'process':<14}{'start MB':>10}{'end MB':>10}{'growth MB/h':>13}")
    half = [(t, s) for t, s in samples if t >= samples[-1][0] / 2]
    slopes = {}
    for name in sorted({k for _, s in samples for k in s}):
        pts = np.array([(t, s[name]) for t, s in half if name in s])
        if len(pts) < 3:
            continue
        slopes[name] = np.polyfit(pts[:, 0], pts[:, 1], 1)[0] * 3600
    for name, slope in slopes.items():
        first = next(s[name] for _, s in samples if name in s)
        last = next(s[name] for _, s in reversed(samples) if name in s)
        print(f"{name:<14}{first:>10.1f}{last:>10.1f}{slope:>13.1f}")


if __name__ == "__main__":
    main()
