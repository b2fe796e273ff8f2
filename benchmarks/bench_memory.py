"""Memory over a long run: the resident memory of each process of `magacq run` (writer,
producer, trackers, supervisor), sampled every ``--every`` seconds through a run of
``--minutes`` at ``--rate`` frames/s on the simulated camera (configs/sim.yaml's: 12 beads,
512x512 px, ``qi`` without a Z-LUT), and each one's growth per hour from a line fitted to the
second half of the samples (the first half holds the start-up: caches filling).

Two figures per process: its resident memory (RSS), and the private part of it (RSS less the
shared memory and mapped files: the process's own heap). RSS also counts each page of the
run's shared-memory rings the first time the process touches it, so it rises until every ring
it reads or writes has wrapped once (the ``truth`` ring alone is 48 MB here: 100 s of a
500 frames/s run, many minutes on a loaded machine that renders fewer) and is bounded by the
run's buffer sizes (``magacq.pipeline.sizing``). The private growth is the one to stay flat:
the trackers hold no per-frame state, so theirs is the noise of the same run, and the writer's
and producer's are to be as flat. The frame rate the run reached is printed too.

Usage: ``python benchmarks/bench_memory.py [--minutes 60] [--rate 500] [--every 10]``
"""

import argparse
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


def _config(tmp: Path, rate: float, seconds: float, size: int, beads: int) -> Path:
    cfg = {
        "camera": {"driver": "sim", "settings": {"width": size, "height": size, "n_beads": beads,
                                                 "roi_size": 96, "frame_rate": rate}},
        "buffers": {"n_stacks": 32, "images_per_stack": 10},
        "tracking": {"workers": 2, "roi_size": 64, "algorithm": "qi"},
        "output": {"dir": str(tmp / "runs")},
        "duration": seconds,
    }  # fmt: skip
    path = tmp / "memory.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _memory(proc: psutil.Process) -> tuple[float, float]:
    """RSS and its private part (less shared memory and mapped files), MB."""
    info = proc.memory_info()
    return info.rss / 1e6, (info.rss - getattr(info, "shared", 0)) / 1e6


def _sample(run: psutil.Process) -> dict[str, tuple[float, float]]:
    """RSS and private memory (MB) of the run's processes by title (the supervisor as
    "supervisor")."""
    out = {"supervisor": _memory(run)}
    for child in run.children(recursive=True):
        try:
            title = " ".join(child.cmdline()).strip().removeprefix("magacq ")
            out[title] = _memory(child)
        except psutil.Error:
            continue
    return out


def _frames_stored(runs: Path) -> int:
    """Frames in the run's file."""
    with h5py.File(next(runs.glob("*.h5")), "r") as f:
        return int(f.attrs["frames_stored"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=512, help="frame width and height, px")
    ap.add_argument("--beads", type=int, default=12)
    args = ap.parse_args()
    seconds = 60 * args.minutes
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), args.rate, seconds, args.size, args.beads)
        magacq = Path(sys.executable).parent / "magacq"
        log = Path(tmp) / "stderr.txt"  # a file: a pipe left unread fills and stops the run
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [str(magacq), "run", str(config)], cwd=tmp, stdout=subprocess.DEVNULL, stderr=stderr
            )
        run = psutil.Process(proc.pid)
        t0 = time.monotonic()
        samples: list[tuple[float, dict[str, tuple[float, float]]]] = []
        while proc.poll() is None:
            try:
                sample = _sample(run)
            except psutil.Error:
                break
            if proc.poll() is None:  # still running: a sample of a live run
                samples.append((time.monotonic() - t0, sample))
            time.sleep(args.every)
        if proc.wait() != 0:
            sys.exit(f"the run failed ({proc.returncode}):\n{log.read_text()[-2000:]}")
        stored = _frames_stored(Path(tmp) / "runs")
    print(
        f"{args.minutes:g} min at {args.rate:g} frames/s asked, {stored / seconds:.0f} reached "
        f"({args.beads} beads, {args.size}x{args.size} px); {len(samples)} samples"
    )
    print(f"{'':<14}{'RSS MB':>30}{'private MB':>30}")
    print(f"{'process':<14}" + f"{'start':>8}{'end':>8}{'growth/h':>14}" * 2)
    half = [(t, s) for t, s in samples if t >= samples[-1][0] / 2]
    for name in sorted({k for _, s in samples for k in s}):
        pts = np.array([(t, *s[name]) for t, s in half if name in s])
        if len(pts) < 3:
            continue
        first = next(s[name] for _, s in samples if name in s)
        last = next(s[name] for _, s in reversed(samples) if name in s)
        line = f"{name:<14}"
        for k in (0, 1):
            slope = np.polyfit(pts[:, 0], pts[:, k + 1], 1)[0] * 3600
            line += f"{first[k]:>8.1f}{last[k]:>8.1f}{slope:>14.1f}"
        print(line)


if __name__ == "__main__":
    main()
