"""This CPU's limits (SIMD width, FMA, a measured FMA loop, memory bandwidth) and the least
arithmetic each tracking method needs per bead-frame, for bench_tracking.py's roofline.

The flop counts are of one pass of each stage over the 64 px ROI's data, as the kernel does it
(a fused multiply-add counts 2): no iteration repeated, no look-up, conversion or branch
counted. They are a floor: a kernel cannot beat ``peak / flops`` bead-frames/s per core, nor
``bandwidth / bytes`` (the uint16 ROI read once).
"""

import time
from dataclasses import dataclass

import llvmlite.binding
import numpy as np
import psutil
from numba import njit

from magacq.tracking import ProfileSpec


@dataclass(frozen=True)
class Machine:
    simd_bits: int
    fma: bool
    mhz: float
    fma_gflops_f32: float
    fma_gflops_f64: float
    copy_gb_s: float

    def lanes(self, itemsize: int) -> int:
        return self.simd_bits // (8 * itemsize)

    def theoretical_gflops_f32(self, fma_units: int = 2) -> float:
        """Peak per core: lanes x 2 flops per FMA x FMA units x clock."""
        return self.lanes(4) * (2 if self.fma else 1) * fma_units * self.mhz / 1000.0


def _cpuinfo() -> tuple[set[str], float]:
    """This CPU's features as LLVM names them (numba's compiler: every OS) and its clock, MHz
    (``psutil``; 0 where the OS does not say)."""
    features = llvmlite.binding.get_host_cpu_features()
    freq = psutil.cpu_freq()
    return {name for name, on in features.items() if on}, freq.current if freq else 0.0


@njit(fastmath=True)
def _fma_loop(x: np.ndarray, a, b, reps: int) -> None:
    for _ in range(reps):
        for i in range(x.shape[0]):  # one FMA per element, vectorized, L1-resident
            x[i] = x[i] * a + b


def fma_task(flops: float):
    """The FMA loop as a task of about ``flops`` float32 flops: ``(run, flops it does)``, to be
    timed in turn with the kernels (the same rounds, windows of the same length)."""
    x = np.ones(2048, dtype=np.float32)
    a, b = np.float32(0.999999), np.float32(1e-7)
    reps = max(1, int(flops / (2.0 * x.size)))
    _fma_loop(x, a, b, 1)
    return (lambda: _fma_loop(x, a, b, reps)), 2.0 * x.size * reps


def _fma_rate(dtype, seconds: float = 0.3) -> float:
    x = np.ones(2048, dtype=dtype)
    a, b = dtype(0.999999), dtype(1e-7)
    _fma_loop(x, a, b, 1)
    reps = 1000
    best = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        c = time.process_time()
        _fma_loop(x, a, b, reps)
        dt = time.process_time() - c
        if dt > 0:
            best = max(best, 2.0 * x.size * reps / dt / 1e9)
    return best


def _copy_bandwidth(nbytes: int = 256 << 20) -> float:
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2.0 * nbytes / best / 1e9  # read + write


def measure_machine() -> Machine:
    flags, mhz = _cpuinfo()
    bits = 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
    return Machine(
        bits,
        "fma" in flags,
        mhz,
        _fma_rate(np.float32),
        _fma_rate(np.float64),
        _copy_bandwidth(),
    )


def min_flops(roi: int, n_planes: int) -> dict[str, dict[str, float]]:
    """Least flops per bead-frame, per stage, for a ``roi`` px ROI and an ``n_planes`` Z-LUT."""
    spec = ProfileSpec.for_roi(roi)
    n_px = roi * roi
    n_samples = spec.samples[0].shape[0]
    n_r = spec.n_radii
    n_f = int(0.25 * 2 * roi) + 1
    disc = int(np.pi * ((n_r - 1.5) * spec.radial_step) ** 2)
    lags = 65  # the self-convolution's scan: +-16 px
    stages = {
        # sum, sum of squares (FMA), column and row sums; the noise's fourth differences
        "load + background": 5.0 * n_px + 16 * (roi - 4) * 10.0,
        "centre of mass": 6.0 * n_px,  # |v - bg| - thr, max 0, three sums
        "self-convolution": 2 * (2 * 2 * roi * n_f + 4 * lags * n_f + 3 * 10 * n_f),
        "polar sampling": 10.0 * n_samples,  # 3 lerps (FMA) + 4 index/fraction
        "QI step": 4.0 * n_r + 2 * 9 * 2 * n_r * 2,
        "template fit": 35.0 * disc,  # r^2, 1/r, spline + slope, taper, 5 sums
        "z match": 3.0 * n_planes * n_r + 6 * 10.0 * n_r,
    }
    common = ["load + background", "centre of mass", "polar sampling", "z match"]
    methods = {
        "com": common,
        "autoconv": [*common, "self-convolution"],
        "qi": [*common, "self-convolution", "QI step"],
        "fit": [*common, "self-convolution", "template fit"],
    }
    return {m: {s: stages[s] for s in names} for m, names in methods.items()}
