"""Camera noise: Poisson shot noise, read noise, offset, saturation; exact and fast samplers."""

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
    assert abs(np.mean(np.abs(g) > 3) - 0.0027) < 3e-4  # tails (ziggurat's tail path)


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
