"""Simulated camera speed: frames/s for 512x512 uint16 with 50 beads (or ``--size``,
``--beads``), on one core.

Prints frames per CPU-second of this single-threaded process, all from the same run: the sim
camera through ``read_frame`` (free-running, fast noise), its parts (bead rendering, noise),
and baselines with ratios: a plain ``np.copyto`` of a 512x512 uint16 frame, numpy's
``rng.standard_normal`` (float32) and ``rng.poisson`` of a frame. Pins itself to one CPU.

Usage: ``python benchmarks/bench_sim_camera.py [--frames 2000] [--beads 50] [--size 512] [--exact]``
(100 beads on bench_pipeline's bead-axis grid: ``--beads 100 --size 688``)
"""

import argparse
import os
import time

import numpy as np

from simulators.driver import SimCamera
from simulators.noise import to_counts


def rate(fn, n: int) -> float:
    """Calls per CPU-second of ``fn`` over ``n`` calls (after one warm-up call).

    CPU time, not wall time: on a shared machine other processes' load does not count, so the
    figure is what one dedicated core would deliver (the code is single-threaded).
    """
    fn()
    t = time.process_time()
    for _ in range(n):
        fn()
    return n / (time.process_time() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--beads", type=int, default=50)
    ap.add_argument("--size", type=int, default=512, help="frame width and height, pixels")
    ap.add_argument("--exact", action="store_true", help="exact Poisson noise (slow path)")
    args = ap.parse_args()
    W = H = args.size  # noqa: N806
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

    settings = {"width": W, "height": H, "n_beads": args.beads, "exact_noise": args.exact}
    with SimCamera(settings) as cam:
        out = np.empty((H, W), np.uint16)
        cam.start()
        for _ in range(50):  # compile, fill the z table
            cam.read_frame(out)
        wall = time.perf_counter()
        cam_fps = rate(lambda: cam.read_frame(out), args.frames)
        wall_fps = (args.frames + 1) / (time.perf_counter() - wall)
        scope = cam.microscope
        pos = scope.advance(0.001)
        frame = np.ones((H, W), np.float32)

        def render():
            frame.fill(1.0)
            scope.imager.render_beads(frame, pos[:, 0] / 100, pos[:, 1] / 100, pos[:, 2] - 6000)

        render_fps = rate(render, args.frames)
        rng = np.random.default_rng(0)
        noise_fps = rate(
            lambda: to_counts(frame, 4000.0, 2.0, 16, rng, out, offset_adu=100.0, exact=False),
            args.frames,
        )
        cam.stop()

    src = np.ones((H, W), np.uint16)
    copy_fps = rate(lambda: np.copyto(out, src), args.frames)
    g = np.empty((H, W), np.float32)
    normal_fps = rate(
        lambda: rng.standard_normal(out=g, dtype=np.float32), max(args.frames // 4, 20)
    )
    lam = np.full((H, W), 4000.0)
    poisson_fps = rate(lambda: rng.poisson(lam), max(args.frames // 20, 10))

    mode = "exact Poisson" if args.exact else "fast Gaussian-approx noise"
    print(f"sim camera, {W}x{H} uint16, {args.beads} beads, {mode}, one core")
    print(f"  read_frame (motion+render+noise) {cam_fps:10.0f} frames/s  ({wall_fps:.0f} wall)")
    print(f"    render_beads alone             {render_fps:10.0f} frames/s")
    print(f"    to_counts(exact=False) alone   {noise_fps:10.0f} frames/s")
    print("baselines, same run")
    print(f"  np.copyto of a frame             {copy_fps:10.0f} frames/s")
    print(f"  rng.standard_normal float32      {normal_fps:10.0f} frames/s")
    print(f"  rng.poisson (lam 4000)           {poisson_fps:10.0f} frames/s")
    print("ratios")
    print(f"  sim camera / np.copyto           {cam_fps / copy_fps:10.3f}")
    print(f"  sim camera / rng.standard_normal {cam_fps / normal_fps:10.2f}")
    print(f"  sim camera / rng.poisson         {cam_fps / poisson_fps:10.2f}")
    print(f"  target >= 1000 frames/s: {'met' if cam_fps >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
