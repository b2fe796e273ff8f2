"""XYZ bead-frames per second per core: magacq.tracking against its previous kernel and magtrack.

Images: simulators.optics beads (64x64 px ROI, 100 nm/px) at random sub-pixel x, y and random
heights across a 25 nm-step Z-LUT, 4000 photons/px background (simulators.noise, uint16).
Every tracker gets its own Z-LUT from the same calibration frames. One thread each (numba, BLAS,
OpenMP); throughput is bead-frames over CPU seconds of this process (best of 15 repeats, the kernels
measured in turn: on a shared machine some round of each is clean), so other load inflates it less
than wall time would. Printed: rates and the ratio of each method to the previous kernel
(``benchmarks/legacy_tracking``, magacq.tracking as of ab18cdd, before issue 30) in the same run; XY
and Z RMS errors; precision over Cramer-Rao bound at a fixed position, both kernels; where a ROI's
time goes (each stage alone, hot in cache); and the roofline: this CPU's peak and bandwidth against
the least arithmetic each method needs (benchmarks/_roofline.py), both kernels. The compute limit's
FMA loop is timed as one more kernel, in the same rounds and for as long as one: the machine's state
when the kernels ran, the same best-of statistic (its best 80-us window, alone, as before, is
printed beside it). The kernel before issue 20 is in git history: ``benchmarks/legacy_tracking`` at
commit 3cd2239.

    .venv/bin/python benchmarks/bench_tracking.py [--n 2000] [--repeats 15]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from _roofline import fma_task, measure_machine, min_flops  # noqa: E402
from legacy_tracking import track_rois as legacy_track_rois  # noqa: E402
from numba import njit  # noqa: E402
from precision_vs_photons import crb  # noqa: E402

from magacq.tracking import ProfileSpec, build_zlut, track_rois  # noqa: E402
from magacq.tracking._sampling import SAMPLE_BLOCK, sample_quadrants  # noqa: E402
from magacq.tracking._simd import aligned_empty, interleave_rows  # noqa: E402
from magacq.tracking._track import _tables  # noqa: E402
from magacq.tracking._xy import (  # noqa: E402
    auto_convolution,
    autoconv_scratch,
    bin_means,
    center_of_mass,
    fit_scratch,
    load_roi,
    qi_scratch_size,
    qi_shift,
    template_fit,
)
from magacq.tracking._zmatch import match_plane, normalize_profile  # noqa: E402
from simulators.noise import to_counts  # noqa: E402
from simulators.optics import BeadImager, OpticsParams  # noqa: E402

ROI = 64
PHOTONS = 4000.0
Z_STEP = 25.0
Z_RANGE = (-2000.0, -200.0)
METHODS = ("com", "autoconv", "qi", "fit")


def _stack(imager, x, y, z, rng, photons=PHOTONS):
    img = np.stack([imager.render(a, b, c) for a, b, c in zip(x, y, z, strict=True)])
    return to_counts(img, photons, 2.0, 16, rng)


def _cpu_times(fns: dict, repeats: int) -> dict[str, float]:
    """Best CPU seconds of each callable over ``repeats`` rounds (all warmed up, then in turn)."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, np.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            c0 = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - c0)
    return best


def _rms(a) -> float:
    return float(np.sqrt(np.nanmean(np.square(a))))


# --- where the time goes: each stage alone on one ROI, hot in cache -------------------------


@njit
def _stage(which, roi, img, n, cx, cy, dx, dy, starts, reach, n_r, cos_t, sin_t, prof, lut, search,
           w):  # fmt: skip
    # scratch on cache lines, as the kernel's (magacq.tracking._simd)
    img = aligned_empty(img.size, np.float32).reshape(img.shape)
    px = aligned_empty(roi.shape[1], np.float32)
    py = aligned_empty(roi.shape[0], np.float32)
    cols = aligned_empty(2 * roi.shape[1], np.float32)
    load_roi(roi, img, px, py)
    sums = np.empty(4 * n_r)
    counts = np.empty(4 * n_r, dtype=np.int64)
    vals = aligned_empty(dx.shape[0], np.float32)
    fx = aligned_empty(SAMPLE_BLOCK, np.float32)
    fy = aligned_empty(SAMPLE_BLOCK, np.float32)
    idx = aligned_empty(SAMPLE_BLOCK, np.uint32)
    pairs = aligned_empty(2 * img.size, roi.dtype)
    quads = aligned_empty(4 * SAMPLE_BLOCK, roi.dtype)
    interleave_rows(roi, pairs)
    sample_quadrants(img, pairs, cx, cy, dx, dy, starts, reach, sums, counts, vals, fx, fy, idx,
                     quads)  # fmt: skip
    pr, pi, conv = autoconv_scratch(cos_t, sin_t)
    work = np.empty(qi_scratch_size(n_r))
    means = np.empty(4 * n_r)
    coef, row, runs = fit_scratch(n_r)
    pn = np.empty(n_r)
    za = aligned_empty(n_r, np.float32)
    zd = aligned_empty(search[1].shape[0], np.float32)
    acc = 0.0
    for i in range(n):
        e = i * 1e-9  # a new centre each call: nothing hoisted out of the loop
        if which == 0:
            acc += load_roi(roi, img, px, py)[0]
        elif which == 1:
            acc += center_of_mass(img, 4000.0 + e, 500.0, cols)[0]
        elif which == 2:
            acc += auto_convolution(px, py, cx + e, cy, cos_t, sin_t, pr, pi, conv)[0]
        elif which == 3:
            interleave_rows(roi, pairs)
            s = sample_quadrants(
                img, pairs, cx + e, cy, dx, dy, starts, reach, sums, counts, vals, fx, fy, idx,
                quads,
            )  # fmt: skip
            acc += s + sums[0]
        elif which == 4:
            bin_means(sums, counts, means)
            acc += qi_shift(means, n_r, 1.0, work)[0] + e
        elif which == 5:
            acc += template_fit(img, cx + e, cy, prof, 1.0, coef, row, runs)[0]
        else:
            normalize_profile(prof + e, pn)
            acc += match_plane(pn, w, lut, search[0], search[1], za, zd)[0]
    return acc


STAGES = (
    "load + background",
    "centre of mass",
    "self-convolution",
    "polar sampling",
    "QI step",
    "template fit",
    "z match",
)


def _stage_profile(roi, spec, zlut, n=3000) -> dict[str, float]:
    """Microseconds per call of each stage."""
    (dx, dy, starts, cos_t, sin_t, _), reach = _tables(spec, ROI)
    res = track_rois(roi[None], None, zlut)
    args = (
        roi, np.empty(roi.shape, np.float32), n, float(res.x[0]), float(res.y[0]), dx, dy,
        starts, reach, spec.n_radii, cos_t, sin_t, res.profiles[0], zlut.planes[0],
        (zlut.search[0][0], zlut.search[1][0]), spec.radii / spec.radii.mean(),
    )  # fmt: skip
    out = {}
    for k, name in enumerate(STAGES):
        _stage(k, *args[:2], 1, *args[3:])
        t = []
        for _ in range(3):
            c = time.process_time()
            _stage(k, *args)
            t.append(time.process_time() - c)
        out[name] = min(t) / n * 1e6
    return out


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="bead-frames for magacq")
    ap.add_argument("--n-magtrack", type=int, default=300, help="bead-frames for magtrack")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--frames", type=int, default=200, help="frames for the Cramer-Rao ratios")
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
    old_lut = build_zlut(legacy_track_rois(cal, spec=spec).profiles, z_cal, Z_STEP, spec)
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

    runs = {f"magacq {k}": (lambda k=k: track_rois(rois, idx, zlut, method=k)) for k in METHODS}
    runs |= {
        f"previous {k}": (lambda k=k: legacy_track_rois(rois, idx, old_lut, method=k))
        for k in METHODS
    }
    # the compute limit's FMA loop, timed in the same rounds as the kernels, as long as one
    fma, fma_flops = fma_task(n * sum(min_flops(ROI, len(zlut.z_nm))["qi"].values()) * 3)
    runs["FMA loop"] = fma
    cpu = _cpu_times(runs, args.repeats)
    fma_gflops = fma_flops / cpu["FMA loop"] / 1e9
    # magtrack's time includes the uint16 -> float64 conversion it needs, as ours includes its own.
    mt_cpu = _cpu_times(
        {"mt": lambda: stack_to_xyzp(np.moveaxis(rois[:m], 0, -1).astype(np.float64), mt_lut)},
        max(1, args.repeats // 2),
    )["mt"]

    # precision over the Cramer-Rao bound, the default method, fixed position
    x0, y0, z0 = 31.7, 32.4, -1100.0
    fixed = _stack(imager, np.full(args.frames, x0), np.full(args.frames, y0),
                   np.full(args.frames, z0), rng)  # fmt: skip
    bx, _, bz = crb(imager, x0, y0, z0, PHOTONS)

    print(f"load average (1, 5, 15 min): {psutil.getloadavg()}; cpus: {os.cpu_count()}")
    print(f"64x64 ROIs, {PHOTONS:.0f} photons/px, Z-LUT {len(planes)} planes x {Z_STEP:.0f} nm")
    print(f"{'':22}{'per CPU-s':>11}{'us/ROI':>8}{'x prev':>8}{'XY rms nm':>11}{'Z rms nm':>10}")
    rates = {}
    for k in METHODS:
        for who, tr, lut in (
            ("magacq", track_rois, zlut),
            ("previous", legacy_track_rois, old_lut),
        ):
            name = f"{who} {k}"
            res = tr(rois, idx, lut, method=k)
            rates[name] = n / cpu[name]
            ratio = cpu[f"previous {k}"] / cpu[name]
            print(
                f"{name:22}{rates[name]:11,.0f}{cpu[name] / n * 1e6:8.2f}{ratio:8.2f}"
                f"{_rms(np.hypot(res.x - x, res.y - y)) * 100:11.3f}{_rms(res.z - z):10.3f}"
            )
    mx, my, mz, _ = stack_to_xyzp(np.moveaxis(rois[:m], 0, -1).astype(np.float64), mt_lut)
    print(
        f"{'magtrack stack_to_xyzp':22}{m / mt_cpu:11,.0f}{mt_cpu / m * 1e6:8.2f}{'':8}"
        f"{_rms(np.hypot(mx - x[:m], my - y[:m])) * 100:11.3f}{_rms(mz - z[:m]):10.3f}"
    )
    print(f"magacq fit / magtrack: {rates['magacq fit'] / (m / mt_cpu):.1f}x (CPU time)")

    print(
        f"\nprecision / Cramer-Rao bound, fit, ({x0}, {y0}) px, z {z0:.0f} nm, {args.frames} frames"
    )
    for who, tr, lut in (("magacq", track_rois, zlut), ("previous", legacy_track_rois, old_lut)):
        res = tr(fixed, None, lut)
        ok = res.flags == 0
        sx, sz = np.std(res.x[ok]) * 100, np.std(res.z[ok])
        print(
            f"  {who:9} std x {sx:.3f} nm = {sx / bx:.2f} CRB, "
            f"std z {sz:.3f} nm = {sz / bz:.2f} CRB ({(~ok).sum()} flagged)"
        )

    prof = _stage_profile(rois[0], spec, zlut)
    print("\nwhere a 64x64 ROI's time goes (each stage alone, hot in cache):")
    flops = min_flops(ROI, len(planes))
    mach = measure_machine()
    per_stage = flops["fit"] | flops["qi"]
    for name in STAGES:
        gf = per_stage[name] / prof[name] / 1e3
        print(f"  {name:18}{prof[name]:7.2f} us  {per_stage[name]:8,.0f} flops  {gf:6.2f} GFLOP/s")

    print(
        f"\nroofline, one core: {mach.simd_bits}-bit SIMD ({mach.lanes(4)} float32 lanes), "
        f"FMA {'yes' if mach.fma else 'no'}, {mach.mhz:.0f} MHz: theoretical "
        f"{mach.theoretical_gflops_f32():.0f} GFLOP/s float32 with 2 FMA pipes; measured FMA "
        f"loop {fma_gflops:.1f} GFLOP/s float32 in the kernels' rounds (alone, its best "
        f"80-us window: {mach.fma_gflops_f32:.1f}), {mach.fma_gflops_f64:.1f} float64; "
        f"memory (numpy copy) {mach.copy_gb_s:.1f} GB/s"
    )
    roi_bytes = ROI * ROI * 2
    print(f"{'kernel method':14}{'min flops':>9}{'compute limit':>15}{'memory limit':>14}"
          f"{'reached':>10}{'of limit':>10}")  # fmt: skip
    for who, label in (("magacq", "new"), ("previous", "prev")):
        for k in METHODS:
            f = sum(flops[k].values())
            limit_c = fma_gflops * 1e9 / f
            limit_m = mach.copy_gb_s * 1e9 / roi_bytes
            got = rates[f"{who} {k}"]
            print(f"{label + ' ' + k:14}{f:9,.0f}{limit_c:15,.0f}{limit_m:14,.0f}{got:10,.0f}"
                  f"{got / min(limit_c, limit_m):10.1%}")  # fmt: skip
    print(
        "(limits in bead-frames/s per core; compute limit = the FMA loop timed in the kernels' "
        "rounds / min flops)"
    )


if __name__ == "__main__":
    main()
