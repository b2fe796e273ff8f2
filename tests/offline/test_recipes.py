"""`magacq analyze` with no flags on real simulated runs of the shipped recipes: the Z-LUT from
`magacq calibrate` with configs/force_extension.yaml's sweep, the stuck bead found, each
tethered bead's extension measured from the surface through the stuck bead's Z-LUT."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from magacq.protocol import load_force_table
from magacq.runfile import read_analysis_file
from tests.pipeline import _runner as r

SHIPPED = r.REPO / "configs" / "force_extension.yaml"
#: four beads in a row, one of them stuck (which one: the simulator's draw)
BEADS = [[48, 64], [144, 64], [240, 64], [336, 64]]


def _config(tmp: Path, protocol: dict, name: str, zlut: Path | None = None) -> Path:
    """configs/force_extension.yaml on a small camera of four beads, ``protocol`` instead."""
    cfg = yaml.safe_load(SHIPPED.read_text())
    cfg["camera"]["settings"].update(width=384, height=128, n_beads=4, fraction_stuck=0.25,
                                     bead_xy_px=BEADS)  # fmt: skip
    cfg["calibration"]["profiles_per_step"] = 5
    cfg["tracking"]["zlut"] = None if zlut is None else str(zlut)
    cfg["output"]["dir"] = str(tmp / "runs")
    cfg["protocol"] = {**protocol, "force_table": str(SHIPPED.parent / "force_table_m270.csv"),
                       "end_height_mm": 8}  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def zlut(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("recipes_zlut")
    cfg = _config(tmp, {"recipe": "force_clamp", "force_pn": 1, "duration_s": 1}, "cal")
    out = tmp / "zlut.h5"
    done = r.cli("calibrate", str(cfg), "--output", str(out), cwd=tmp, timeout=400)
    assert done.returncode == 0, done.stderr
    return out


def _run_and_analyze(tmp: Path, zlut: Path, protocol: dict) -> tuple[dict, dict, Path]:
    cfg = _config(tmp, protocol, "run", zlut)
    done = r.run(cfg, timeout=300)
    assert done.returncode == 0, done.stderr
    run = r.output_file(tmp)
    done = r.cli("analyze", str(run), "--out", str(tmp / "out"), cwd=tmp, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    tables, _ = read_analysis_file(tmp / "out" / f"{run.stem}.analysis.h5")
    return tables, r.read(run), tmp / "out"


def _truth(data: dict, row: np.void, name: str) -> float:
    """The simulator's mean ``name`` for the bead and frames of a ``forces`` row."""
    t = data["truth"]
    first, n = row["first_frame"], row["n_frames"]
    t = t[(t["bead_id"] == row["bead_id"]) & (t["frame"] >= first) & (t["frame"] < first + n)]
    return float(np.mean(t[name]))


def test_force_extension_recipe_needs_no_flags(tmp_path: Path, zlut: Path) -> None:
    protocol = {"recipe": "force_extension", "forces_pn": [0.5, 2, 10], "hold_s": 4,
                "back_down": False}  # fmt: skip
    tables, data, out = _run_and_analyze(tmp_path, zlut, protocol)
    truth = data["truth"]
    stuck = sorted({int(b) for b in truth["bead_id"][truth["extension_nm"] == 0]})
    assert len(stuck) == 1
    beads = tables["beads"]
    assert list(beads["bead_id"][beads["reference"]]) == stuck  # found, not configured
    assert list(beads["bead_id"][beads["found_stuck"]]) == stuck
    zero = {b["bead_id"]: b["zero"].decode() for b in beads if not b["reference"]}
    assert set(zero.values()) == {f"the Z-LUTs of stuck beads {stuck[0]}"}
    forces = tables["forces"]
    assert sorted(set(forces["bead_id"])) == sorted(zero)
    for row in forces:  # every tethered bead's extension from the surface, per bead
        assert row["extension_nm"] == pytest.approx(_truth(data, row, "extension_nm"), abs=60)
        true_f = _truth(data, row, "force_pn")
        assert abs(row["force_pn"] - true_f) < 3 * row["force_err_pn"] + 0.1 * true_f, row
    assert not any(b"stuck bead?" in m for m in tables["problems"]["message"])
    assert (out / "summary.png").stat().st_size > 10_000


def test_a_plain_steps_protocol_needs_no_flags(tmp_path: Path, zlut: Path) -> None:
    # issue 28: no shipped config has a `steps` protocol; a lab's own steps, no surface step
    protocol = {"steps": [{"step": "magnets", "force_pn": 0.5},
                          {"step": "hold", "seconds": 3, "label": "low"},
                          {"step": "magnets", "force_pn": 5},
                          {"step": "hold", "seconds": 3, "label": "high"}]}  # fmt: skip
    tables, data, out = _run_and_analyze(tmp_path, zlut, protocol)
    truth = data["truth"]
    stuck = sorted({int(b) for b in truth["bead_id"][truth["extension_nm"] == 0]})
    beads = tables["beads"]
    assert list(beads["bead_id"][beads["reference"] & beads["found_stuck"]]) == stuck
    tethered = sorted(set(range(4)) - set(stuck))
    zero = {int(b["bead_id"]): b["zero"].decode() for b in beads if not b["reference"]}
    assert zero == {b: f"the Z-LUTs of stuck beads {stuck[0]}" for b in tethered}  # each stated
    assert (out / "beads.csv").read_text().count("the Z-LUTs of stuck beads") == len(tethered)
    forces = tables["forces"]
    assert sorted(zip(forces["label"], forces["bead_id"], strict=True)) == sorted(
        (label, b) for label in (b"high", b"low") for b in tethered)  # fmt: skip
    for row in forces:
        assert row["extension_nm"] == pytest.approx(_truth(data, row, "extension_nm"), abs=60)
        true_f = _truth(data, row, "force_pn")
        assert row["force_lo_pn"] < row["force_pn"] < row["force_hi_pn"]
        assert abs(row["force_pn"] - true_f) < 3 * row["force_err_pn"] + 0.1 * true_f, row


def test_rotation_curve_recipe_swept_back_buckles_one_side_denatures_the_other(
    tmp_path: Path, zlut: Path
) -> None:
    # at 1 pN the simulated tether buckles after ~26 positive turns and melts under negative
    # ones; the first hold is at -45 turns: every bead's zero is still its own
    protocol = {"recipe": "rotation_curve", "force_pn": 1.0, "max_turns": 45, "step_turns": 15,
                "hold_s": 2, "sweep_back": True}  # fmt: skip
    tables, data, out = _run_and_analyze(tmp_path, zlut, protocol)
    forces, rotation = tables["forces"], tables["rotation"]
    tethered = sorted(set(forces["bead_id"]))
    assert len(tethered) == 3 and len(forces) == 3 * 14, tables["problems"]
    for row in forces:
        assert row["extension_nm"] == pytest.approx(_truth(data, row, "extension_nm"), abs=60)
    for bead in tethered:
        sides = {r["side"]: r for r in rotation[rotation["bead_id"] == bead]}
        assert sides[b"positive"]["kind"] == b"buckling"
        assert sides[b"positive"]["buckling_turns"] == pytest.approx(26, abs=4)
        assert sides[b"positive"]["slope_nm_per_turn"] == pytest.approx(64, rel=0.2)
        assert sides[b"negative"]["kind"] == b"denaturing"
        assert np.isnan(sides[b"negative"]["buckling_turns"])
    assert (out / "summary.png").stat().st_size > 10_000


def test_force_calibration_recipe_writes_a_force_table_the_protocols_read(
    tmp_path: Path, zlut: Path
) -> None:
    heights = [6.0, 4.0, 3.0, 2.0, 1.5]
    protocol = {"recipe": "force_calibration", "heights_mm": heights, "hold_s": 4}
    tables, data, out = _run_and_analyze(tmp_path, zlut, protocol)
    curve = load_force_table(out / "force_table.csv")  # the protocols' reader
    assert list(curve.heights_mm) == sorted(heights)
    truth, forces = data["truth"], tables["forces"]
    for h in heights:  # the simulated beads' median force at that height (moments spread 5 %)
        at = np.isclose(truth["magnet_height_mm"], h) & (truth["extension_nm"] > 0)
        true_f = np.median([np.mean(truth["force_pn"][at & (truth["bead_id"] == b)])
                            for b in np.unique(truth["bead_id"][at])])  # fmt: skip
        # within 3 errors of a median of 3 beads' forces (each ~10-15 % from a 4 s hold)
        mine = forces[forces["magnet_mm"] == h]
        err = np.median(mine["force_err_pn"] / mine["force_pn"]) / np.sqrt(len(mine))
        assert abs(curve.force(h) / true_f - 1) < 3 * err + 0.05, (h, curve.force(h), true_f)
    law = (out / "force_law.csv").read_text().splitlines()
    assert len(law) == 1 + 3 and law[0].startswith("bead_id,ln_f_h0")


def test_a_run_detecting_other_beads_than_its_zlut_is_refused(tmp_path: Path, zlut: Path) -> None:
    cfg = _config(tmp_path, {"recipe": "force_clamp", "force_pn": 1, "duration_s": 1}, "run",
                  zlut)  # fmt: skip
    data = yaml.safe_load(cfg.read_text())
    data["camera"]["settings"].update(n_beads=3, bead_xy_px=BEADS[:3])  # a bead less
    cfg.write_text(yaml.safe_dump(data))
    done = r.run(cfg, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "the beads detected are not those of" in done.stderr
    assert "this run has 3 beads, the Z-LUT file 4" in done.stderr


def test_force_ramp_recipe_as_shipped_gives_extension_against_force(
    tmp_path: Path, zlut: Path
) -> None:
    # hold_s left at its default, 0: the ramp itself is the data
    protocol = {"recipe": "force_ramp", "start_pn": 0.5, "stop_pn": 10, "loading_rate_pn_s": 2}
    tables, data, out = _run_and_analyze(tmp_path, zlut, protocol)
    ramps, truth = tables["ramps"], data["truth"]
    tethered = sorted(set(ramps["bead_id"]))
    assert len(tethered) == 3, tables["problems"]
    assert set(ramps["label"]) == {b"ramp"}
    for bead in tethered:
        mine = ramps[ramps["bead_id"] == bead]
        assert len(mine) >= 6  # 4.75 s of ramp in stretches of 0.5 s
        force = mine["force_pn"]
        assert np.all(np.isfinite(force)) and np.all(np.diff(force) > 0)  # the ramp, rising
        assert force[0] < 1.5 and force[-1] > 6
        for row in mine:  # each stretch's extension, as the simulator had it there
            at = (truth["bead_id"] == bead) & (truth["frame"] >= row["first_frame"]) & (
                truth["frame"] < row["first_frame"] + row["n_frames"])  # fmt: skip
            assert row["extension_nm"] == pytest.approx(np.mean(truth["extension_nm"][at]),
                                                        abs=80)  # fmt: skip
        assert mine["extension_nm"][-1] > mine["extension_nm"][0] + 200  # stretched by the ramp
    assert (out / "ramps.csv").read_text().startswith("bead_id,ramp,label,first_frame")
    assert (out / "summary.png").stat().st_size > 10_000


def test_a_move_from_the_command_line_during_a_hold_is_never_reported_as_the_hold(
    tmp_path: Path, zlut: Path
) -> None:
    # a force clamp at 1 pN (6.1 mm); while it holds, another process moves the magnets to
    # 3 mm (4.7 pN) through `magacq magnets`: the hold is split where they moved, each part at
    # its measured height, and problems.csv says so. The clamp is long (the command may take
    # seconds to start on a loaded machine): the run is stopped 3 s of frames after the move
    cfg = _config(tmp_path, {"recipe": "force_clamp", "force_pn": 1, "duration_s": 300}, "run",
                  zlut)  # fmt: skip
    proc = r.start(cfg)
    try:
        status = r.wait_for_status(proc, "protocol_actions", 1, timeout=180)
        # the clamp's plan: move, then hold (its last action): wait until it holds
        r.wait_for_status(proc, "protocol_action", status["protocol_actions"], timeout=180)
        done = r.cli("magnets", str(cfg), "--height", "3", "--run", r.namespace(proc),
                     cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        moved_at = r.wait_for_status(proc, "frames", 1)["frames"]
        r.wait_for_status(proc, "frames", moved_at + 600, timeout=180)
    finally:
        r.interrupt(proc)  # exit code 0 (its data saved)
    run = r.output_file(tmp_path)
    data = r.read(run)
    events = data["events"]
    (hold,) = events[(events["action"] == b"hold") & (events["kind"] == b"start")]
    (moved,) = events[(events["by"] == b"cli") & (events["kind"] == b"start")]
    assert hold["label"] == b"clamp 1 pN" and moved["frame"] > hold["frame"]
    done = r.cli("analyze", str(run), "--out", str(tmp_path / "out"), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    tables, _ = read_analysis_file(tmp_path / "out" / f"{run.stem}.analysis.h5")
    messages = [m.decode() for m in tables["problems"]["message"]]
    assert any(m.startswith(f"plateau {hold['step']} (clamp 1 pN): the magnets moved during "
                            "the hold") for m in messages), messages  # fmt: skip
    problems = (tmp_path / "out" / "problems.csv").read_text()
    assert "the magnets moved during the hold" in problems
    forces = tables["forces"]
    assert b"clamp 1 pN" not in set(forces["label"])  # never under the label as if it held
    parts = forces[np.char.startswith(forces["label"], b"clamp 1 pN [part")]
    after = parts[np.isclose(parts["magnet_mm"], 3.0, atol=0.05)]
    assert len(after) == 3  # the three tethered beads, at the height moved to
    for row in after:  # the force there (4.7 pN), not the label's
        true_f = _truth(data, row, "force_pn")
        assert true_f > 3
        assert abs(row["force_pn"] - true_f) < 3 * row["force_err_pn"] + 0.1 * true_f, row
