"""A real run through pymmcore whose magnets are the MagacqTest adapter's magnet stages:
moved on command during the run and recorded; a stalled motor ends the run, data saved."""

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from magacq.pipeline.channels.motor_channel import MotorControl, MotorError
from tests.mm_adapter import USER_CFG, small_camera
from tests.pipeline import _runner as r

STAGES = {"height_stage": "MagnetZ", "rotation_stage": "MagnetR", "velocity_property": "Velocity"}
PLAIN = {"height_stage": "MagnetZ", "rotation_stage": "MagnetR"}  # MagacqUser.cfg: no velocity


def _config(tmp: Path, mm_path: Path, camera_properties: dict[str, Any], **magnets: Any) -> Path:
    cfg = {
        "camera": small_camera(mm_path, {"Pattern": "Beads", "BeadCount": 1, **camera_properties}),
        "focus_stage": {"driver": "mmcore", "settings": {"stage": "Z"}},
        "magnets": {"driver": "mmcore", "settings": STAGES, **magnets},
        "buffers": {"n_stacks": 8, "images_per_stack": 5},
        "tracking": {"workers": 1, "roi_size": 32, "algorithm": "com"},
        "beads": {"rois": [[64, 64]]},
        "output": {"dir": str(tmp / "runs")},
        "duration": None,
    }
    path = tmp / "mm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_moves_the_adapter_magnet_stages_and_records_them(tmp_path, mm_path):
    cfg = _config(tmp_path, mm_path, {}, height_mm=5.0, rotation_turns=0.0)
    proc = r.start(cfg)
    try:
        r.wait_for_frames(proc)
        ns = f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}"
        with MotorControl(ns) as ctl:
            assert ctl.position()[1:3] == pytest.approx((5.0, 0.0))
            ctl.move_to("height", 2.0, velocity=0.5)  # 6 s: still going after the rotation
            ctl.move_by("rotation", 2.5, wait=True)  # 900 degrees at 3600 deg/s
            ctl.stop(wait=True)  # halts the height move part-way
            height = ctl.position()[1]
            assert 2.0 < height < 5.0
            ctl.move_to("height", 2.0, wait=True)
            assert ctl.position()[1:4] == pytest.approx((2.0, 2.5, 0.0))
            r.wait_for_frames(proc)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    data = r.read(r.output_file(tmp_path))
    motors, frames = data["motors"], data["frames"]
    assert motors["magnet_height_mm"][0] == pytest.approx(5.0)
    assert motors["magnet_height_mm"][-1] == pytest.approx(2.0)
    assert motors["magnet_rotation_turns"][-1] == pytest.approx(2.5)
    assert (motors["focus_z_nm"] == 0).all()
    between = (motors["magnet_height_mm"] < 4.9) & (motors["magnet_height_mm"] > 2.1)
    assert between.sum() >= 5  # sampled on the way, not only at the ends
    assert (np.diff(motors["magnet_rotation_turns"]) >= -1e-9).all()
    assert frames["magnet_height_mm"][0] == pytest.approx(5.0)
    assert frames["magnet_height_mm"][-1] == pytest.approx(2.0)
    assert len(data["tracks"]) == len(frames) > 50


def test_a_stalled_motor_times_out_and_ends_the_run_with_its_data(tmp_path, mm_path):
    cfg = _config(tmp_path, mm_path, {"MagnetZ": {"Fault": "Stall"}}, move_timeout_s=1.0)
    proc = r.start(cfg)
    r.wait_for_frames(proc)
    with MotorControl(f"{os.environ['MAGACQ_NAMESPACE']}-run{proc.pid}") as ctl:
        with pytest.raises(MotorError, match="timed_out"):
            ctl.move_to("height", 3.0, wait=True, timeout=30)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert "magnets failed: height still moving 1 s after command" in last, last
    assert "saved in" in last
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "failed"
    assert len(data["frames"]) > 50 and len(data["motors"]) > 0


def test_a_run_with_magnet_stages_without_velocity(tmp_path, mm_path):
    """MagacqUser.cfg's magnet stages have no velocity property: the run and its protocol move
    them at their own speed (was: the run refused, blaming the camera)."""
    cfg = yaml.safe_load(_config(tmp_path, mm_path, {}).read_text())
    cfg["camera"]["settings"].update(config_file=str(USER_CFG), presets={"Channel": "Beads"})
    cfg["camera"]["settings"]["properties"] = {"BeadCount": 1}
    cfg["focus_stage"]["settings"] = {"limits_nm": [-40000, 40000]}
    cfg["magnets"] = {"driver": "mmcore", "settings": PLAIN, "height_mm": 5.0}
    cfg["protocol"] = {"steps": [{"step": "magnets", "height_mm": 3.0, "rotation_turns": 2.0},
                                 {"step": "hold", "seconds": 0.5}]}  # fmt: skip
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = r.run(path)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    recorded = json.loads(data["attrs"]["config"])["camera"]["settings"]
    assert recorded["presets"] == {"Channel": "Beads"}  # the presets are kept with the run
    motors = data["motors"]
    assert motors["magnet_height_mm"][0] == pytest.approx(5.0)
    assert motors["magnet_height_mm"][-1] == pytest.approx(3.0)
    assert motors["magnet_rotation_turns"][-1] == pytest.approx(2.0)
