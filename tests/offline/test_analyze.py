"""`magacq analyze` on run files of known forces: forces, WLC, rotation, outputs, bad input."""

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest

from magacq.analysis import fit_wlc
from magacq.offline import AnalysisSettings, analyze_run
from magacq.runfile import read_analysis_file
from simulators.motion import MotionParams
from tests.offline._runfiles import Step, force_extension_steps, write_run
from tests.pipeline import _runner as r


def _analyze(*args: str, cwd: Path):
    return r.cli("analyze", *args, cwd=cwd, timeout=300)


def test_force_extension_run_through_the_cli(tmp_path: Path) -> None:
    run = write_run(tmp_path / "fe.h5", force_extension_steps(), lose={0: 0.01})
    done = _analyze(str(run), "--zero-step", "surface", "--out", str(tmp_path / "out"),
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 tethered beads x 9 plateaus: 32 forces" in done.stdout
    tables, attrs = read_analysis_file(tmp_path / "out" / "fe.analysis.h5")
    assert attrs["schema_version"] == 4 and attrs["axis"] == "y"
    forces = tables["forces"]
    assert len(forces) == 4 * 8 and not len(tables["problems"])
    # each force with its 68 % interval, and the method that gave it
    assert np.all(
        (forces["force_lo_pn"] < forces["force_pn"]) & (forces["force_pn"] < forces["force_hi_pn"])
    )
    assert set(forces["force_method"]) <= {b"spectrum", b"likelihood"}
    truth = MotionParams()
    for plateau in np.unique(forces["plateau"]):
        rows = forces[forces["plateau"] == plateau]
        true_f = float(rows["label"][0].split()[0])
        assert np.mean(rows["force_pn"]) == pytest.approx(true_f, rel=0.1)
        true_ext = MotionParams(force_pn=true_f).extension_nm
        assert np.mean(rows["extension_nm"]) == pytest.approx(true_ext, abs=20)
    for w in tables["wlc"]:  # every bead's WLC fit holds the tether within 3 of its errors
        assert abs(w["contour_nm"] - truth.contour_nm) < 3 * w["contour_err_nm"]
        assert abs(w["persistence_nm"] - truth.persistence_nm) < 3 * w["persistence_err_nm"]
    with (tmp_path / "out" / "forces.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 32 and float(rows[0]["force_pn"]) > 0
    for stem in ("summary", "bead000"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "out" / f"{stem}.{ext}").stat().st_size > 10_000


def test_wlc_of_a_run_anchored_on_its_first_plateau_holds_the_tether(tmp_path: Path) -> None:
    # a protocol's force-extension run: 20 s holds from 0.1 to 20 pN, no surface step, the
    # extension known on the first plateau (--extension). At 0.1 pN a bead's z wanders
    # ~300 nm with a ~1 s correlation time: the first plateau's mean z, the zero of every other
    # extension, is known to ~30 nm, an error common to all of them
    truth = MotionParams()
    steps = [Step(f"{f:.2g} pN", 4000, float(f)) for f in np.geomspace(0.1, 20.0, 8)]
    run = write_run(tmp_path / "fe.h5", steps, tethered=8, references=2, seed=1)
    first = MotionParams(force_pn=0.1).extension_nm
    res, _ = analyze_run(run, tmp_path / "out", AnalysisSettings(extension_nm=first),
                         figures=False)  # fmt: skip
    z_l, z_p, ignored = [], [], []
    for bead in res.beads:
        w = bead.wlc
        z_l.append((w.contour_nm - truth.contour_nm) / w.contour_err_nm)
        z_p.append((w.persistence_nm - truth.persistence_nm) / w.persistence_err_nm)
        # the same fit with the extensions taken as exact: L off by many of its errors
        r = [p for p in bead.plateaus if not p.calibration.spectrum.warnings]
        exact = fit_wlc([p.extension_nm for p in r], [p.calibration.force.force_pn for p in r],
                        [p.calibration.force.force_err_pn for p in r], kt=truth.kt)  # fmt: skip
        ignored.append((exact.contour_nm - truth.contour_nm) / exact.contour_err_nm)
    # the holds of 0.1-1 pN (20 s, under 200 correlation times) are quoted by the likelihood
    methods = {p.calibration.force.method for b in res.beads for p in b.plateaus}
    assert methods == {"likelihood", "spectrum"}
    z_l, z_p = np.abs(z_l), np.abs(z_p)
    assert np.all(z_l < 3) and np.all(z_p < 3), (z_l, z_p)
    assert np.mean(z_l < 2) >= 0.75 and np.mean(z_p < 2) >= 0.75, (z_l, z_p)
    assert np.max(np.abs(ignored)) > 5, ignored
    assert res.beads[0].wlc.contour_err_nm < 60  # errors that still say something


def test_rotation_curve_run(tmp_path: Path) -> None:
    force = 0.5
    top = MotionParams(force_pn=force).extension_nm
    steps = []
    for n in np.arange(-24.0, 25.0, 4.0):  # buckles at +-8 turns, 70 nm per turn after
        ext = top - 70 * max(abs(n) - 8, 0)
        steps.append(Step(f"{n:+.0f} turns", 12000, force, turns=n, extension_nm=ext))
    run = write_run(tmp_path / "rot.h5", [Step("surface", 2000), *steps], tethered=2, seed=3)
    res, written = analyze_run(run, tmp_path / "out", AnalysisSettings(zero_step="surface"))
    for bead in res.beads:
        assert bead.wlc is None  # one force: no force-extension curve
        for side, nb in ((bead.rotation.positive, 8.0), (bead.rotation.negative, -8.0)):
            assert abs(side.buckling_turns - nb) < 1.5
            assert side.slope_nm_per_turn == pytest.approx(70, rel=0.1)
    assert (tmp_path / "out" / "bead000.png") in written
    assert len(read_analysis_file(tmp_path / "out" / "rot.analysis.h5")[0]["rotation"]) == 4


def test_bad_beads_and_plateaus_are_reported_and_the_others_analysed(tmp_path: Path) -> None:
    steps = [Step("surface", 2000), Step("short", 100, 5.0), Step("long", 20000, 5.0)]
    # bead 1 loses 30 % of its frames at random, bead 2 20 % of the long plateau in one burst
    run = write_run(tmp_path / "bad.h5", steps, lose={1: 0.3}, lose_span={2: (6000, 10000)})
    done = _analyze(str(run), "--zero-step", "surface", "--no-figures", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "bead 0, plateau 1 (short): 100 frames, too short for a fit" in done.stderr
    assert "bead 1, plateau 2 (long): 30% of its frames were not tracked" in done.stderr
    assert ("bead 2, plateau 2 (long): 20% of its frames were not tracked: fitted on its "
            "longest tracked stretch, 12100 of 20000 frames") in done.stderr  # fmt: skip
    forces = read_analysis_file(tmp_path / "bad_analysis" / "bad.analysis.h5")[0]["forces"]
    assert sorted(forces["bead_id"]) == [0, 2, 3]  # the long plateau of the three good beads
    assert np.all(np.abs(forces["force_pn"] / 5.0 - 1) < 0.15)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["schema"] = "someone.else"
    run = write_run(tmp_path / "refs.h5", [Step("a", 2000, 2.0)], tethered=2)
    for args, message in (
        ((str(other),), "is not a magacq run file (schema 'someone.else')"),
        ((str(tmp_path / "missing.h5"),), "no such run file"),
        ((str(run), "--reference", "0,1,2,3"), "no tethered beads (all 4 are reference beads)"),
        ((str(run),), "give --zero-step LABEL"),
        ((str(run), "--zero-step", "nope"), "no plateau labelled 'nope'"),
        ((str(run), "--extension", "2000", "--axis", "q"), "axis 'q': x or y"),
        ((str(run), "--reference", "0,x"), "bead ids separated by commas"),
    ):
        done = _analyze(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    with h5py.File(run, "r+") as f:
        f.attrs["schema_version"] = 99
    done = _analyze(str(run), cwd=tmp_path)
    assert done.returncode == 2
    assert "schema version 99; this magacq reads versions 1 to 2" in done.stderr
