"""The magnets' force law fitted to forces at several heights."""

import numpy as np
import pytest

from magacq.analysis import fit_force_law
from simulators.magnetics import FORCE_LAWS

LAW = FORCE_LAWS["M270"]  # the simulator's: two exponentials


def test_force_law_follows_the_magnets_within_its_errors() -> None:
    rng = np.random.default_rng(0)
    h = np.repeat(np.array([1.0, 1.5, 2.5, 4.0, 6.0, 8.0]), 3)
    err = 0.04 * LAW(h)
    law = fit_force_law(h, LAW(h) + rng.standard_normal(len(h)) * err, err)
    grid = np.linspace(1.0, 8.0, 15)
    # a cubic in ln F holds a double exponential to a few per cent over 1-8 mm
    off = np.abs(law.force(grid) / LAW(grid) - 1)
    assert np.all(off < 0.08), off
    assert np.all(off < 3 * law.force_err(grid) / law.force(grid) + 0.03), off
    assert np.all(law.force_err(grid) / law.force(grid) < 0.05)
    assert np.all(np.diff(law.force(grid)) < 0)
    assert law.dof == len(h) - 4 and law.heights_mm == (1.0, 8.0)


def test_three_heights_give_an_exponential_and_rising_forces_are_refused() -> None:
    law = fit_force_law([2.0, 4.0, 6.0], LAW(np.array([2.0, 4.0, 6.0])), [0.1, 0.05, 0.02])
    assert np.all(law.coef[2:] == 0) and law.coef[1] < 0
    with pytest.raises(ValueError, match="do not fall"):
        fit_force_law([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="need 2 or more"):
        fit_force_law([2.0, 2.0], [1.0, 1.1], [0.1, 0.1])
