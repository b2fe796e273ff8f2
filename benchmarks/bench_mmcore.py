"""Frames/s through the mmcore driver vs a bare pymmcore popNextImage loop, same run.

The MagacqTest camera free-runs (exposure 0, 512x512 uint16, Counter pattern) into MMCore's
circular buffer; each mode reads for ``--seconds`` and counts the frames it received. Modes:

- ``pymmcore``: ``while ...: if core.getRemainingImageCount(): core.popNextImage()`` (baseline)
- ``driver``: ``hal.mmcore.Camera.read_frame`` into one preallocated array
- ``videobuffer``: ``read_frame`` into ``VideoBuffer.begin_write()`` slots, committed, stacks
  released as they fill (what the producer does)

Rounds alternate the modes; the median of each is reported with its ratio to the baseline.
Run from the repository root: ``python benchmarks/bench_mmcore.py``.
"""

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from hal.mmcore import Camera
from simulators.mm_adapter import build_adapter

CFG = Path(__file__).parents[1] / "simulators" / "mm_adapter" / "MagacqTest.cfg"


def bare_pymmcore(core: Any, seconds: float) -> tuple[int, int]:
    core.startContinuousSequenceAcquisition(0)
    n, t_end = 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        if core.getRemainingImageCount():
            core.popNextImage()
            n += 1
    core.stopSequenceAcquisition()
    return n, -1


def driver(cam: Camera, seconds: float) -> tuple[int, int]:
    out = np.empty((cam.height, cam.width), cam.dtype)
    cam.start()
    n, t_end = 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        cam.read_frame(out)
        n += 1
    cam.stop()
    return n, cam.dropped_frames


def video_buffer(cam: Camera, seconds: float) -> tuple[int, int]:
    from buffers import VideoBuffer, make_locks

    vb = VideoBuffer(
        create=True,
        locks=make_locks("VideoBuffer"),
        n_stacks=8,
        width=cam.width,
        height=cam.height,
        n_images=10,
        bits=16,
    )
    try:
        cam.start()
        n, t_end = 0, time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            slot = vb.begin_write(0.0)
            info = cam.read_frame(slot)
            vb.commit_write(info.timestamp)
            n += 1
            if vb.check_read_stack():
                vb.read_stack_no_return()
        cam.stop()
    finally:
        vb.close()
    return n, cam.dropped_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per mode and round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    mm_path = build_adapter().parent
    settings = {
        "mm_path": [mm_path],
        "config_file": CFG,
        "exposure_ms": 0.0,
        "properties": {"PixelType": "16bit", "Pattern": "Counter"},
        "buffer_mb": 256,
    }
    results: dict[str, list[float]] = {"pymmcore": [], "driver": [], "videobuffer": []}
    drops: dict[str, int] = dict.fromkeys(results, 0)
    with Camera(settings) as cam:
        for _ in range(args.rounds):
            for mode in results:
                t0 = time.perf_counter()
                if mode == "pymmcore":
                    n, d = bare_pymmcore(cam.core, args.seconds)
                elif mode == "driver":
                    n, d = driver(cam, args.seconds)
                else:
                    n, d = video_buffer(cam, args.seconds)
                results[mode].append(n / (time.perf_counter() - t0))
                drops[mode] += max(d, 0)
    base = statistics.median(results["pymmcore"])
    print(f"512x512 uint16, MagacqTest camera free-running, {args.rounds} x {args.seconds:g} s")
    for mode, fps in results.items():
        med = statistics.median(fps)
        dropped = "n/a" if mode == "pymmcore" else str(drops[mode])
        print(
            f"{mode:12s} {med:9.0f} frames/s  ratio {med / base:5.2f}  "
            f"(rounds: {', '.join(f'{f:.0f}' for f in fps)}; dropped {dropped})"
        )


if __name__ == "__main__":
    main()
