"""Sums over rows held in registers give numpy's products; a segment's sum, whole vectors and a
masked rest, gives numpy's; the template fit's vector pass gives
its float64 formulas, by permutes (AVX-512, AVX2) or lane by lane (another table or CPU), and
beads track to their positions compiled for AVX2 and for generic x86-64; rows
interleaved in pairs give each pixel's 2x2 neighbourhood in one copy; aligned scratch starts on
a cache line."""

import os
import subprocess
import sys

import llvmlite.binding
import numpy as np
import pytest
from numba import njit

from magacq.tracking import track_rois  # noqa: F401  (the kernels' modules, in their cache)
from magacq.tracking._fitpass import N_SUMS, fit_runs
from magacq.tracking._simd import (
    ALIGN,
    LANES,
    TABLE,
    aligned_copy,
    aligned_empty,
    argmax,
    copy_quad,
    dot_rows,
    dot_rows2,
    interleave_rows,
    segment_sum,
    tile_sums,
)
from magacq.tracking._xy import _spline_coefficients


@njit
def _dot3_into(a, tab, col, out):
    dot_rows(a, tab, col, out, 3)


def _dot3(a, tab, col):
    out = np.full(3 * LANES, np.nan, dtype=np.float32)
    _dot3_into(a, tab, col, out)
    return out


def test_dot_rows_sums_rows_of_a_window():
    rng = np.random.default_rng(1)
    a = rng.normal(size=37).astype(np.float32)
    tab = rng.normal(size=(37, 90)).astype(np.float32)
    for col in (0, 5, 90 - 3 * LANES):  # unaligned windows too
        want = a.astype(np.float64) @ tab[:, col : col + 3 * LANES]
        np.testing.assert_allclose(_dot3(a, tab, col), want, rtol=1e-5, atol=1e-5)


@njit
def _dot3_pair_into(a, b, tab, col, out_a, out_b):
    dot_rows2(a, b, tab, col, out_a, out_b, 3)


def test_dot_rows2_gives_each_weighting_what_dot_rows_gives():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 37)).astype(np.float32)
    tab = rng.normal(size=(37, 90)).astype(np.float32)
    for col in (0, 5, 90 - 3 * LANES):
        out_a, out_b = np.full((2, 3 * LANES), np.nan, dtype=np.float32)
        _dot3_pair_into(a, b, tab, col, out_a, out_b)
        np.testing.assert_array_equal(out_a, _dot3(a, tab, col))  # the same sums, same order
        np.testing.assert_array_equal(out_b, _dot3(b, tab, col))


def test_argmax_is_numpys_on_finite_floats():
    rng = np.random.default_rng(3)
    for n in (1, 17, 65, 80):
        v = rng.normal(scale=1e3, size=n).astype(np.float32)
        assert argmax(v) == np.argmax(v)
        assert argmax(-np.abs(v)) == np.argmax(-np.abs(v))  # all negative
    tie = np.array([-3.0, 5.0, 1.0, 5.0, 5.0], dtype=np.float32)
    assert argmax(tie) == 1  # the first of equal maxima
    assert argmax(tie[2:]) == 1  # a view that starts mid-array


@njit
def _segment_sums(a, bounds):
    return [segment_sum(a, bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]


def _segment_case():
    a = (np.random.default_rng(2).random(200) * 1e4).astype(np.float32)
    # empty, shorter than a vector, whole vectors, whole vectors and a rest; the last one ends
    # at the array's end: its masked load must not read past it
    bounds = np.array([0, 0, 1, 16, 33, 48, 50, 95, 200])
    want = [a[s:e].astype(np.float64).sum() for s, e in zip(bounds, bounds[1:], strict=False)]
    return a, bounds, want


def test_segment_sum_adds_whole_vectors_and_a_masked_rest():
    a, bounds, want = _segment_case()
    np.testing.assert_allclose(_segment_sums(a, bounds), want, rtol=1e-6)


@njit
def _tiles(img, whole, px, py):
    for j0 in range(0, img.shape[0] - img.shape[0] % LANES, LANES):
        tile_sums(img, j0, whole, px, py)


def test_tile_sums_give_row_and_column_sums_of_whole_tiles():
    img = np.random.default_rng(4).integers(0, 4096, (37, 45)).astype(np.float32)  # sums exact
    px = np.full(45, 7.0, dtype=np.float32)
    py = np.full(37, np.nan, dtype=np.float32)
    _tiles(img, 32, px, py)  # 2 tiles of 16 rows by 2 vectors of columns
    np.testing.assert_array_equal(py[:32], img[:32, :32].sum(axis=1))
    np.testing.assert_array_equal(px[:32], 7.0 + img[:32, :32].sum(axis=0))  # added to px
    assert np.isnan(py[32:]).all() and (px[32:] == 7.0).all()  # the rest left to the caller


@njit
def _fit_lanes(flat, runs, offsets, coef, params, acc):
    fit_runs(flat, runs, offsets, len(runs) // 2, coef, params, acc)


def _fit_sums(flat, runs, offsets, coef, params):
    acc = np.zeros(N_SUMS * LANES, dtype=np.float32)
    _fit_lanes(flat, runs, offsets, coef, params, acc)
    return acc.reshape(N_SUMS, LANES).astype(np.float64).sum(axis=1)


def _fit_reference(flat, runs, offsets, coef, params):
    """The pass's sums in float64, from its formulas."""
    r_max, inv_taper, inv, k_top, tiny = params.astype(np.float64)
    out = np.zeros(N_SUMS)
    for k in range(len(runs) // 2):
        p = flat[runs[2 * k] : runs[2 * k] + runs[2 * k + 1]].astype(np.float64)
        x = offsets[2 * k] + np.arange(p.size)
        y = np.full(p.size, offsets[2 * k + 1], dtype=np.float64)
        r = np.sqrt(x * x + y * y + tiny)
        s = np.clip((r_max - r) * inv_taper, 0.0, 1.0)
        u = np.minimum(r * inv + 0.5, k_top)
        row = np.floor(u).astype(int)
        t = u - row
        a0, a1, a2, a3 = coef[:, row].astype(np.float64)
        val = a0 + t * (a1 + t * (a2 + t * a3))
        a = -(a1 + t * (2 * a2 + 3 * t * a3)) * inv / r
        wa = a * s * s * (3 - 2 * s)
        q2 = wa * a
        we = wa * (p - val)
        out += [(q2 * x * x).sum(), (q2 * x * y).sum(), (q2 * y * y).sum(), (we * x).sum(),
                (we * y).sum()]  # fmt: skip
    return out


def _fit_case(n_col):
    rng = np.random.default_rng(n_col)
    flat = rng.normal(1000.0, 50.0, 40 * 40).astype(np.float32)
    coef = np.zeros((4, n_col), dtype=np.float32)
    # a spline continuous in r (r's last bit barely matters); in Python: no compile
    _spline_coefficients.py_func(rng.normal(size=18), coef)
    starts = [40 * j + 3 for j in range(40)]
    lengths = [5 + j % 30 for j in range(40)]  # whole vectors and remainders
    runs = np.array([v for pair in zip(starts, lengths, strict=True) for v in pair], np.int64)
    offsets = np.array([v for j in range(40) for v in (-17.3, j - 19.6)], np.float32)
    params = np.array([16.5, 0.25, 1.0, 16.5, 1e-12], np.float32)
    return flat, runs, offsets, coef, params


@pytest.mark.parametrize("n_col", [TABLE, TABLE + 9])  # by permutes, lane by lane
def test_fit_pass_gives_its_formulas(n_col):
    case = _fit_case(n_col)
    want = _fit_reference(*case)
    np.testing.assert_allclose(_fit_sums(*case), want, rtol=2e-4, atol=1e-3 * abs(want).max())


_CHECK = """
import numpy as np
from tests.tracking.test_simd import (
    _dot3, _fit_case, _fit_reference, _fit_sums, _segment_case, _segment_sums,
)
case = _fit_case(32)
want = _fit_reference(*case)
np.testing.assert_allclose(_fit_sums(*case), want, rtol=2e-4, atol=1e-3 * abs(want).max())
a, tab = np.ones(5, np.float32), np.arange(5 * 60, dtype=np.float32).reshape(5, 60)
assert np.array_equal(_dot3(a, tab, 7), tab[:, 7:55].sum(axis=0))
a, bounds, want = _segment_case()
np.testing.assert_allclose(_segment_sums(a, bounds), want, rtol=1e-6)
from magacq.tracking import track_rois
from tests.tracking._models import counts
rng = np.random.default_rng(1)
x, y = 32 + rng.uniform(-2, 2, (2, 8))
rois = counts("simulator", 64, x, y, np.full(8, -900.0), 4000.0, rng)
for method in ("com", "autoconv", "qi", "fit"):
    res = track_rois(rois, method=method)
    err = np.hypot(res.x - x, res.y - y).max()
    assert err < (0.5 if method == "com" else 0.05), (method, err)
print("ok")
"""

#: CPUs the kernels have their own code for: AVX2 (vpermps, vrsqrtps) and generic x86-64.
_TARGETS = {
    "haswell": "+64bit,+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+avx2,+fma,+f16c",
    "x86-64": "+64bit,+sse,+sse2",
}


@pytest.mark.parametrize("cpu", list(_TARGETS))
def test_vector_passes_without_avx512(tmp_path, cpu):
    # a target without AVX-512, compiled afresh in its own cache (an AVX-512 host runs both)
    if cpu == "haswell" and not _host_has("avx2"):
        pytest.skip("this CPU has no AVX2")
    env = dict(
        os.environ,
        NUMBA_CPU_NAME=cpu,
        NUMBA_CPU_FEATURES=_TARGETS[cpu],
        NUMBA_CACHE_DIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _host_has(feature: str) -> bool:
    return bool(llvmlite.binding.get_host_cpu_features().get(feature))


@njit
def _quads(pairs, ks):
    out = np.empty(4 * len(ks), dtype=pairs.dtype)
    for q in range(len(ks)):
        copy_quad(pairs, ks[q], out, np.uint64(4 * q))
    return out.reshape(-1, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.uint8])
@pytest.mark.parametrize("shape", [(64, 64), (7, 19), (33, 20)])
def test_interleaved_rows_give_each_2x2_neighbourhood_in_one_copy(shape, dtype):
    h, w = shape  # widths that are, and are not, whole blocks of lanes
    img = (np.random.default_rng(h).random(shape) * 200).astype(dtype)
    pairs = np.zeros(2 * h * w, dtype=dtype)
    interleave_rows(img, pairs)
    j, i = np.meshgrid(np.arange(h - 1), np.arange(w - 1), indexing="ij")
    j, i = j.ravel(), i.ravel()
    got = _quads(pairs, (2 * (j * w + i)).astype(np.uint64))  # odd pixels too: unaligned
    want = np.column_stack([img[j, i], img[j + 1, i], img[j, i + 1], img[j + 1, i + 1]])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint64])
def test_aligned_arrays_start_on_a_cache_line(dtype):
    for n in (1, 17, 4096):
        a = aligned_empty(n, dtype)
        assert a.shape == (n,) and a.dtype == dtype and a.ctypes.data % ALIGN == 0
    src = np.arange(33 * 7, dtype=dtype).reshape(33, 7)[:, ::2]  # strided
    c = aligned_copy(src)
    assert c.ctypes.data % ALIGN == 0 and c.flags.c_contiguous
    np.testing.assert_array_equal(c, src)
