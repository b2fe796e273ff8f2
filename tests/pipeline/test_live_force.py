"""The live force estimate: on exact camera traces of known force, and in a real sim run (the
published per-bead forces and the terminal's median against the simulator's forces)."""

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from magacq.pipeline.channels.live_force import (
    FORCE_COLUMNS,
    LiveForceSpec,
    estimate_forces,
    median_force,
    read_forces,
)
from magacq.pipeline.channels.status import read_status
from simulators.fluctuations import camera_trace, trap
from simulators.motion import MotionParams
from tests.pipeline import _runner as r

FS, EXPOSURE_S = 200.0, 0.002
COL = {name: i for i, name in enumerate(FORCE_COLUMNS)}


def _rows(xyz: np.ndarray, first_frame: int = 0) -> np.ndarray:
    """Position rows (time, frame, bead, x, y, z) of ``(n_beads, n_frames, 3)`` positions."""
    n_beads, n, _ = xyz.shape
    frame = np.tile(np.arange(first_frame, first_frame + n), n_beads)
    bead = np.repeat(np.arange(n_beads), n)
    return np.column_stack([frame / FS, frame, bead, xyz.reshape(-1, 3)])


def test_estimates_the_force_of_exact_traces_drift_corrected_with_z_and_lost_frames() -> None:
    rng = np.random.default_rng(3)
    params = MotionParams(force_pn=3.0)
    k, drag = trap(params)
    n, tethered = 6000, 5  # 30 s
    xyz = np.zeros((tethered + 1, n, 3))  # the last bead is the reference: still
    xyz[:tethered, :, 1] = camera_trace(n, FS, np.full(tethered, k), np.full(tethered, drag),
                                        exposure_s=EXPOSURE_S, rng=rng)  # fmt: skip
    xyz[:tethered, :, 0] = rng.normal(0, 30, (tethered, n))
    xyz[:, :, 1] += np.linspace(0, 2000, n)  # the stage drifts 2 um: every bead moves with it
    xyz[:, :, 2] = np.linspace(0, 300, n)  # ... and 300 nm in z
    xyz[:tethered, :, 2] += 500.0 + rng.normal(0, 10, (tethered, n))  # each bead's LUT offset
    xyz[0, ::50, 1] = np.nan  # 2 % of frames lost
    spec = LiveForceSpec(axis=1, window_s=30, interval_s=1, extension_nm=params.extension_nm,
                         bead_radius_nm=params.bead_radius_nm, exposure_s=EXPOSURE_S,
                         kt=params.kt, references=(tethered,))  # fmt: skip
    zero: dict[int, float] = {}
    first = estimate_forces(_rows(xyz[:, : n // 2]), spec, zero)
    out = estimate_forces(_rows(xyz), spec, zero)  # later: the window since the start
    assert out[:, COL["bead_id"]].tolist() == list(range(tethered))  # no reference's estimate
    f, err = out[:, COL["force_pn"]], out[:, COL["force_err_pn"]]
    assert np.all(np.abs(f - params.force_pn) < 4 * err), (f, err)
    assert np.mean(f) == pytest.approx(params.force_pn, rel=0.1)
    # drift-corrected z: the extension is the configured one at the first estimate, and moves
    # with the bead's own z since (here: none, its tether did not change)
    assert first[:, COL["extension_nm"]] == pytest.approx(params.extension_nm)
    assert out[:, COL["extension_nm"]] == pytest.approx(params.extension_nm, abs=2.0)
    assert out[:, COL["seconds"]] == pytest.approx(n / FS, rel=1e-3)
    assert median_force(np.vstack([out, [[0, 9, 1e4, 1, 0, 0, 30]]])) == (np.median(f), tethered)


def test_a_bead_with_too_few_frames_or_too_many_lost_has_no_estimate() -> None:
    rng = np.random.default_rng(4)
    k, drag = trap(MotionParams())
    xyz = np.zeros((2, 4000, 3))
    xyz[:, :, 1] = camera_trace(4000, FS, np.full(2, k), np.full(2, drag), rng=rng)
    xyz[:, :, 2] = np.nan  # no Z-LUT: the configured extension as it is
    xyz[1, :1000, 1] = np.nan  # 25 % lost
    spec = LiveForceSpec(
        axis=1,
        window_s=20,
        interval_s=1,
        extension_nm=2000.0,
        bead_radius_nm=1400.0,
        exposure_s=0.0,
        kt=4.086,
        references=[],
    )
    out = estimate_forces(_rows(xyz), spec, {})
    assert out[:, COL["bead_id"]].tolist() == [0]
    assert out[0, COL["extension_nm"]] == 2000.0
    assert len(estimate_forces(_rows(xyz[:, :100]), spec, {})) == 0  # under MIN_FRAMES
    assert median_force(np.empty((0, len(FORCE_COLUMNS))))[1] == 0


def test_a_real_sim_run_publishes_each_beads_force_and_the_median(tmp_path: Path) -> None:
    params = MotionParams()  # the sim camera without magnets: every bead at force_pn (2 pN)
    config = r.write_config(
        tmp_path,
        {"camera": {"driver": "sim", "settings": {"width": 256, "height": 256, "frame_rate": 200,
                                                  "n_beads": 5, "roi_size": 64, "seed": 1,
                                                  "exposure_ms": 2.0}},
         "buffers": {"n_stacks": 16, "images_per_stack": 10},
         "tracking": {"workers": 1, "roi_size": 48},
         "output": {"dir": str(tmp_path / "runs")},
         "live_force": {"extension_nm": round(params.extension_nm, 1), "window_s": 5.0,
                        "interval_s": 0.5},
         "duration": 12.0},
    )  # fmt: skip
    proc = r.start(config)
    namespace = f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}"
    try:
        status = r.wait_for_status(proc, "force_beads", 1)
        forces: dict[int, dict[str, float]] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:  # a full 5 s window
            forces = read_forces(namespace) or forces  # {} once the run has ended
            if forces and min(f["seconds"] for f in forces.values()) >= 4.5:
                status = read_status(namespace) or status
                break
            time.sleep(0.2)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert forces and min(f["seconds"] for f in forces.values()) >= 4.5, forces
    data = r.read(r.output_file(tmp_path))
    # what `magacq analyze` needs from a sim run is in the file: no --bead-radius, --exposure-ms
    assert data["attrs"]["bead_radius_nm"] == params.bead_radius_nm
    assert data["attrs"]["exposure_ms"] == 2.0
    truth = data["truth"]
    stuck = {int(b) for b in np.unique(truth["bead_id"])
             if np.std(truth["x_nm"][truth["bead_id"] == b]) < 10}  # fmt: skip
    tethered = {b: f for b, f in forces.items() if b not in stuck}
    assert len(tethered) >= 3, forces
    for bead, f in tethered.items():  # 5 s is ~40 correlation times: 10-20 % errors
        true = float(np.mean(truth["force_pn"][truth["bead_id"] == bead]))
        assert abs(math.log(f["force_pn"] / true)) < 4 * f["force_err_pn"] / f["force_pn"], (
            bead, f, true)  # fmt: skip
        assert f["extension_nm"] == pytest.approx(params.extension_nm, abs=0.1)  # no Z-LUT
    median = np.median([f["force_pn"] for f in tethered.values()])
    assert median == pytest.approx(params.force_pn, rel=0.25)
    assert status["force_beads"] >= len(tethered)
    assert status["force_median_pn"] == pytest.approx(params.force_pn, rel=0.25)
    assert " pN (" in err and "force " in err  # the terminal's status line (every 5 s)


def test_live_force_without_a_bead_radius_is_refused_in_one_line(tmp_path: Path) -> None:
    config = r.write_config(tmp_path, live_force={"extension_nm": 2000})  # the ring camera
    done = r.run(config)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("live_force needs the bead radius: set beads.radius_nm")
    )
    config = r.write_config(tmp_path, live_force={"extension_nm": 2000},
                            beads={"radius_nm": 500.0})  # fmt: skip
    done = r.run(config)
    assert done.returncode == 0, done.stderr
    assert r.read(r.output_file(tmp_path))["attrs"]["bead_radius_nm"] == 500.0
