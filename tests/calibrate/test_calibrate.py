"""`magacq calibrate` end to end: the real CLI, processes, shared memory and HDF5 files."""

import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from tests.pipeline import _runner as r

HOME_NM = 6000.0  # the sim camera's initial focus
BEADS = [[32, 32], [96, 32]]


def _config(tmp: Path, **overrides: object) -> Path:
    """Two 1 um beads (no stuck ones), explicit ROIs, a coarse sweep around the focus."""
    base = r.two_beads(tmp, BEADS, (5000, 7000), seed=1, bead_radius_nm=500, frame_rate=400)
    base["tracking"]["workers"] = 2
    base["duration"] = 1.5
    return r.write_config(tmp, base, "cal", **overrides)


@pytest.fixture(scope="module")
def lut(tmp_path_factory) -> Path:
    """A Z-LUT calibrated once for the module."""
    tmp = tmp_path_factory.mktemp("cal")
    out = tmp / "lut.h5"
    done = r.cli("calibrate", str(_config(tmp)), "--output", str(out), cwd=tmp, timeout=180)
    assert done.returncode == 0, done.stderr
    assert f"focus stage back at {HOME_NM:.1f} nm" in done.stderr
    return out


def test_lut_file_holds_every_bead(lut):
    with h5py.File(lut, "r") as f:
        assert f.attrs["schema"] == "magacq.zlut" and f.attrs["schema_version"] == 1
        assert f.attrs["roi_size"] == 32 and f.attrs["home_z_nm"] == HOME_NM
        planes, z, stage = f["planes"][:], f["z_nm"][:], f["stage_z_nm"][:]
        quality, rois = f["quality"][:], f["rois"][:]
    assert planes.shape[:2] == (2, 21) and np.isfinite(planes).all()
    assert np.allclose(np.diff(z), 100) and np.allclose(z, HOME_NM - stage)  # objective moves
    assert quality["good"].all() and (quality["valid_fraction"] == 1).all()
    assert list(rois["x0"]) == [16, 80] and list(rois["y0"]) == [16, 16]


def test_run_with_the_lut_tracks_the_simulated_heights(lut):
    tmp = lut.parent
    done = r.run(_config(tmp, tracking={"zlut": str(lut)}), timeout=180)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp))
    tracks, truth = data["tracks"], data["truth"]
    for bead in (0, 1):
        t, g = tracks[tracks["bead_id"] == bead], truth[truth["bead_id"] == bead]
        true_z = dict(zip(g["frame"], g["z_nm"], strict=True))
        z_truth = np.array([true_z.get(fr, np.nan) for fr in t["frame"]])
        ok = np.isfinite(t["z_nm"]) & np.isfinite(z_truth)
        assert ok.mean() > 0.95
        # z is the height relative to the bead's mean height during the calibration
        err = t["z_nm"][ok] - z_truth[ok]
        err -= np.median(err)
        assert np.std(err) < 10, np.std(err)  # the bead moves ~ 20 nm rms
        assert np.corrcoef(t["z_nm"][ok], z_truth[ok])[0, 1] > 0.95


def test_lut_of_another_roi_size_is_refused(lut):
    tmp = lut.parent
    cfg = _config(tmp, tracking={"zlut": str(lut), "roi_size": 40})
    done = r.run(cfg)
    assert done.returncode == 2
    assert "calibrated with 32 px ROIs" in done.stderr and "roi_size 40" in done.stderr


@pytest.mark.parametrize("rois", [[[32, 32]], [[32, 32], [90, 32]]])
def test_lut_of_another_bead_set_is_refused(lut, rois):
    tmp = lut.parent
    done = r.run(_config(tmp, tracking={"zlut": str(lut)}, beads={"rois": rois}))
    assert done.returncode == 2
    assert "bead set differs" in done.stderr, done.stderr


def test_sigint_mid_sweep_returns_the_stage_and_saves_nothing(tmp_path):
    out = tmp_path / "lut.h5"
    cfg = _config(tmp_path, calibration={"settle_s": 0.3})
    proc = r.start_cli("calibrate", str(cfg), "--output", str(out), cwd=tmp_path)
    r.wait_for_frames(proc)  # the producer is sweeping
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert f"focus stage back at {HOME_NM:.1f} nm" in err
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
    # the no_leaks fixture checks that no segment or process is left behind


def test_calibrate_needs_its_sections(tmp_path):
    cfg = _config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    del data["calibration"]
    cfg.write_text(yaml.safe_dump(data))
    done = r.cli("calibrate", str(cfg), cwd=tmp_path)
    assert done.returncode == 2
    assert "needs a 'calibration' section" in done.stderr


def test_configs_sim_yaml_keeps_every_bead(tmp_path):
    """Issue 19: 2 of its 12 beads were dropped for 'planes missing' (frames of beads 3-4.5 um
    below focus were NO_SIGNAL; beads ~3 px off their detected ROI's centre, PROFILE_CLIPPED)."""
    out = tmp_path / "lut.h5"
    cfg = r.REPO / "configs" / "sim.yaml"
    done = r.cli("calibrate", str(cfg), "--output", str(out), cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "dropped" not in done.stderr
    with h5py.File(out, "r") as f:
        quality, planes = f["quality"][:], f["planes"][:]
    assert len(quality) == 12 and quality["good"].all(), quality
    assert np.isfinite(planes).all()


def _sweeping(tmp_path: Path) -> tuple:
    """A calibration started with a 2 s hang limit, once it has taken frames; its Z-LUT path."""
    out = tmp_path / "lut.h5"
    cfg = _config(tmp_path, calibration={"settle_s": 0.2}, supervision={"hang_timeout_s": 2.0})
    proc = r.start_cli("calibrate", str(cfg), "--output", str(out), cwd=tmp_path)
    r.wait_for_status(proc, "frames", 20)
    return proc, out


def test_hung_producer_mid_sweep_fails_it_and_saves_nothing(tmp_path):
    """Issue 26: the sweep's producer is watched as a run's is (one supervisor for both)."""
    proc, out = _sweeping(tmp_path)
    r.wait_for_process(proc, "magacq producer").suspend()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: calibration failed: the producer hung (running, no heart"), err
    assert not out.exists() and not out.with_name(out.name + ".part").exists()


def test_a_stage_slower_than_a_heartbeat_is_not_taken_for_hung_nor_silent(tmp_path):
    """The producer beats while the stage settles and while it waits ``settle_s``, each longer
    than the hang and camera timeouts, and says its camera rests by plan meanwhile: the sweep
    is taken neither for hung nor for a silent camera, and completes."""
    out = tmp_path / "lut.h5"
    cfg = _config(
        tmp_path,
        focus_stage={"driver": "sim", "settings": {"settle_time_s": 1.0}},
        calibration={"start_nm": 5900, "stop_nm": 6100, "step_nm": 100, "settle_s": 1.0},
        supervision={"hang_timeout_s": 0.8, "camera_timeout_s": 0.8},
    )
    done = r.cli("calibrate", str(cfg), "--output", str(out), cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    assert out.exists() and "hung" not in done.stderr and "no frame" not in done.stderr


def test_hung_profiler_is_restarted_and_the_sweep_loses_nothing(tmp_path):
    """A profiler (a calibration's tracker) SIGSTOPped mid-sweep is killed and restarted as a
    run's tracker is, the stack it held requeued: every profile is there."""
    proc, out = _sweeping(tmp_path)
    r.wait_for_process(proc, "magacq tracker 0").suspend()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "the tracker 0 hung (running, no heartbeat for" in err
    with h5py.File(out, "r") as f:
        assert f["quality"]["good"].all()
        assert np.isfinite(f["planes"][:]).all()


def test_a_sim_stage_with_sequences_sweeps_by_them_as_by_steps(tmp_path):
    """Issue 29: the sim stage given ``sequence_max_length`` is swept by hardware sequence (each
    frame steps it; 21 steps of 5 frames take four sequences of 32), and its Z-LUT is the
    step-by-step one's, up to the beads' drift between the two sweeps' frames."""
    planes = {}
    for most in (32, 0):
        out = tmp_path / f"lut{most}.h5"
        base = r.two_beads(tmp_path, BEADS, (5000, 7000), seed=1, bead_radius_nm=500,
                           brownian=False)  # fmt: skip
        base["focus_stage"]["settings"]["sequence_max_length"] = most
        cfg = r.write_config(tmp_path, base, f"cal{most}")
        done = r.cli("calibrate", str(cfg), "--output", str(out), cwd=tmp_path, timeout=180)
        assert done.returncode == 0, done.stderr
        assert ("runs hardware sequences: 6 positions per sequence" in done.stderr) == bool(most)
        with h5py.File(out, "r") as f:
            assert f.attrs["sweep_mode"] == ("hardware sequence" if most else "steps")
            assert f["quality"]["good"].all(), f["quality"][:]
            planes[most] = f["planes"][:]
    scale = np.abs(planes[0]).max()
    assert np.abs(planes[32] - planes[0]).max() < 0.02 * scale
