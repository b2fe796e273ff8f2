"""A real `magacq run configs/sim.yaml`, analysed through the CLI, against the simulated forces."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from magacq.runfile import read_analysis_file
from tests.pipeline import _runner as r


def test_analyze_a_real_sim_run(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    shutil.copy(r.REPO / "configs" / "sim.yaml", config)
    done = r.run(config, "--duration", "6", "--output", str(tmp_path / "runs"), timeout=180)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs").glob("*.h5")
    with h5py.File(run) as f:
        truth, tracks = f["truth"][:], f["tracks"][:]
    # the stuck beads: those whose true x does not fluctuate (truth is by tracked bead id)
    ids = np.unique(tracks["bead_id"])
    stuck = [int(b) for b in ids if np.std(truth["x_nm"][truth["bead_id"] == b]) < 10]
    assert 0 < len(stuck) < len(ids)
    tethered = truth[~np.isin(truth["bead_id"], stuck)]
    # the simulator's magnets: every tethered bead's own force (moments spread by 5 %)
    true_force = {int(b): np.mean(truth["force_pn"][truth["bead_id"] == b]) for b in ids}
    # sim.yaml has no Z-LUT (z NaN): the extension is given, the simulator's median
    extension = float(np.median(tethered["extension_nm"]))
    # no --bead-radius, no --exposure-ms: the run file records the sim camera's
    done = r.cli("analyze", str(run), "--extension", f"{extension:.1f}", "--reference",
                 ",".join(map(str, stuck)), cwd=tmp_path, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = run.with_name(f"{run.stem}_analysis")
    tables, attrs = read_analysis_file(out / f"{run.stem}.analysis.h5")
    forces = tables["forces"]
    assert attrs["bead_radius_nm"] == 1400.0 and attrs["exposure_s"] == 0.001  # the sim's
    assert sorted(forces["bead_id"]) == sorted(set(ids.tolist()) - set(stuck))
    truth_f = np.array([true_force[int(b)] for b in forces["bead_id"]])
    assert np.median(forces["force_pn"] / truth_f) == pytest.approx(1.0, rel=0.15)
    z = np.abs(np.log(forces["force_pn"] / truth_f)) / (forces["force_err_pn"] / forces["force_pn"])
    assert np.mean(z < 2.0) >= 0.7  # 95 % intervals, 11 beads: most hold their bead's truth
    for name in ("summary.png", "summary.pdf", f"bead{forces['bead_id'][0]:03d}.png"):
        assert (out / name).stat().st_size > 10_000
