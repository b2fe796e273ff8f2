"""`magacq analyze` with no flags on run files of known forces: stuck beads found, the surface
step used, flagged frames left out, plateaus whose magnets moved split."""

from pathlib import Path

import numpy as np
import pytest

from magacq.offline import analyze_run
from magacq.runfile import read_analysis_file
from simulators.motion import MotionParams
from tests.offline._runfiles import Step, write_run


def _steps(frames: int = 12000) -> list[Step]:
    return [Step("surface", 2000), Step("1 pN", frames, 1.0), Step("5 pN", frames, 5.0)]


def test_stuck_beads_found_and_the_surface_step_used_without_flags(tmp_path: Path) -> None:
    # the two reference beads are not marked in the run: the tracks show them stuck
    run = write_run(tmp_path / "r.h5", _steps(), mark_references=False, seed=4)
    res, _ = analyze_run(run, tmp_path / "out", figures=False)
    assert res.reference == (4, 5) and res.found == (4, 5)
    assert [b.bead_id for b in res.beads] == [0, 1, 2, 3]
    assert not res.problems
    for bead in res.beads:
        assert bead.zero == "the 'surface' step"
        for r in bead.plateaus:
            force = float(r.plateau.label.split()[0])
            assert r.calibration.spectrum.force_pn == pytest.approx(force, rel=0.2)
            truth = MotionParams(force_pn=force).extension_nm
            assert r.extension_nm == pytest.approx(truth, abs=30)
    beads = read_analysis_file(tmp_path / "out" / "r.analysis.h5")[0]["beads"]
    assert list(beads["found_stuck"]) == [False] * 4 + [True] * 2
    assert set(beads["zero"][:4]) == {b"the 'surface' step"}


def test_flagged_frames_are_left_out_counted_and_reported(tmp_path: Path) -> None:
    # bead 0's z is spoilt (500 nm too high) on the 20 % of frames flagged PROFILE_CLIPPED
    run = write_run(tmp_path / "c.h5", _steps(), clip={0: 0.2}, seed=5)
    res, _ = analyze_run(run, tmp_path / "out", figures=False)
    clipped = [m for b, _, m in res.problems if b == 0]
    assert len(clipped) == 2 and all("frames flagged (tracking), left out" in m for m in clipped)
    assert not [m for b, _, m in res.problems if b != 0]
    for r in res.beads[0].plateaus:
        n = r.plateau.stop - r.plateau.start
        assert r.flagged_frames == pytest.approx(0.2 * n, rel=0.1)
        truth = MotionParams(force_pn=float(r.plateau.label.split()[0])).extension_nm
        assert r.extension_nm == pytest.approx(truth, abs=30)  # not 100 nm too high
    forces = read_analysis_file(tmp_path / "out" / "c.analysis.h5")[0]["forces"]
    assert np.all(forces["flagged_frames"][forces["bead_id"] == 0] > 0)
    assert np.all(forces["flagged_frames"][forces["bead_id"] != 0] == 0)


def test_a_plateau_whose_magnets_moved_is_split_never_reported_as_its_label(
    tmp_path: Path,
) -> None:
    steps = _steps(16000)
    heights = np.full(sum(s.frames for s in steps), 3.0)
    heights[2000 + 16000 + 9000 :] = 1.0  # halfway through the 5 pN hold the magnets went down
    heights[2000 + 16000 + 9000 : 2000 + 16000 + 9040] = np.linspace(3.0, 1.0, 40)  # moving
    run = write_run(tmp_path / "m.h5", steps, magnet_mm=heights, seed=6)
    res, _ = analyze_run(run, tmp_path / "out", figures=False)
    (moved,) = [m for b, p, m in res.problems if p == 2]
    assert "plateau 2 (5 pN): the magnets moved during the hold (height 1-3 mm" in moved
    assert "analysed as 2 parts" in moved
    labels = [p.label for p in res.plateaus]
    assert labels == ["surface", "1 pN", "5 pN [part 1]", "5 pN [part 2]"]
    assert [p.magnet_mm for p in res.plateaus[2:]] == [3.0, 1.0]
    forces = read_analysis_file(tmp_path / "out" / "m.analysis.h5")[0]["forces"]
    assert b"5 pN" not in set(forces["label"])


def test_a_hold_the_run_did_not_finish_is_flagged(tmp_path: Path) -> None:
    run = write_run(tmp_path / "e.h5", _steps(), seed=7)
    import h5py

    with h5py.File(run, "r+") as f:  # the run ended during the last hold: no end event
        ev = f["events"][:]
        del f["events"]
        f["events"] = ev[:-1]
    res, _ = analyze_run(run, tmp_path / "out", figures=False)
    assert (-1, 2, "plateau 2 (5 pN): the run ended before the hold did") in res.problems


def test_the_moves_last_samples_at_a_holds_start_are_trimmed_not_reported(
    tmp_path: Path,
) -> None:
    steps = _steps()
    heights = np.concatenate([np.full(2000, 8.0), np.full(12000, 3.0), np.full(12000, 1.0)])
    heights[2000:2040] = 8.0  # the magnets' sample of the move is 0.2 s old
    heights[14000:14050] = 3.0
    run = write_run(tmp_path / "t.h5", steps, magnet_mm=heights, seed=8)
    res, _ = analyze_run(run, tmp_path / "out", figures=False)
    assert not res.problems
    assert [(p.start, p.stop) for p in res.plateaus[1:]] == [(2040, 14000), (14050, 26000)]


def test_a_move_another_program_asked_for_splits_a_hold_without_motor_samples(
    tmp_path: Path,
) -> None:
    # no magnet samples in the run (no motors), but `magacq magnets` moved them halfway through
    # the 1 pN hold: its move event splits the hold there
    run = write_run(tmp_path / "x.h5", _steps(), seed=9)
    import h5py

    with h5py.File(run, "r+") as f:
        ev = f["events"][:]
        move = np.zeros(1, dtype=ev.dtype)
        move[["frame", "step", "kind", "action", "label", "by"]] = (
            2000 + 6000,
            -1,
            b"start",
            b"move",
            b"cli: height to 3 (command 1)",
            b"cli",
        )
        del f["events"]
        f["events"] = np.sort(np.concatenate([ev, move]), order="frame")
    res, _ = analyze_run(run, tmp_path / "out", figures=False)
    (moved,) = [m for b, p, m in res.problems if p == 1]
    assert moved == ("plateau 1 (1 pN): the magnets moved during the hold (asked for by another "
                     "program): analysed as 2 parts at the measured positions")  # fmt: skip
    assert [(p.label, p.start, p.stop) for p in res.plateaus[1:3]] == [
        ("1 pN [part 1]", 2000, 8000), ("1 pN [part 2]", 8000, 14000)]  # fmt: skip
    forces = read_analysis_file(tmp_path / "out" / "x.analysis.h5")[0]["forces"]
    assert b"1 pN" not in set(forces["label"])
