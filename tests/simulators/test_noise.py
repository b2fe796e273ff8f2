"""Camera noise: Poisson shot noise, read noise, offset, saturation; exact and fast samplers."""

from math import erf, sqrt

import numpy as np
import pytest

from simulators.noise import count_dtype, to_counts


@pytest.mark.parametrize("exact", [True, False])
def test_mean_and_variance(exact):
    rng = np.random.default_rng(1)
    level = np.full((400, 500), 1.3)
    counts = to_counts(level, 4000.0, 3.0, 16, rng, offset_adu=100.0, exact=exact)
    assert counts.dtype == np.uint16
    c = counts.astype(np.float64)
    mean, var = 1.3 * 4000 + 100, 1.3 * 4000 + 9.0 + 1 / 12  # + rounding
    se_mean, se_var = np.sqrt(var / c.size), var * np.sqrt(2 / c.size)
    assert abs(c.mean() - mean) < 5 * se_mean
    assert abs(c.var() - var) < 5 * se_var


@pytest.mark.parametrize("exact", [True, False])
def test_low_counts_are_poisson(exact):
    rng = np.random.default_rng(2)
    c = to_counts(np.full(200_000, 0.002), 4000.0, 0.0, 12, rng, exact=exact).astype(float)
    assert abs(c.mean() - 8.0) < 0.05 and abs(c.var() - 8.0) < 0.15
    assert abs(np.mean(c == 0) - np.exp(-8.0)) < 3e-4  # Poisson P(0), not a Gaussian's


def test_fast_sampler_is_gaussian_at_high_counts():
    rng = np.random.default_rng(3)
    z = to_counts(np.zeros(1_000_000), 0.0, 1000.0, 20, rng, offset_adu=50_000.0, exact=False)
    g = (z.astype(np.float64) - 50_000.0) / 1000.0
    assert abs(g.mean()) < 0.005 and abs(g.var() - 1) < 0.005
    assert abs(np.mean(g**4) - 3) < 0.05  # kurtosis of a normal
    assert abs(np.mean(np.abs(g) > 3) - 0.0027) < 3e-4  # tails (Box-Muller radius)


@pytest.mark.parametrize("exact", [True, False])
def test_saturation_and_clipping(exact):
    rng = np.random.default_rng(4)
    c = to_counts(np.array([[100.0, -5.0, 0.0]]), 1000.0, 5.0, 12, rng, exact=exact)
    assert c[0, 0] == 4095 and c[0, 1] <= 25 and c[0, 2] <= 25
    dark = to_counts(np.zeros(10_000), 1000.0, 5.0, 12, rng, exact=exact)
    assert 0.4 < np.mean(dark == 0) < 0.6  # read noise below zero clips at 0
    assert c.dtype == count_dtype(12) == np.uint16


def test_out_array_and_fresh_noise_each_call():
    rng = np.random.default_rng(5)
    level = np.ones((64, 64), np.float32)
    out = np.empty((64, 64), np.uint16)
    a = to_counts(level, 4000.0, 2.0, 16, rng, out, exact=False).astype(float)
    assert a is not None and out.base is None
    b = to_counts(level, 4000.0, 2.0, 16, rng, out, exact=False).astype(float)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.05  # no repeating noise
    with pytest.raises(ValueError):
        to_counts(level, 4000.0, 2.0, 16, rng, np.empty((64, 64), np.uint8))


def test_seeded_reproducible():
    level = np.ones((32, 32))
    a = to_counts(level, 100.0, 1.0, 16, np.random.default_rng(7), exact=False)
    b = to_counts(level, 100.0, 1.0, 16, np.random.default_rng(7), exact=False)
    np.testing.assert_array_equal(a, b)


def _poisson_moments(c, m, read_sd):
    """Mean, variance and skewness of ``c`` beside those of Poisson(m) + Normal(0, read_sd)."""
    mean, var = c.mean(), c.var()
    skew = np.mean((c - mean) ** 3) / var**1.5
    p_var = m + read_sd**2 + 1 / 12  # + rounding
    return mean, var, skew, p_var, m / p_var**1.5


@pytest.mark.parametrize("level", [0.0075, 0.1, 1.0, 5.0])  # 30, 400, 4000, 20000 photons
def test_fast_path_moments_against_poisson(level):
    """Mean and variance of Poisson + read noise; skewness: Poisson's, or, on the Gaussian path
    (m >= 30), within the documented approximation (it lacks the ``m**-0.5`` skewness)."""
    m, read_sd, n = level * 4000.0, 2.0, 2_000_000
    rng = np.random.default_rng(11)
    c = to_counts(np.full(n, level), 4000.0, read_sd, 20, rng, offset_adu=500.0, exact=False)
    mean, var, skew, p_var, p_skew = _poisson_moments(c.astype(np.float64) - 500.0, m, read_sd)
    assert abs(mean - m) < 5 * np.sqrt(p_var / n)
    assert abs(var - p_var) < 5 * p_var * np.sqrt(2 / n)
    se_skew = np.sqrt(6 / n)
    if m >= 30:
        assert abs(skew) < 5 * se_skew  # a Gaussian
        assert abs(skew - p_skew) <= p_skew + 5 * se_skew
    else:
        assert abs(skew - p_skew) < 5 * se_skew


def test_fast_path_dim_pixels_are_poisson_plus_read_noise():
    m, read_sd, n = 6.0, 1.5, 1_000_000
    rng = np.random.default_rng(12)
    c = to_counts(np.full(n, m / 1000), 1000.0, read_sd, 16, rng, offset_adu=100.0, exact=False)
    mean, var, skew, p_var, p_skew = _poisson_moments(c.astype(np.float64) - 100.0, m, read_sd)
    assert abs(mean - m) < 5 * np.sqrt(p_var / n)
    assert abs(var - p_var) < 5 * p_var * np.sqrt(2 / n)
    assert abs(skew - p_skew) < 5 * np.sqrt(6 / n)


def test_fast_normals_tails_and_shape():
    """The Box-Muller normals, through a unit-variance camera, against the normal's quantiles."""
    rng = np.random.default_rng(13)
    n = 4_000_000
    z = to_counts(np.zeros(n), 0.0, 1000.0, 24, rng, offset_adu=5e6, exact=False)
    g = (z.astype(np.float64) - 5e6) / 1000.0
    for k, p in [(1.0, 0.31731050786), (2.0, 0.04550026390), (4.0, 6.3342483666e-5)]:
        assert abs(np.mean(np.abs(g) > k) - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(np.mean(g > 0) - 0.5) < 5 * np.sqrt(0.25 / n)  # signs balanced
    hist, edges = np.histogram(g, bins=64, range=(-4, 4))
    cdf = np.array([0.5 * (1 + erf(e / sqrt(2))) for e in edges])
    expected = n * np.diff(cdf)
    chi2 = np.sum((hist - expected) ** 2 / expected)
    assert chi2 < 64 + 5 * np.sqrt(2 * 64)  # 64 degrees of freedom (less one), 5 sigma


def test_fast_noise_independent_between_frames_and_pixels():
    rng = np.random.default_rng(14)
    level = np.ones((512, 512), np.float32)
    out = np.empty((512, 512), np.uint16)
    frames = [
        to_counts(level, 4000.0, 2.0, 16, rng, out, exact=False).astype(np.float64).ravel()
        for _ in range(3)
    ]
    n = frames[0].size
    lim = 5 / np.sqrt(n)
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        assert abs(np.corrcoef(frames[a], frames[b])[0, 1]) < lim  # fresh noise every frame
    f = frames[0] - frames[0].mean()
    # neighbours, the xoshiro lanes (16), the Box-Muller partner (1024) and the next block (2048)
    for lag in (1, 2, 16, 512, 1024, 2048):
        r = np.dot(f[:-lag], f[lag:]) / np.dot(f, f)
        assert abs(r) < lim, lag
    # the Box-Muller partners share a radius: their squares must be uncorrelated too
    blocks = f[: n // 2048 * 2048].reshape(-1, 2, 1024)
    sq = blocks**2
    assert abs(np.corrcoef(sq[:, 0].ravel(), sq[:, 1].ravel())[0, 1]) < 5 / np.sqrt(n / 2)


def test_fast_path_seeded_stream():
    """Reproducible from the rng's seed, different for another seed, and it advances the rng."""
    level = np.ones((64, 64))
    a = to_counts(level, 4000.0, 2.0, 16, np.random.default_rng(21), exact=False)
    b = to_counts(level, 4000.0, 2.0, 16, np.random.default_rng(21), exact=False)
    c = to_counts(level, 4000.0, 2.0, 16, np.random.default_rng(22), exact=False)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a == c) < 0.05
    rng = np.random.default_rng(21)
    before = rng.bit_generator.state
    to_counts(level, 4000.0, 2.0, 16, rng, exact=False)
    assert rng.bit_generator.state != before


def test_fast_path_non_contiguous_out_and_small_dtypes():
    rng = np.random.default_rng(23)
    big = np.zeros((32, 64), np.uint8)
    view = big[:, ::2]
    to_counts(np.full((32, 32), 0.05), 1000.0, 1.0, 8, rng, view, exact=False)
    assert (big[:, 1::2] == 0).all() and abs(view.mean() - 50) < 3
    sat = to_counts(np.full(3000, 10.0), 1000.0, 1.0, 8, rng, exact=False)
    assert (sat == 255).all() and sat.dtype == np.uint8
