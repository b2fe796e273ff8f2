"""One clock: a camera that cannot keep its rate loses frames (recorded as the camera's), its
frames keep true timestamps, and protocol events land on the frames taken while they held
(issue 26, case 4); latency is host arrival to host write, whatever the camera's clock."""

from pathlib import Path

import numpy as np
import pytest

from magacq.protocol import load_force_table
from tests.pipeline import _runner as r

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "configs" / "force_table_m270.csv"
FORCES = [0.5, 2.0, 8.0]


def _holds(data: dict) -> list[tuple[str, np.ndarray]]:
    """Each hold's label and the frame numbers its events enclose."""
    ev = data["events"]
    out = []
    for s in ev[(ev["kind"] == b"start") & (ev["action"] == b"hold")]:
        end = ev[(ev["kind"] == b"end") & (ev["step"] == s["step"])][0]
        out.append((s["label"].decode(), np.arange(s["frame"], end["frame"])))
    return out


@pytest.mark.parametrize("render_s", [0.0, 0.008])  # 0.008: a 200 fps camera that makes ~120
def test_holds_land_on_their_frames_when_the_camera_cannot_keep_up(tmp_path, render_s):
    base = r.two_beads(tmp_path, [[32, 32], [96, 32]], (0, 100), frame_rate=200,
                       debug_render_s=render_s)  # fmt: skip
    base["magnets"] = {"driver": "sim", "settings": {"bead_type": "M270"}, "height_mm": 8.0}
    protocol = {"recipe": "force_extension", "forces_pn": FORCES, "hold_s": 2.0,
                "back_down": False, "force_table": str(TABLE), "end_height_mm": 8.0}  # fmt: skip
    config = r.write_config(tmp_path, base, duration=120, protocol=protocol)
    done = r.run(config, timeout=180)
    assert done.returncode == 0, done.stderr
    data = r.read(r.output_file(tmp_path))
    assert data["attrs"]["state"] == "complete"
    frames, dropped, truth = data["frames"], data["dropped"], data["truth"]
    if render_s:  # the camera lost frames, as a real one does, and said so
        assert (dropped["reason"] == 1).sum() > 100
    # its timestamps stay on the host's clock: arrival within the camera's buffer (0.1 s) of them
    attrs = data["attrs"]
    lag = frames["host_time"] - (attrs["camera_clock_offset_s"]
                                 + attrs["camera_clock_rate"] * frames["timestamp"])  # fmt: skip
    assert np.percentile(lag, 99) < 0.25, np.percentile(lag, [50, 99])
    table = load_force_table(TABLE)
    holds = _holds(data)
    assert len(holds) == len(FORCES)
    for (label, held), force in zip(holds, FORCES, strict=True):
        stored = held[np.isin(held, frames["frame"])]
        lost = held[np.isin(held, dropped["frame"])]
        assert len(stored) + len(lost) == len(held)  # every frame of the hold accounted for
        assert len(held) == pytest.approx(2.0 * 200, rel=0.1), label  # the hold's 2 s
        middle = stored[len(stored) // 10 : -len(stored) // 10]
        g = truth[np.isin(truth["frame"], middle) & (truth["bead_id"] == 0)]
        assert len(g) > 0.5 * len(middle)
        expected = table.force(float(g["magnet_height_mm"][0]))
        assert expected == pytest.approx(force, rel=0.02), label
        # every frame the hold's events enclose was taken with the magnets at the hold's height
        np.testing.assert_allclose(g["magnet_height_mm"], g["magnet_height_mm"][0], atol=1e-6)


def test_latency_is_host_arrival_to_write_on_a_camera_clock_far_from_the_hosts(tmp_path):
    """A camera whose clock starts at 0 with the acquisition (Micro-Manager's ElapsedTime-ms)."""
    config = r.write_config(tmp_path, camera={"settings": {"frame_rate": 200,
                                                            "clock_offset_s": -1e4}})  # fmt: skip
    done = r.run(config)
    assert done.returncode == 0, done.stderr
    attrs = r.read(r.output_file(tmp_path))["attrs"]
    assert 0 < attrs["latency_p99_s"] < 5.0  # not the clocks' 10,000 s apart
    assert attrs["camera_clock_offset_s"] == pytest.approx(1e4, abs=5.0)
    assert attrs["camera_clock_rate"] == pytest.approx(1.0, abs=0.01)


def test_the_clock_fit_follows_rate_offset_and_a_switch_of_clock():
    """The fit itself: a camera clock 0.1 % fast and 5,000 s off, frames arriving 1-20 ms
    late, then a driver that switches to host time mid-run."""
    from magacq.pipeline.processes.clock import CameraClock

    rng = np.random.default_rng(0)
    host = 100.0 + np.arange(0, 20, 0.005)
    stamps = (host - 5000.0) * 1.001
    clock = CameraClock()
    for k in range(0, len(host), 100):  # as the writer drains it
        clock.add(stamps[k : k + 100], host[k : k + 100] + rng.uniform(0.001, 0.02, 100))
    assert clock.rate == pytest.approx(1 / 1.001, rel=1e-4)
    assert clock.to_camera(np.array([110.0]))[0] == pytest.approx((110 - 5000) * 1.001, abs=2e-3)
    later = host[-1] + np.arange(0.005, 2, 0.005)
    clock.add(later, later + 0.001)  # host time from now on
    assert clock.to_host(np.array([later[-1]]))[0] == pytest.approx(later[-1], abs=2e-3)
