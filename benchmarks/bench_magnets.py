"""Magnets: how fast a position can be read, and what sampling them costs the frame loop.

Prints, from one run: position reads per second of the ``sim`` magnets and of the ``mmcore``
magnets on the MagacqTest adapter's stages (a real CMMCore; needs g++ for the adapter), as
ratios to the 100 Hz the motion thread samples at; and the sim camera's frames per second
(512x512, 50 beads, free-running) alone and with the magnets moving and a thread sampling them
at 100 Hz beside it, as a ratio (1.0: sampling costs the frame loop nothing).

Usage: ``python benchmarks/bench_magnets.py [--seconds 3]``
"""

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from simulators.driver import SimCamera, SimMagnets

CAMERA = {"width": 512, "height": 512, "n_beads": 50}


def reads_per_s(mag, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mag.positions()
        n += 1
    return n / (time.perf_counter() - t0)


def frames_per_s(cam, seconds: float) -> float:
    out = np.empty((cam.height, cam.width), cam.dtype)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        cam.read_frame(out)
        n += 1
    return n / (time.perf_counter() - t0)


def mmcore_reads(seconds: float) -> float | None:
    try:
        from hal.mmcore import Magnets
        from simulators.mm_adapter import build_adapter
    except ImportError:
        return None
    cfg = Path(__file__).parents[1] / "simulators" / "mm_adapter" / "MagacqTest.cfg"
    with tempfile.TemporaryDirectory() as tmp:
        mm_path = build_adapter(Path(tmp)).parent
        settings = {"mm_path": [mm_path], "config_file": cfg, "height_stage": "MagnetZ",
                    "rotation_stage": "MagnetR"}  # fmt: skip
        with Magnets(settings) as mag:
            mag.move_to("height", 1.0)
            return reads_per_s(mag, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    s = args.seconds
    with SimCamera(CAMERA) as cam, SimMagnets({"height_velocity_mm_s": 0.5}, camera=cam) as mag:
        cam.start()
        frames_per_s(cam, 0.5)  # compile, fill the z table
        sim_reads = reads_per_s(mag, s)
        alone = frames_per_s(cam, s)
        mag.move_to("height", 1.0)
        halt = threading.Event()

        def sample() -> None:
            while not halt.wait(0.01):
                mag.positions()

        sampler = threading.Thread(target=sample)
        sampler.start()
        beside = frames_per_s(cam, s)
        halt.set()
        sampler.join()
    mm = mmcore_reads(s)
    print(f"sim magnets: {sim_reads:,.0f} position reads/s = x{sim_reads / 100:,.0f} of 100 Hz")
    if mm is not None:
        print(f"mmcore magnets (MagacqTest): {mm:,.0f} reads/s = x{mm / 100:,.0f} of 100 Hz")
    print(f"sim camera alone {alone:.0f} fr/s, magnets moving + sampled at 100 Hz "
          f"{beside:.0f} fr/s: ratio {beside / alone:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
