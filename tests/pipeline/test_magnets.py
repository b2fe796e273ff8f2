"""Runs with magnets on the simulator: moves on command, recorded in motors, frames and truth;
tracked z follows the worm-like chain; bad magnet configs and commands; a motor fault."""

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from magacq.pipeline.channels.motor_channel import MotorControl, MotorError
from simulators.magnetics import FORCE_LAWS
from simulators.motion import MotionParams, wlc_extension
from tests.pipeline import _runner as r

BEADS = [[32, 32], [96, 32]]
MAGNETS = {"driver": "sim", "settings": {"bead_type": "MyOne"}, "height_mm": 6.0}


def _config(tmp: Path, **overrides: object) -> Path:
    """Two 1 um (MyOne) beads, explicit ROIs, the sim focus stage; a sweep for their Z-LUT
    that covers their heights from 6 mm (0.15 pN) to 1 mm (3.5 pN) magnets."""
    base = r.two_beads(
        tmp,
        BEADS,
        (5500, 7500),
        seed=1,
        bead_radius_nm=500,
        frame_rate=200,
        drift_nm_per_s=[0.5, 0.3, 0.2],
    )  # no reference bead: a slow focus drift
    base.update(magnets=MAGNETS, duration=None)
    return r.write_config(tmp, base, "mag", **overrides)


@pytest.fixture(scope="module")
def lut(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("maglut")
    out = tmp / "lut.h5"
    done = r.cli("calibrate", str(_config(tmp)), "--output", str(out), cwd=tmp, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def test_lowering_the_magnets_raises_the_force_and_z_follows_the_wlc(lut, tmp_path):
    proc = r.start(_config(tmp_path, tracking={"zlut": str(lut)}))
    try:
        r.wait_for_frames(proc)
        with MotorControl(r.namespace(proc)) as ctl:
            assert ctl.position()[1] == pytest.approx(6.0)
            ctl.move_to("height", 1.0, wait=True, timeout=30)  # 5 mm at 5 mm/s
            assert ctl.position()[1] == pytest.approx(1.0)
            r.wait_for_frames(proc)  # frames at the new force
    finally:
        r.interrupt(proc)
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "interrupted"  # stopped by SIGINT, file complete
    motors, frames, truth, tracks = data["motors"], data["frames"], data["truth"], data["tracks"]

    # motors: sampled through the move, monotonic, from 6 to 1 mm; no rotation; focus still
    assert motors["magnet_height_mm"][0] == 6.0 and motors["magnet_height_mm"][-1] == 1.0
    assert (np.diff(motors["time"]) > 0).all() and (np.diff(motors["magnet_height_mm"]) <= 0).all()
    moving = (motors["magnet_height_mm"] < 5.9) & (motors["magnet_height_mm"] > 1.1)
    assert moving.sum() >= 20  # ~1 s of move sampled at 100 Hz
    assert (motors["magnet_rotation_turns"] == 0).all() and (motors["focus_z_nm"] == 6000).all()
    # every frame row has the magnets' position
    assert frames["magnet_height_mm"][0] == 6.0 and frames["magnet_height_mm"][-1] == 1.0
    assert np.isin(frames["magnet_height_mm"], motors["magnet_height_mm"]).all()

    # truth: force from the MyOne law (with each bead's moment), WLC extension at that force
    law, kt = FORCE_LAWS["MyOne"], MotionParams().kt
    ext = wlc_extension(truth["force_pn"], 3400.0, 50.0, kt)
    np.testing.assert_allclose(truth["extension_nm"], ext, rtol=1e-9)
    far, near = truth["magnet_height_mm"] == 6.0, truth["magnet_height_mm"] == 1.0
    for bead in (0, 1):
        b = truth["bead_id"] == bead
        factor = truth["force_pn"][b & far][0] / law(6.0)
        assert 0.85 < factor < 1.15
        np.testing.assert_allclose(truth["force_pn"][b & near], factor * law(1.0))
        assert truth["force_pn"][b & near][0] > 20 * truth["force_pn"][b & far][0]

    # tracked z follows the true height (and so the WLC) through the move
    for bead in (0, 1):
        t = tracks[tracks["bead_id"] == bead]
        g = truth[truth["bead_id"] == bead]
        true_z = dict(zip(g["frame"], g["z_nm"], strict=True))
        height = dict(zip(g["frame"], g["magnet_height_mm"], strict=True))
        z_true = np.array([true_z[f] for f in t["frame"]])
        h = np.array([height[f] for f in t["frame"]])
        ok = np.isfinite(t["z_nm"])
        assert ok.mean() > 0.95, ok.mean()
        err = t["z_nm"][ok] - z_true[ok]
        err -= np.median(err)
        assert np.percentile(np.abs(err), 95) < 40, np.percentile(np.abs(err), 95)
        near_t, far_t = ok & (h == 1.0), ok & (h == 6.0)
        rise = np.median(t["z_nm"][near_t]) - np.median(t["z_nm"][far_t])
        true_rise = np.median(z_true[near_t]) - np.median(z_true[far_t])
        near_g, far_g = g["magnet_height_mm"] == 1.0, g["magnet_height_mm"] == 6.0
        wlc_rise = np.median(g["extension_nm"][near_g]) - np.median(g["extension_nm"][far_g])
        assert wlc_rise > 1000
        assert rise == pytest.approx(true_rise, rel=0.03), (rise, true_rise)
        # the bead's mean height rose by the WLC's extension change (its fluctuations at
        # 0.15 pN are ~150 nm rms, correlated over ~50 ms: a 1 s mean is good to ~5 %)
        assert true_rise == pytest.approx(wlc_rise, rel=0.1), (true_rise, wlc_rise)


def test_commands_refused_stopped_and_twisted(tmp_path):
    """A move outside the limits is refused (the run goes on), a stop ends a move, a rotation
    shortens the tethers past buckling."""
    cfg = _config(tmp_path, magnets={"settings": {"bead_type": "MyOne",
                                                  "height_velocity_mm_s": 0.5}})  # fmt: skip
    proc = r.start(cfg)
    try:
        r.wait_for_frames(proc)
        with MotorControl(r.namespace(proc)) as ctl:
            with pytest.raises(MotorError, match="refused"):
                ctl.move_to("height", 0.01, wait=True)
            with pytest.raises(MotorError, match="no motor axis"):
                ctl.move_to("tilt", 1.0)
            limits = ctl.limits()
            assert (limits["height"].low, limits["height"].high) == (0.3, 20.0)
            assert limits["height"].max_velocity == 20.0 and limits["height"].start == 6.0
            assert (limits["focus"].low, limits["focus"].high) == (-10_000, 10_000)
            ctl.move_to("focus", 6100.0)  # the focus stage goes through the same channel
            while ctl.busy("focus"):
                time.sleep(0.01)
            assert ctl.position()[3] == 6100.0
            ctl.move_to("focus", 1e6)
            with pytest.raises(MotorError, match="refused"):
                while ctl.busy("focus"):
                    time.sleep(0.01)
            slow = ctl.move_to("height", 2.0)  # 8 s at 0.5 mm/s
            while ctl.position()[1] > 5.5:
                time.sleep(0.01)
            ctl.stop(wait=True)
            with pytest.raises(MotorError, match="stopped"):
                ctl.wait(slow)
            stopped = ctl.position()[1]
            assert 2.0 < stopped < 5.5
            ctl.move_to("rotation", 40.0, velocity=50.0, wait=True)
            r.wait_for_frames(proc)
    finally:
        err = r.interrupt(proc)
    assert "refused" in err and "outside the limits" in err and "outside the stage limits" in err
    data = r.read(r.output_file(tmp_path))
    truth = data["truth"]
    last = truth[truth["frame"] == truth["frame"].max()]
    assert (last["magnet_rotation_turns"] == 40.0).all()
    assert last["magnet_height_mm"][0] == pytest.approx(stopped, abs=0.05)
    untwisted = wlc_extension(last["force_pn"], 3400.0, 50.0, MotionParams().kt)
    assert (last["extension_nm"] < untwisted - 300).all()  # plectonemes at 0.3 pN, 40 turns


@pytest.mark.parametrize(
    ("magnets", "message"),
    [
        ({**MAGNETS, "height_mm": 50.0}, "magnets.height_mm: 50 is outside the magnets"),
        ({**MAGNETS, "settings": {"axes": ["height"]}, "rotation_turns": 3.0},
         "magnets.rotation_turns: SimMagnets has no rotation axis"),
        ({**MAGNETS, "settings": {"bead_typ": "MyOne"}}, "did you mean 'bead_type'"),
        ({**MAGNETS, "driver": "genicam"}, "magnets.driver"),
    ],
)  # fmt: skip
def test_bad_magnets_refused_before_the_run(tmp_path, magnets, message):
    done = r.run(_config(tmp_path, magnets=magnets, duration=1.0))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert message in lines[-1], done.stderr
    assert not list((tmp_path / "runs").glob("*.h5")) if (tmp_path / "runs").exists() else True


def test_a_motor_fault_ends_the_run_with_its_data_saved(tmp_path):
    cfg = _config(tmp_path, magnets={"settings": {"bead_type": "MyOne", "fail_after_moves": 1}})
    proc = r.start(cfg)
    r.wait_for_status(proc, "frames", 60)
    with MotorControl(r.namespace(proc)) as ctl:
        with pytest.raises(MotorError, match="failed"):
            ctl.move_to("height", 3.0, wait=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert "magnets failed" in last and "injected motor fault" in last and "saved in" in last
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed" and "magnets failed" in data["attrs"]["error"]
    assert len(data["frames"]) > 50 and len(data["tracks"]) > 0 and len(data["motors"]) > 0


def test_magnets_command_moves_a_live_run_and_the_config_directly(tmp_path):
    cfg = _config(tmp_path)
    proc = r.start(cfg)
    try:
        r.wait_for_frames(proc)
        done = r.cli("magnets", str(cfg), "--height", "4.5", "--rotation", "2",
                     "--run", r.namespace(proc), cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        want = f"magnets (run {r.namespace(proc)}): height 4.5 mm, rotation 2 turns"
        assert done.stdout.strip() == want
        bad = r.cli("magnets", str(cfg), "--height", "99", "--run", r.namespace(proc), cwd=tmp_path)
        assert bad.returncode == 1 and "refused" in bad.stderr.strip().splitlines()[-1]
    finally:
        r.interrupt(proc)
    # no run of this session live: the config's magnets are opened here
    done = r.cli("magnets", str(cfg), "--height", "1", "--relative", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "magnets (no run of yours live, moved directly): height 7 mm, rotation 0 turns"
    )
    bad = r.cli("magnets", str(cfg), "--height", "99", cwd=tmp_path)
    assert bad.returncode == 2 and "outside the limits" in bad.stderr


def test_the_magnets_section_configs_sim_documents_is_valid(tmp_path):
    """configs/sim.yaml shows the section commented out (its runs keep the sim's 2 pN)."""
    lines = (r.REPO / "configs" / "sim.yaml").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("# magnets:"))
    block = [lines[start][2:]]
    for ln in lines[start + 1 :]:  # its lines, to the section's end
        if not ln.startswith("#   "):
            break
        block.append(ln[2:])
    assert block and block[0].startswith("magnets:")
    config = tmp_path / "sim.yaml"
    config.write_text("\n".join([*lines, *block]) + "\n")
    done = r.cli("validate", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(config.read_text())["magnets"]["settings"]["bead_type"] == "M270"
