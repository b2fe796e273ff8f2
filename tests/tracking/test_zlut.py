"""build_zlut: averaging per step, the tracker's normalisation, per-bead tables."""

import numpy as np
import pytest

from magacq.tracking import ProfileSpec, ZLut, build_zlut, track_rois
from magacq.tracking._zmatch import search_tables


def test_profiles_are_averaged_per_step_and_normalised():
    spec = ProfileSpec(8)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 8))
    z = np.array([0.0, 1.0, 24.0, 26.0, 50.0, 49.0])  # two samples per 25 nm step
    prof = 5.0 + 2.0 * base[[0, 0, 1, 1, 2, 2]] + rng.normal(0, 0.01, (6, 8))
    lut = build_zlut(prof, z, 25.0, spec)
    assert lut.planes.shape == (1, 3, 8) and lut.z0_nm == 0.0 and lut.dz_nm == 25.0
    np.testing.assert_allclose(lut.z_nm, [0.0, 25.0, 50.0])
    np.testing.assert_allclose(lut.planes.mean(axis=2), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt((lut.planes**2).mean(axis=2)), 1.0)
    expected = (base - base.mean(axis=1, keepdims=True)) / base.std(axis=1, keepdims=True)
    np.testing.assert_allclose(lut.planes[0], expected, atol=0.02)


def test_per_bead_tables_and_missing_planes():
    spec = ProfileSpec(6)
    prof = np.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6) ** 1.5
    prof[1, 1] = np.nan  # bead 1 lost at the second step
    lut = build_zlut(prof, np.array([100.0, 125.0, 150.0, 200.0]), 25.0, spec)
    assert lut.n_luts == 2 and lut.planes.shape == (2, 5, 6)
    assert np.isnan(lut.planes[:, 3]).all()  # no sample at 175 nm
    assert np.isnan(lut.planes[1, 1]).all() and np.isfinite(lut.planes[0, 1]).all()


def test_bad_input_is_refused():
    spec = ProfileSpec(6)
    with pytest.raises(ValueError):
        build_zlut(np.zeros((3, 5)), np.zeros(3), 25.0, spec)
    with pytest.raises(ValueError):
        build_zlut(np.zeros((3, 6)), np.zeros(3), 0.0, spec)
    with pytest.raises(ValueError):
        ZLut(np.zeros((1, 3, 5)), 0.0, 25.0, spec)


def test_geometry_must_match_the_lut(bead):
    stack = bead.stack(np.full(1, 32.0), np.full(1, 32.0), np.full(1, -900.0))
    with pytest.raises(ValueError, match="geometry"):
        track_rois(stack, None, bead.zlut, spec=ProfileSpec(10))


def test_the_plane_search_tables_give_each_planes_weighted_error():
    rng = np.random.default_rng(5)
    planes = rng.normal(size=(2, 70, 9))  # not whole calls of the search: padded
    planes[1, 3] = np.nan  # a plane with no data
    w = rng.uniform(0.5, 2.0, 9)
    planes_t, norms = search_tables(planes, w)
    p = rng.normal(size=9)
    want = ((p - planes) ** 2 * w).sum(axis=2)
    cross = np.einsum("k,lkn->ln", w * p, planes_t.astype(np.float64))
    got = (w * p * p).sum() - 2.0 * cross[:, :70] + norms[:, :70]
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-5)
    assert np.isnan(got[1, 3]) and np.isnan(norms[:, 70:]).all()  # never the nearest
