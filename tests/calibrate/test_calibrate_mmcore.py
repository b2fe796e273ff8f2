"""`magacq calibrate` through the mmcore driver on the MagacqTest adapter (beads follow Z)."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from tests.pipeline import _runner as r

CFG = r.REPO / "simulators" / "mm_adapter" / "MagacqTest.cfg"


@pytest.fixture(scope="module")
def mm_path(tmp_path_factory) -> Path:
    from hal.mmcore import FocusStage

    reason = FocusStage.unavailable_reason()
    if reason:
        pytest.skip(reason)
    from simulators.mm_adapter import build_adapter

    return build_adapter(tmp_path_factory.mktemp("mm_adapter")).parent


def test_calibrate_then_run_on_mmcore(tmp_path, mm_path):
    core = {"mm_path": [str(mm_path)], "config_file": str(CFG)}
    cfg = {
        "camera": {
            "driver": "mmcore",
            "settings": {
                **core,
                "exposure_ms": 2,
                "properties": {
                    "PixelType": "16bit",
                    "Pattern": "Beads",
                    "BeadCount": 2,
                    "Noise": 20,
                    "Z": {"SettleMs": 5},
                },
            },
        },  # fmt: skip
        "focus_stage": {"driver": "mmcore", "settings": {**core, "stage": "Z"}},
        "buffers": {"n_stacks": 8, "images_per_stack": 5},
        "tracking": {"workers": 2, "roi_size": 64, "algorithm": "qi"},
        "beads": {"rois": [[128, 256], [384, 256]]},  # where BeadCount 2 puts them
        "output": {"dir": str(tmp_path / "runs")},
        "calibration": {
            "start_nm": -1000,
            "stop_nm": 500,
            "step_nm": 100,
            "settle_s": 0.0,
            "profiles_per_step": 5,
        },  # fmt: skip
        "duration": 1,
    }
    path = tmp_path / "mm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    lut = tmp_path / "lut.h5"
    done = r.cli("calibrate", str(path), "--output", str(lut), cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "focus stage back at 0.0 nm" in done.stderr
    with h5py.File(lut, "r") as f:
        assert f["quality"]["good"].all() and f["planes"].shape[:2] == (2, 16), f["quality"][:]
    cfg["tracking"]["zlut"] = str(lut)
    path.write_text(yaml.safe_dump(cfg))
    done = r.run(path)
    assert done.returncode == 0, done.stderr
    tracks = r.read(r.output_file(tmp_path))["tracks"]
    # the stage is back where the sweep started: bead height 0 on the LUT's axis
    assert np.isfinite(tracks["z_nm"]).mean() > 0.95, tracks["flag"][:20]
    assert np.abs(np.nanmedian(tracks["z_nm"])) < 10


def test_a_sequenceable_stage_sweeps_by_hardware_sequence(tmp_path, mm_path):
    """Issue 29: the sweep runs the focus stage's hardware sequences where it has them (ZSeq:
    64 positions at most, so this sweep's 80 frames take two), recorded in the Z-LUT file, and
    the LUT is the one a step-by-step sweep of the same stage gives."""
    from tests.mm_adapter import USER_CFG

    core = {"mm_path": [str(mm_path)], "config_file": str(USER_CFG)}
    luts = {}
    for sequences in (True, False):
        cfg = {
            "camera": {"driver": "mmcore", "settings": {**core, "exposure_ms": 2, "properties": {
                "PixelType": "16bit", "Pattern": "Beads", "BeadCount": 2, "Noise": 20}}},
            "focus_stage": {"driver": "mmcore", "settings": {
                **core, "stage": "ZSeq", "use_sequences": sequences, "limits_nm": [-5e4, 5e4]}},
            "buffers": {"n_stacks": 8, "images_per_stack": 5},
            "tracking": {"workers": 1, "roi_size": 64, "algorithm": "qi"},
            "beads": {"rois": [[64, 128], [192, 128]]},  # where BeadCount 2 puts them
            "output": {"dir": str(tmp_path / "runs")},
            "calibration": {"start_nm": -1000, "stop_nm": 500, "step_nm": 100,
                            "settle_s": 0.0, "profiles_per_step": 5},
        }  # fmt: skip
        path = tmp_path / f"seq{sequences}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        luts[sequences] = tmp_path / f"lut{sequences}.h5"
        done = r.cli("calibrate", str(path), "--output", str(luts[sequences]), cwd=tmp_path,
                     timeout=180)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ("runs hardware sequences: 12 positions per sequence" in done.stderr) == sequences
        assert "focus stage back at 0.0 nm" in done.stderr
    planes = {}
    for sequences, lut in luts.items():
        with h5py.File(lut, "r") as f:
            mode = f.attrs["sweep_mode"]
            assert mode == ("hardware sequence" if sequences else "steps"), mode
            assert f["quality"]["good"].all(), f["quality"][:]
            planes[sequences] = f["planes"][:]
    # the same planes, up to the camera's noise
    scale = np.abs(planes[False]).max()
    assert np.abs(planes[True] - planes[False]).max() < 0.02 * scale  # a position off: 0.08
