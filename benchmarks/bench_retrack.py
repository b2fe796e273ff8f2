"""`magacq retrack` throughput: recorded frames per second on 1 and 2 local Dask workers, against
the same frames tracked in this process by the live pipeline's Tracker (same run, same file).

The recording: ``--frames`` frames of the sim camera (512x512 uint16, ``--beads`` beads tracked
with 64 px ROIs; ``--distinct`` frames rendered, then repeated, as the work per frame is the
same) in a run file written by magacq.runfile, as a run with every frame kept writes it. Method qi
without a Z-LUT (z is NaN: the Z-LUT match is a small part of the work). The retrack figures are
of the whole command (LocalCluster start, worker imports, tasks, file written) and, "steady",
from the first stack tracked to the last (the fixed start-up cost left out); best of
``--repeats``. Scaling with workers needs idle cores: this prints the machine's load with it.

    .venv/bin/python benchmarks/bench_retrack.py [--frames 3000] [--beads 20] [--repeats 1]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from magacq.offline import retrack  # noqa: E402
from magacq.runfile import ROIS_DTYPE, RunFile  # noqa: E402
from magacq.tracking import Tracker  # noqa: E402
from simulators.driver import SimCamera  # noqa: E402

SIDE = 512
ROI = 64
STACK = 10


def _record(path: Path, n_frames: int, n_beads: int, distinct: int) -> np.ndarray:
    """Write the recording; return its ROIs ``(n, 5)``."""
    settings = {"width": SIDE, "height": SIDE, "n_beads": n_beads, "roi_size": 96, "seed": 2}
    with SimCamera(settings) as cam:
        frames = np.empty((distinct, SIDE, SIDE), cam.dtype)
        cam.start(distinct)
        for i in range(distinct):
            cam.read_frame(frames[i])
        centres = np.floor(cam.bead_xy_px + 0.5).astype(int)
    rois = np.zeros(n_beads, ROIS_DTYPE)
    rois["bead_id"] = np.arange(n_beads)
    rois["x0"], rois["y0"] = centres[:, 0] - ROI // 2, centres[:, 1] - ROI // 2
    rois["x1"], rois["y1"] = rois["x0"] + ROI, rois["y0"] + ROI
    config = {"tracking": {"algorithm": "qi", "roi_size": ROI}, "buffers": {"images_per_stack": 10}}
    attrs = {"config": json.dumps(config), "pixel_size_nm": 100.0}
    rf = RunFile(path, attrs, rois, with_truth=False, video_shape=(SIDE, SIDE, "uint16"))
    for start in range(0, n_frames, distinct):
        k = min(distinct, n_frames - start)
        numbers = np.arange(start, start + k)
        rf.append_frames(frames[:k], numbers, numbers * 1e-3)
    rf.close({"state": "complete"})
    return np.column_stack([rois[c] for c in ("bead_id", "x0", "x1", "y0", "y1")])


def _in_process(path: Path, rois: np.ndarray, n_frames: int) -> float:
    """Frames/s of the live Tracker on the file's frames, read stack by stack, in this process."""
    from magacq.runfile import read_frames

    tracker = Tracker(rois, 100.0, {"algorithm": "qi"})
    frames, numbers, stamps = read_frames(path, 0, STACK)
    tracker.track(frames, stamps, numbers)  # compiled before the clock starts
    t0 = time.perf_counter()
    for start in range(0, n_frames, 64):
        frames, numbers, stamps = read_frames(path, start, min(start + 64, n_frames))
        tracker.track(frames, stamps, numbers)
    return n_frames / (time.perf_counter() - t0)


class _Clock:
    """A progress sink (``add_task``/``advance``, as retrack calls rich's) that times stacks."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.frames: list[int] = []

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def advance(self, task: int, frames: int) -> None:
        self.times.append(time.perf_counter())
        self.frames.append(frames)

    def steady(self) -> float:
        """Frames/s after the first stack came back."""
        return sum(self.frames[1:]) / (self.times[-1] - self.times[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--beads", type=int, default=20)
    ap.add_argument("--distinct", type=int, default=100, help="frames rendered (then repeated)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        src = Path(tmp) / "recorded.h5"
        rois = _record(src, args.frames, args.beads, args.distinct)
        size = src.stat().st_size / 2**20
        print(f"recording: {args.frames} frames {SIDE}x{SIDE} uint16 ({size:.0f} MiB), "
              f"{args.beads} beads, {ROI} px ROIs, qi")  # fmt: skip
        base = max(_in_process(src, rois, args.frames) for _ in range(args.repeats))
        print(f"in-process Tracker (1 core, baseline): {base:8.0f} frames/s")
        whole, steady = {}, {}
        for workers in (1, 2):
            whole[workers] = steady[workers] = 0.0
            for k in range(args.repeats):
                out = Path(tmp) / f"out-{workers}-{k}.h5"
                clock = _Clock()
                t0 = time.perf_counter()
                retrack(src, out=out, workers=workers, progress=clock)
                whole[workers] = max(whole[workers], args.frames / (time.perf_counter() - t0))
                steady[workers] = max(steady[workers], clock.steady())
                out.unlink()
            print(f"retrack, {workers} local worker(s): whole command {whole[workers]:6.0f} "
                  f"frames/s x{whole[workers] / base:.2f}, steady {steady[workers]:6.0f} "
                  f"frames/s x{steady[workers] / base:.2f} of the baseline")  # fmt: skip
        print(f"scaling 2 workers / 1 worker: whole x{whole[2] / whole[1]:.2f}, steady "
              f"x{steady[2] / steady[1]:.2f} (cores: {os.cpu_count()}, load average "
              f"{psutil.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
