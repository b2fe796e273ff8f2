"""Table look-ups give numpy's fancy indexing, by permutes (AVX-512) or by scalar loads; rows
interleaved in pairs give each pixel's 2x2 neighbourhood in one copy; aligned scratch starts on
a cache line."""

import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from magacq.tracking import track_rois  # noqa: F401  (the kernels' modules, in their cache)
from magacq.tracking._simd import (
    ALIGN,
    LANES,
    TABLE,
    aligned_copy,
    aligned_empty,
    copy_quad,
    interleave_rows,
    take,
)

_CHECK = """
import numpy as np
from magacq.tracking._simd import LANES, TABLE, take
rng = np.random.default_rng(3)
table = rng.normal(size=TABLE).astype(np.float32)
idx = rng.integers(0, TABLE, 5 * LANES).astype(np.int32)
out = np.zeros(idx.size, dtype=np.float32)
take(table, idx, out, idx.size - 3)
assert np.array_equal(out[: idx.size - 3], table[idx[: idx.size - 3]])
print("ok")
"""


@pytest.mark.parametrize("n_table", [TABLE, TABLE + 9, 7])
def test_take_matches_fancy_indexing(n_table):
    rng = np.random.default_rng(n_table)
    table = rng.normal(size=n_table).astype(np.float32)
    m = 7 * LANES + 5
    idx = rng.integers(0, n_table, 8 * LANES).astype(np.int32)
    out = np.full(idx.size, np.nan, dtype=np.float32)
    take(table, idx, out, m)
    assert np.array_equal(out[:m], table[idx[:m]])


def test_take_without_avx512_falls_back_to_scalar_loads(tmp_path):
    # A generic x86-64 target (no AVX-512), compiled afresh in its own cache.
    env = dict(
        os.environ,
        NUMBA_CPU_NAME="x86-64",
        NUMBA_CPU_FEATURES="+64bit,+sse,+sse2",
        NUMBA_CACHE_DIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


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
