"""A run on a Micro-Manager camera whose timestamps count from the acquisition's start (its own
ElapsedTime-ms, or MMCore's whole milliseconds when it stamps nothing): latency is sane and the
protocol's events land on the frames taken while they held."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.mm_adapter import small_camera
from tests.pipeline import _runner as r

TARGETS_NM = (-3000.0, 3000.0)


@pytest.mark.parametrize("stamps", ["Yes", "No"])
def test_events_land_on_their_frames_on_a_camera_clock(
    tmp_path: Path, mm_path: Path, stamps: str
) -> None:
    properties = {"Pattern": "Beads", "BeadCount": 1, "StampElapsed": stamps}
    steps: list[dict] = []
    for z in TARGETS_NM:
        steps += [{"step": "focus", "z_nm": z}, {"step": "hold", "seconds": 1.0}]
    cfg = {
        "camera": small_camera(mm_path, properties),
        "focus_stage": {"driver": "mmcore", "settings": {"stage": "Z"}},
        "tracking": {"workers": 1, "roi_size": 32, "algorithm": "com"},
        "beads": {"rois": [[64, 64]]},
        "protocol": {"steps": steps},
        "output": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "clock.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = r.run(path)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    assert 0 < data["attrs"]["latency_p99_s"] < 5.0  # not seconds since boot
    frames, ev = data["frames"], data["events"]
    holds = ev[ev["action"] == b"hold"]
    assert list(holds["kind"]) == [b"start", b"end"] * 2
    for z, (start, end) in zip(TARGETS_NM, holds.reshape(2, 2), strict=True):
        held = frames[(frames["frame"] >= start["frame"]) & (frames["frame"] < end["frame"])]
        assert len(held) > 20, (start, end)  # a second at 5 ms a frame, not an empty range
        np.testing.assert_allclose(held["focus_z_nm"], z)  # all taken at the hold's focus
        assert held["host_time"][0] >= start["time"]  # none of them arrived before it began
