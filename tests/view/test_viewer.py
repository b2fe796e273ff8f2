"""The viewer attached to a real `magacq run` (sim camera) in another process: real data shown,
a ROI added by clicking is tracked by the run, the run ending shows a message."""

import contextlib
import math
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from PySide6 import QtCore
from pytestqt.qtbot import QtBot

from magacq.runfile import read_zlut_file
from magacq.view import ViewError, choose_run, find_runs
from magacq.view._source import RunSource
from magacq.view._window import ViewerWindow
from tests.pipeline import _runner as r

from .conftest import BEADS_PX, HEIGHT, PIXEL_NM, REFERENCE, ROI, SWEEP_NM, WIDTH, LiveRun

WAIT_MS = 60_000  # generous: two shared cores, a run starting up


def _shown(qtbot: QtBot, run: LiveRun, tmp_path: Path, capsys) -> Iterator[ViewerWindow]:
    """The viewer on ``run``, shown; its screenshot is saved (and its path printed)."""
    win = ViewerWindow(RunSource(run.namespace), window_s=10)
    qtbot.addWidget(win)
    win.show()
    yield win
    shot = tmp_path / "viewer.png"
    assert win.grab().save(str(shot))
    with capsys.disabled():
        print(f"\nviewer screenshot: {shot}")
    win.close()


@pytest.fixture
def window(qtbot: QtBot, live_run: LiveRun, tmp_path: Path, capsys) -> Iterator[ViewerWindow]:
    """The viewer on ``live_run``."""
    yield from _shown(qtbot, live_run, tmp_path, capsys)


@pytest.fixture
def magnets_window(
    qtbot: QtBot, live_run_magnets: LiveRun, tmp_path: Path, capsys
) -> Iterator[ViewerWindow]:
    """The viewer on ``live_run_magnets`` (a run with the sim magnets)."""
    yield from _shown(qtbot, live_run_magnets, tmp_path, capsys)


@pytest.fixture
def zlut_window(
    qtbot: QtBot, live_run_zlut: LiveRun, tmp_path: Path, capsys
) -> Iterator[ViewerWindow]:
    """The viewer on ``live_run_zlut`` (a run tracking z with a Z-LUT)."""
    yield from _shown(qtbot, live_run_zlut, tmp_path, capsys)


def _near_truth(xy_nm: np.ndarray, bead: int, tol_nm: float = 300) -> bool:
    """Whether positions (nm) sit on the sim's bead ``bead`` (which diffuses a little)."""
    x, y = np.median(xy_nm, axis=0)
    tx, ty = BEADS_PX[bead]
    return math.hypot(x - tx * PIXEL_NM, y - ty * PIXEL_NM) < tol_nm


@contextlib.contextmanager
def _cpu_hogs(n: int = 1) -> Iterator[None]:
    """``n`` busy processes at normal priority (a loaded machine), killed at the end."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _stderr_until(proc: subprocess.Popen, text: str, timeout: float = WAIT_MS / 1000) -> str:
    """``proc``'s stderr up to ``text`` (fails if it exits or ``timeout`` passes first)."""
    fd, out = proc.stderr.fileno(), b""
    deadline = time.monotonic() + timeout
    while text.encode() not in out:
        left = deadline - time.monotonic()
        chunk = os.read(fd, 4096) if left > 0 and select.select([fd], [], [], left)[0] else b""
        if not chunk:
            raise AssertionError(f"no {text!r} from the viewer (exit code {proc.poll()}): {out}")
        out += chunk
    return out.decode()


def test_discovery_finds_the_real_run_and_magacq_view_shows_it_before_lowering_priority(
    live_run: LiveRun, tmp_path: Path
):
    runs = find_runs()
    mine = [run for run in runs if run.namespace == live_run.namespace]
    assert len(mine) == 1 and mine[0].owner_pid == live_run.proc.pid
    assert {"VideoBuffer", "positions", "BeadRoiBuffer"} <= set(mine[0].segments)
    assert choose_run(mine, None) == mine[0]
    assert choose_run(runs, live_run.namespace) == mine[0]
    # a second run of this session and user: the unnamed choice is refused, listing both
    twin = mine[0].__class__(live_run.namespace + "x", os.getpid(), ())
    with pytest.raises(ViewError, match="several runs of yours are live; choose one with --run"):
        choose_run([*mine, twin], None)
    # a run of another session's namespace is never chosen unnamed
    assert choose_run([*mine, mine[0].__class__("default-run1", 1, ())], None) == mine[0]
    with pytest.raises(ViewError, match="no live run"):
        choose_run(runs, "nosuchrun")

    # `magacq view` on a loaded machine: its window is shown at the caller's priority (a niced
    # viewer took ~20 s to show anything), and only then is its priority lowered
    caller = os.nice(0)
    if caller > 9:
        pytest.skip(f"the tests run at nice {caller}: the viewer cannot lower its priority")
    with _cpu_hogs():
        viewer, err = r.start_cli("view", "--run", live_run.namespace, cwd=tmp_path), ""
        try:
            err = _stderr_until(viewer, "priority lowered")
            assert psutil.Process(viewer.pid).nice() == caller + 10
        finally:
            viewer.terminate()
            err += viewer.communicate(timeout=30)[1]
    shown = re.search(r"window shown \(nice (-?\d+)\)", err)
    lowered = re.search(r"priority lowered \(nice (-?\d+)\)", err)
    assert shown and lowered and shown.start() < lowered.start(), err
    assert int(shown[1]) == caller and int(lowered[1]) == caller + 10, err


def test_shows_the_runs_image_rois_traces_profile_and_status(
    qtbot: QtBot, window: ViewerWindow, live_run: LiveRun
):
    qtbot.waitUntil(lambda: window.image_panel.image is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window.history.series(REFERENCE)) > 30, timeout=WAIT_MS)

    # the camera image: the run's frame size, the sim's beads on it (not blank)
    img = window.image_panel.image
    assert img.shape == (HEIGHT, WIDTH)
    (x0, y0, x1, y1) = window._beads.rois[0]
    bead, clear = img[y0:y1, x0:x1].astype(float), img[150:, 300:].astype(float)
    assert bead.std() > 3 * clear.std() > 0  # rings around bead 0, plain noise off the beads
    lo, hi = window.image_panel.levels()
    assert img.min() - 50 <= lo < hi <= img.max() + 1  # auto contrast follows the image

    # the run's ROIs (the config's two beads, of the run's size), drawn
    beads = window._beads
    assert list(beads.ids) == [0, 1] and (beads.rois[:, 2] - beads.rois[:, 0] == ROI).all()
    assert window.image_panel.outline_points() == 2 * 8
    assert list(beads.reference) == [False, True]  # the config's reference bead, marked
    assert [label.toPlainText() for label in window.image_panel._labels] == ["0", "1R"]
    assert window.selected == [0]
    assert window.magnets is None  # a run without magnets: no magnet controls
    assert window.bead_at(*BEADS_PX[0]) == 0 and window.bead_at(*BEADS_PX[2]) is None

    # traces: the trackers' positions of each bead, where the sim put it
    qtbot.waitUntil(lambda: window.traces.points_shown() > 30, timeout=WAIT_MS)
    for b in (0, 1):
        assert _near_truth(window.history.series(b)[:, 1:3], b)
    # minus the reference bead: bead 0 relative to bead 1, frame by frame
    assert window.traces.reference.currentData() == REFERENCE  # subtracted by default
    minus = window.history.series(0, reference=REFERENCE)
    assert len(minus) > 30
    dx = (BEADS_PX[0][0] - BEADS_PX[1][0]) * PIXEL_NM
    assert abs(np.median(minus[:, 1]) - dx) < 300

    # the live radial profile of bead 0 from the tracker (QI)
    qtbot.waitUntil(lambda: window.profile.profile is not None, timeout=WAIT_MS)
    assert window.profile.profile.bead_id == 0
    curve = window.profile.live_curve.getData()[1]
    assert len(curve) > 10 and np.isfinite(curve).all() and np.ptp(curve) > 0

    # times since the run's start (the sim camera's clock is the host's, thousands of s)
    caption = window.profile.caption.text()
    t = window.traces.curves[0][0].getData()[0]
    qtbot.waitUntil(lambda: window.source.status().extra.get("elapsed", 0) > 0, timeout=WAIT_MS)
    lived = window.source.status().extra["elapsed"] + 1.0  # seconds since the camera started
    assert caption.endswith(" s since the run's start"), caption
    assert 0 <= float(caption.split(" at ")[1].split()[0]) <= lived
    assert window.traces.since_start
    assert 0 <= t.min() and t.max() <= lived
    # the panels are not squashed: each plot keeps room for its title, labels and ticks
    for plot in (*window.traces.plots, window.profile.plot):
        assert plot.size().height() >= 100, plot.size()

    # status: the run's real numbers
    qtbot.waitUntil(lambda: math.isfinite(window.source.status().fps), timeout=WAIT_MS)
    status = window.source.status()
    assert status.fps > 0 and status.frame > 0
    assert 0 <= status.buffer_level <= 1 and status.dropped >= 0
    assert status.extra["n_beads"] == 2 and status.extra["stacks_tracked"] > 0
    assert "fps" in window.status_label.text() and "beads 2" in window.status_label.text()

    assert window.image_panel.auto.isChecked()  # new frames do not switch auto contrast off
    window.image_panel.set_levels(0, 5000)
    assert not window.image_panel.auto.isChecked() and window.image_panel.levels() == (0, 5000)

    # on a machine with no CPU to spare the window refreshes less, and says so (here the
    # threshold is raised so that this one counts as busy)
    window.busy_idle_cores = window.calm_idle_cores = math.inf
    qtbot.waitUntil(lambda: window.slowed, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "display slowed" in window.status_label.text(), timeout=WAIT_MS)
    shown, points = window._frame_shown, window.traces.points_shown()
    qtbot.waitUntil(lambda: window._frame_shown != shown, timeout=WAIT_MS)  # still live
    qtbot.waitUntil(lambda: window.traces.points_shown() != points, timeout=WAIT_MS)

    # closing the viewer leaves the run running; it then ends normally
    window.close()
    assert live_run.proc.poll() is None
    assert live_run.stop() == 0, live_run.stderr
    assert live_run.data()["attrs"]["frames_stored"] >= status.frame


def test_shift_click_adds_a_roi_the_run_tracks_then_the_run_ends(
    qtbot: QtBot, window: ViewerWindow, live_run: LiveRun
):
    qtbot.waitUntil(lambda: window.image_panel.image is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window._beads.ids) == 2, timeout=WAIT_MS)
    panel = window.image_panel
    shift = QtCore.Qt.KeyboardModifier.ShiftModifier
    left = QtCore.Qt.MouseButton.LeftButton
    spot = BEADS_PX[2]  # a bead of the sim with no ROI
    qtbot.mouseClick(panel.graphics.viewport(), left, shift, panel.widget_point(*spot))
    qtbot.waitUntil(lambda: len(window._beads.ids) == 3, timeout=WAIT_MS)
    new = int(window._beads.ids[-1])
    assert new == 2 and window.selected == [new] and window.bead_at(*spot) == new
    x0, y0, x1, y1 = window._beads.rois[-1]
    assert x1 - x0 == y1 - y0 == ROI  # the run's size, or its trackers would skip it
    assert panel.outline_points() == 3 * 8

    # the run's trackers track it: its positions arrive, on the sim's bead
    qtbot.waitUntil(lambda: len(window.history.series(new)) > 20, timeout=WAIT_MS)
    assert _near_truth(window.history.series(new)[:, 1:3], 2)
    # selected, so the trackers publish its live profile
    qtbot.waitUntil(
        lambda: window.profile.profile is not None and window.profile.profile.bead_id == new,
        timeout=WAIT_MS,
    )

    # a plain click selects, shift+click on a ROI removes it
    qtbot.mouseClick(panel.graphics.viewport(), left, pos=panel.widget_point(*BEADS_PX[0]))
    assert window.selected == [0]
    qtbot.mouseClick(panel.graphics.viewport(), left, shift, panel.widget_point(*spot))
    qtbot.waitUntil(lambda: len(window._beads.ids) == 2, timeout=WAIT_MS)

    # the run ends (Ctrl-C): a banner, not a crash; the last frame stays on screen
    assert live_run.stop() == 0, live_run.stderr
    qtbot.waitUntil(lambda: window.ended is not None, timeout=WAIT_MS)
    assert window.banner.isVisible() and "has ended" in window.banner.text()
    assert window.image_panel.image is not None

    # the file has the clicked bead: its ROI, and tracks on the sim's bead
    data = live_run.data()
    assert new in data["rois"]["bead_id"]
    tracks = data["tracks"]
    mine = tracks[tracks["bead_id"] == new]
    assert len(mine) > 20
    assert _near_truth(np.column_stack([mine["x_nm"], mine["y_nm"]]), 2)


def test_profile_panel_shows_the_runs_zlut_and_the_best_match(
    qtbot: QtBot, zlut_window: ViewerWindow, live_run_zlut: LiveRun, zlut: Path
):
    window = zlut_window
    qtbot.waitUntil(lambda: window.selected == [0], timeout=WAIT_MS)

    # the run publishes the Z-LUT it tracks with: the file's, bead for bead; none for others
    lut = read_zlut_file(zlut).zlut
    start, stop, step = SWEEP_NM
    assert lut.planes.shape[:2] == (2, (stop - start) // step + 1)
    for bead in (0, 1):
        published = window.source.zlut(bead)
        assert published is not None
        assert np.array_equal(published.z_nm, lut.z_nm)
        assert np.array_equal(published.profiles, lut.planes[bead], equal_nan=True)
    assert window.source.zlut(2) is None

    # the selected bead's LUT as an image (z against radius) in the profile panel
    panel = window.profile
    assert panel.lut_plot.isVisible()
    image = panel.lut_image.image
    assert image.shape == lut.planes[0].shape and np.isfinite(image).all() and np.ptp(image) > 0

    # the live profile, its nearest LUT row drawn over it, near the z the trackers measure
    qtbot.waitUntil(lambda: panel.profile is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window.history.series(0)) > 30, timeout=WAIT_MS)
    assert panel.profile.bead_id == 0 and "nearest Z-LUT row" in panel.caption.text()
    for plot in (panel.plot, panel.lut_plot):  # side by side, neither squashed
        assert plot.size().height() >= 180, plot.size()
    r_live, live = panel.live_curve.getData()
    r_match, match = panel.match_curve.getData()
    assert len(match) == len(live) > 10 and np.isfinite(match).all()
    assert np.corrcoef(live, match)[0, 1] > 0.9  # the same rings
    z_row = panel.lut_marker.value()
    assert z_row in lut.z_nm
    z_tracked = window.history.series(0)[-50:, 3]
    assert np.isfinite(z_tracked).all()
    assert abs(z_row - np.median(z_tracked)) <= 3 * step

    window.close()
    assert live_run_zlut.stop() == 0, live_run_zlut.stderr


def test_magnet_controls_move_the_runs_magnets(
    qtbot: QtBot, magnets_window: ViewerWindow, live_run_magnets: LiveRun
):
    panel = magnets_window.magnets
    assert panel is not None and [a[0] for a in panel.axes] == ["height", "rotation"]
    qtbot.waitUntil(lambda: panel.readout["height"].text() == "6.000 mm", timeout=WAIT_MS)
    assert panel.target["height"].minimum() == 0.3 and panel.target["height"].maximum() == 20
    panel.target["height"].setValue(4.5)
    qtbot.mouseClick(panel.buttons["height go"], QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.state.text() == "arrived", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.readout["height"].text() == "4.500 mm", timeout=WAIT_MS)
    for _ in range(2):  # two steps of -1 turn, each to its end
        qtbot.mouseClick(panel.buttons["rotation −"], QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.state.text() == "arrived", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.readout["rotation"].text() == "-2.00 turns", timeout=WAIT_MS)
    # the target boxes show where the magnets are, but for one the user is editing
    qtbot.waitUntil(lambda: panel.target["rotation"].value() == -2.0, timeout=WAIT_MS)
    assert panel.target["height"].value() == 4.5
    panel.target["rotation"].setValue(3.0)
    panel.refresh()
    assert panel.target["rotation"].value() == 3.0
    panel.target["rotation"].setValue(-2.0)
    qtbot.mouseClick(panel.buttons["height go"], QtCore.Qt.MouseButton.LeftButton)  # 4.5 again
    qtbot.mouseClick(panel.stop_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.state.text() == "arrived", timeout=WAIT_MS)  # the stop's
    assert live_run_magnets.stop() == 0
    motors = live_run_magnets.data()["motors"]
    assert motors["magnet_height_mm"][0] == 6.0 and 4.5 in motors["magnet_height_mm"]
    assert motors["magnet_rotation_turns"][-1] == -2.0


@pytest.fixture
def force_window(
    qtbot: QtBot, live_run_force: LiveRun, tmp_path: Path, capsys
) -> Iterator[ViewerWindow]:
    """The viewer on ``live_run_force`` (a run with the live force estimate)."""
    yield from _shown(qtbot, live_run_force, tmp_path, capsys)


def test_shows_the_selected_beads_live_force(
    qtbot: QtBot, force_window: ViewerWindow, live_run_force: LiveRun
):
    win = force_window
    qtbot.waitUntil(lambda: win.selected == [0], timeout=WAIT_MS)

    def estimate() -> dict[str, float] | None:
        return (win.source.forces() or {}).get(0)

    # a full window of bead 0
    qtbot.waitUntil(lambda: (e := estimate()) is not None and e["seconds"] > 3.5,
                    timeout=WAIT_MS)  # fmt: skip
    shown = estimate()
    assert set(win.source.forces()) == {0, 1}
    qtbot.waitUntil(lambda: win.force.isVisible() and "force, bead 0: " in win.force.text(),
                    timeout=WAIT_MS)  # fmt: skip
    assert " pN (Allan, last " in win.force.text()
    value = float(win.force.text().split(": ")[1].split(" ± ")[0])
    assert value == pytest.approx(shown["force_pn"], rel=0.5)  # a later estimate, maybe
    assert live_run_force.stop() == 0
    truth = live_run_force.data()["truth"]
    true = float(np.mean(truth["force_pn"][truth["bead_id"] == 0]))
    assert abs(math.log(shown["force_pn"] / true)) < 4 * shown["force_err_pn"] / shown["force_pn"]
