"""From `magacq run` to the first tracked frame: on a fresh install (empty caches) and warm.

Each round launches ``magacq run CONFIG --duration 1`` twice on one new, empty cache directory:
``cold`` (every numba kernel is compiled: the tracking kernels, the simulator's, the buffers'),
then ``warm`` (all of them load from the disk cache), the warm run being the baseline. numba's
caches are sent there by ``NUMBA_CACHE_DIR`` and magacq's by ``MAGACQ_CACHE_DIR``, so the
kernels cached next to the sources or in the user's cache directory are not seen. A third run
per round, ``precompiled``, comes after ``magacq compile --algorithm A --dtype uint16`` (the
install step, for the config's algorithm and the sim camera's pixel type only, to keep the
benchmark short) on another empty cache directory.

Times, from the launch (host ``time.monotonic()``, the clock of the run file's ``acquiring``):

- ``camera``: the camera started (``acquiring``);
- ``first track``: the first tracked frame left the trackers: the camera start, plus that
  frame's camera time since the first frame (``tracks.time - first_frame_timestamp``), plus the
  run's median latency from a frame's timestamp to its positions (``latency_p50_s``);
- ``exit``: the command returned;
- ``cpu``: CPU seconds of the run's processes, all together (less sensitive to other load).

``warm spawn`` is a warm run whose processes start by spawn (the start method of Windows and
macOS) instead of fork: its ratio to ``warm`` is spawn's cost.

``compile`` is the cold run's share of the time to the first track spent beyond the warm run's
(the compilation on the critical path). Medians over the rounds, [min-max].

    .venv/bin/python benchmarks/bench_startup.py [--rounds 3] [CONFIG]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
MAGACQ = Path(sys.executable).with_name("magacq")


def _run(config: Path, cache: Path, out: Path, method: str = "fork") -> dict[str, float]:
    """One `magacq run --duration 1` on caches under ``cache``, its processes started by
    ``method``: its times, s from the launch."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache / "numba"),
               MAGACQ_CACHE_DIR=str(cache / "magacq"), MAGACQ_START_METHOD=method)  # fmt: skip
    before = set(out.glob("*.h5"))
    cpu0 = _children_cpu()
    t0 = time.monotonic()
    done = subprocess.run(
        [str(MAGACQ), "run", str(config), "--duration", "1", "--output", str(out)],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    t_exit = time.monotonic() - t0
    cpu = _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"magacq run failed ({done.returncode}):\n{done.stderr}")
    (path,) = set(out.glob("*.h5")) - before
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        t = f["tracks"]["time"]
        first = float(np.min(t)) if len(t) else np.nan
    camera = attrs["acquiring"] - t0
    track = camera + first - attrs["first_frame_timestamp"] + attrs["latency_p50_s"]
    return {"camera": camera, "first track": track, "exit": t_exit, "cpu": cpu}


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children (psutil counts them on
    Linux only: 0 elsewhere)."""
    times = psutil.Process().cpu_times()
    return times.children_user + times.children_system


def _compile(cache: Path, algorithm: str) -> float:
    """`magacq compile --algorithm ALGORITHM --dtype uint16` (the sim camera's) on the caches
    under ``cache``; its wall time, s."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache / "numba"),
               MAGACQ_CACHE_DIR=str(cache / "magacq"))  # fmt: skip
    t0 = time.monotonic()
    cmd = [str(MAGACQ), "compile", "--algorithm", algorithm, "--dtype", "uint16"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"magacq compile failed ({done.returncode}):\n{done.stderr}")
    return time.monotonic() - t0


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", type=Path, default=ROOT / "configs" / "sim.yaml")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"load average (1, 5, 15 min): {psutil.getloadavg()}; cpus: {os.cpu_count()}")
    algorithm = yaml.safe_load(args.config.read_text())["tracking"]["algorithm"]
    print(f"magacq run {args.config.name} --duration 1 (tracking: {algorithm}), "
          f"{args.rounds} rounds")  # fmt: skip
    kinds = ["cold", "warm", "warm spawn", "precompiled"]
    times: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    compile_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        out = Path(tmp) / "runs"
        for i in range(args.rounds):
            cache = Path(tmp) / f"cache{i}"
            rounds = {"cold": _run(args.config, cache, out)}
            rounds["warm"] = _run(args.config, cache, out)
            rounds["warm spawn"] = _run(args.config, cache, out, "spawn")  # Windows', macOS's
            compile_s.append(_compile(Path(tmp) / f"pre{i}", algorithm))
            rounds["precompiled"] = _run(args.config, Path(tmp) / f"pre{i}", out)
            for kind, r in rounds.items():
                for key, value in r.items():
                    times[kind].setdefault(key, []).append(value)
            print(f"  round {i + 1}: "
                  + ", ".join(f"{k} {r['first track']:.2f} s" for k, r in rounds.items()),
                  flush=True)  # fmt: skip
    warm = times["warm"]["first track"]
    columns = ("camera", "first track", "exit", "cpu")
    print(f"{'':12s}" + "".join(f"{c:>24s}" for c in columns) + "  x warm (first track)")
    for kind in kinds:
        t = times[kind]
        ratio = [a / b for a, b in zip(t["first track"], warm, strict=True)]
        print(f"{kind:12s}" + "".join(f"{_fmt(t[c]):>24s}" for c in columns)
              + f"  x{statistics.median(ratio):.2f}")  # fmt: skip
    extra = [c - w for c, w in zip(times["cold"]["first track"], warm, strict=True)]
    share = [e / c for e, c in zip(extra, times["cold"]["first track"], strict=True)]
    print(
        f"compile on the cold run's critical path: {_fmt(extra)} = "
        f"{100 * statistics.median(share):.0f} % of its time to the first track"
    )
    print(f"magacq compile --algorithm {algorithm} --dtype uint16: {_fmt(compile_s)}")
    print(f"load average now: {psutil.getloadavg()}")


if __name__ == "__main__":
    main()
