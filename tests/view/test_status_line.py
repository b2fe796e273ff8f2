"""The status lines: the viewer's, from a published status row; the terminal's and the log's."""

import math
import multiprocessing

from rich.console import Console

from magacq.pipeline.channels.status import RunStats, StatusView
from magacq.view._source import Status


def test_status_line_shows_the_protocol_step_and_time_left() -> None:
    protocol = {
        "protocol_action": 3,
        "protocol_actions": 16,
        "protocol_left": 42.4,
        "protocol_step_s": 12.2,
    }
    s = Status(fps=200.0, buffer_level=0.1, dropped=0, latency_s=0.02, frame=1234, extra=protocol)
    assert s.describe() == (
        "frame 1234 · 200 fps · buffer 10% · dropped 0 · latency p99 20 ms"
        " · protocol step 3/16 (12 s in), 42 s left"
    )
    script = Status(frame=5, extra={"protocol_action": 2, "protocol_left": math.nan})
    assert script.describe().endswith("protocol step 2")
    assert "protocol" not in Status(frame=5).describe()


def test_status_line_counts_the_cameras_lost_frames_as_dropped() -> None:
    lost = Status(frame=9, dropped=2, extra={"camera_gaps": 1500})
    assert "dropped 1,502 (1,500 by the camera)" in lost.describe()
    assert Status(frame=9, dropped=2, extra={"camera_gaps": 0}).describe().endswith("dropped 2")
    assert "dropped –" in Status(frame=9).describe()


def test_the_terminal_table_and_log_line_count_the_cameras_lost_frames() -> None:
    stats = RunStats(multiprocessing.get_context("spawn"))
    stats.add("dropped", 2)
    stats.add("camera_gaps", 1500)
    view = StatusView(stats, n_beads=3, n_workers=2, duration=None)
    console = Console(record=True, width=120)
    console.print(view)
    assert "1,502 (1,500 by the camera)" in console.export_text()
    assert "dropped 1,502 (1,500 by the camera)," in view.line()
