"""XYZ bead-frames per second per core: magacq.tracking against magtrack, same images, same run.

Images: simulators.optics beads (64x64 px ROI, 100 nm/px) at random sub-pixel x, y and random
heights across a 25 nm-step Z-LUT, 4000 photons/px background (simulators.noise, uint16).
Both trackers get their own Z-LUT from the same calibration frames. One thread each (numba,
BLAS, OpenMP); throughput is bead-frames over CPU seconds of this process (best of several
repeats), so other load on a shared machine inflates it less than wall time would.

    .venv/bin/python benchmarks/bench_tracking.py [--n 2000] [--repeats 5]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from magacq.tracking import ProfileSpec, build_zlut, track_rois  # noqa: E402
from simulators.noise import to_counts  # noqa: E402
from simulators.optics import BeadImager, OpticsParams  # noqa: E402

ROI = 64
PHOTONS = 4000.0
Z_STEP = 25.0
Z_RANGE = (-2000.0, -200.0)


def _stack(imager, x, y, z, rng):
    img = np.stack([imager.render(a, b, c) for a, b, c in zip(x, y, z, strict=True)])
    return to_counts(img, PHOTONS, 2.0, 16, rng)


def _cpu_rate(fn, n_items: int, repeats: int) -> tuple[float, float]:
    """Best items per CPU second and per wall second over ``repeats`` calls (after a warm-up)."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return n_items / min(cpu), n_items / min(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="bead-frames for magacq")
    ap.add_argument("--n-magtrack", type=int, default=300, help="bead-frames for magtrack")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--method", default="fit", help="magacq XY method")
    args = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # magtrack warns that CuPy is absent
        from magtrack.core import stack_to_xyzp

    rng = np.random.default_rng(0)
    imager = BeadImager(OpticsParams(), ROI)
    z_cal = np.repeat(np.arange(Z_RANGE[0], Z_RANGE[1] + 1, Z_STEP), 10)
    c = ROI / 2 + rng.uniform(-0.5, 0.5, (2, len(z_cal)))
    cal = _stack(imager, c[0], c[1], z_cal, rng)
    spec = ProfileSpec.for_roi(ROI)
    zlut = build_zlut(track_rois(cal, spec=spec).profiles, z_cal, Z_STEP, spec)
    # magtrack's LUT: its own profiles of the same frames, averaged per plane, z in row 0.
    _, _, _, mt_prof = stack_to_xyzp(np.moveaxis(cal, 0, -1).astype(np.float64))
    planes = zlut.z_nm
    mt_lut = np.vstack([planes, mt_prof.reshape(mt_prof.shape[0], len(planes), 10).mean(axis=2)])

    n = args.n
    x = ROI / 2 + rng.uniform(-2, 2, n)
    y = ROI / 2 + rng.uniform(-2, 2, n)
    z = rng.uniform(Z_RANGE[0] + Z_STEP, Z_RANGE[1] - Z_STEP, n)
    rois = _stack(imager, x, y, z, rng)
    idx = np.zeros(n, dtype=np.int64)
    m = min(args.n_magtrack, n)
    mt_stack = np.moveaxis(rois[:m], 0, -1).astype(np.float64)  # (roi, roi, n) as magtrack wants

    ours_cpu, ours_wall = _cpu_rate(
        lambda: track_rois(rois, idx, zlut, method=args.method), n, args.repeats
    )
    # magtrack's time includes the uint16 -> float64 conversion it needs, as ours includes its own.
    mt_cpu, mt_wall = _cpu_rate(
        lambda: stack_to_xyzp(np.moveaxis(rois[:m], 0, -1).astype(np.float64), mt_lut),
        m,
        max(1, args.repeats // 2),
    )

    res = track_rois(rois, idx, zlut, method=args.method)
    mx, my, mz, _ = stack_to_xyzp(mt_stack, mt_lut)

    def rms(a):
        return float(np.sqrt(np.nanmean(np.square(a))))

    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cpus: {os.cpu_count()}")
    print(f"64x64 ROIs, {PHOTONS:.0f} photons/px, Z-LUT {len(planes)} planes x {Z_STEP:.0f} nm")
    print(f"{'':24}{'per CPU-s':>12}{'per wall-s':>12}{'XY rms nm':>11}{'Z rms nm':>10}")
    print(
        f"{'magacq (' + args.method + ')':24}{ours_cpu:12,.0f}{ours_wall:12,.0f}"
        f"{rms(np.hypot(res.x - x, res.y - y)) * 100:11.2f}{rms(res.z - z):10.2f}"
    )
    print(
        f"{'magtrack stack_to_xyzp':24}{mt_cpu:12,.0f}{mt_wall:12,.0f}"
        f"{rms(np.hypot(mx - x[:m], my - y[:m])) * 100:11.2f}{rms(mz - z[:m]):10.2f}"
    )
    print(
        f"ratio magacq / magtrack: {ours_cpu / mt_cpu:.1f}x (CPU time), "
        f"{ours_wall / mt_wall:.1f}x (wall)"
    )


if __name__ == "__main__":
    main()
