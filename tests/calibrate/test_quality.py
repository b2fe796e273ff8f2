"""`magacq calibrate`'s verdict on its Z-LUTs: no good bead fails the calibration (exit 1, one
line), bad beads are named, and a quality figure is written either way."""

from pathlib import Path

import h5py
import numpy as np

from magacq.tracking import bead_set_difference
from tests.pipeline import _runner as r


def _calibrate(tmp: Path, rois: list) -> tuple:
    # one bead, at (32, 32); ROIs where asked (one on empty background tracks nothing)
    base = r.two_beads(tmp, [[32, 32]], (5500, 6500), seed=2, n_beads=1)
    base["beads"]["rois"] = rois
    out = tmp / "lut.h5"
    done = r.cli("calibrate", str(r.write_config(tmp, base, "cal")), "--output", str(out),
                 cwd=tmp, timeout=300)  # fmt: skip
    return done, out


def test_no_good_bead_fails_with_one_line_and_saves_no_lut(tmp_path: Path) -> None:
    done, out = _calibrate(tmp_path, [[96, 32]])
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "no bead yields a good Z-LUT: bead 0 (" in line and "Traceback" not in done.stderr
    assert not out.exists()
    assert out.with_suffix(".quality.png").stat().st_size > 5_000


def test_bad_beads_are_named_and_the_good_ones_saved(tmp_path: Path) -> None:
    done, out = _calibrate(tmp_path, [[32, 32], [96, 32]])
    assert done.returncode == 0, done.stderr
    assert "1/2 beads with a good Z-LUT; not: bead 1 (" in done.stderr
    with h5py.File(out) as f:
        assert list(f["quality"]["good"]) == [True, False]
    assert out.with_suffix(".quality.png").stat().st_size > 5_000


def test_bead_set_difference_names_count_and_positions() -> None:
    lut = np.array([[10, 10], [100, 10], [200, 10]])
    assert bead_set_difference(lut + 1, lut, 2) == ""
    moved = bead_set_difference([[10, 10], [100, 10], [260, 40]], lut, 2)
    assert moved == (
        "1 bead(s) of this run not in the other (ROI corners (260, 40)); "
        "1 bead(s) of the Z-LUT file not in the other (ROI corners (200, 10))"
    )
    fewer = bead_set_difference(lut[:2], lut, 2)
    assert fewer.startswith("this run has 2 beads, the Z-LUT file 3; 1 bead(s) of the Z-LUT")
