"""A real `magacq run configs/sim.yaml`, analysed through the CLI: the simulator's 2 pN."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from magacq.runfile import read_analysis_file
from simulators.motion import MotionParams
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
    settings = yaml.safe_load(config.read_text())["camera"]["settings"]
    mp = MotionParams()  # the sim's defaults: 2 pN on a 3.4 um tether, R = 1.4 um
    assert "force_pn" not in settings and "bead_radius_nm" not in settings
    # sim.yaml has no Z-LUT (z NaN): the extension is given, the simulator's
    done = r.cli("analyze", str(run), "--bead-radius", str(mp.bead_radius_nm), "--extension",
                 f"{mp.extension_nm:.1f}", "--reference", ",".join(map(str, stuck)),
                 cwd=tmp_path, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = run.with_name(f"{run.stem}_analysis")
    forces = read_analysis_file(out / f"{run.stem}.analysis.h5")[0]["forces"]
    assert sorted(forces["bead_id"]) == sorted(set(ids.tolist()) - set(stuck))
    assert np.median(forces["force_pn"]) == pytest.approx(mp.force_pn, rel=0.2)
    assert np.all(forces["force_err_pn"] > 0)
    for name in ("summary.png", "summary.pdf", f"bead{forces['bead_id'][0]:03d}.png"):
        assert (out / name).stat().st_size > 10_000
