"""The viewer attached to a real run in another process: real data shown, ROIs edited, run end."""

import numpy as np
import pytest
from PySide6 import QtCore
from pytestqt.qtbot import QtBot

from magacq.view import ViewError, choose_run, find_runs
from magacq.view._source import RunSource
from magacq.view._window import ViewerWindow

from .fake_run import EXTRA


@pytest.fixture
def window(qtbot: QtBot, live_run, tmp_path):
    """The viewer on ``live_run``, shown; its screenshot is saved at teardown."""
    win = ViewerWindow(RunSource(live_run.namespace), window_s=10)
    qtbot.addWidget(win)
    win.show()
    yield win
    shot = tmp_path / "viewer.png"
    win.grab().save(str(shot))
    print(f"viewer screenshot: {shot}")
    win.close()


def test_discovery_finds_the_run_and_needs_run_when_several(live_run):
    runs = find_runs()
    mine = [r for r in runs if r.namespace == live_run.namespace]
    assert len(mine) == 1 and mine[0].owner_pid == live_run.proc.pid
    assert choose_run(mine, None) == mine[0]
    assert choose_run(runs, live_run.namespace) == mine[0]
    with pytest.raises(ViewError, match="--run"):
        choose_run([*mine, mine[0].__class__("other", 1, ())], None)
    with pytest.raises(ViewError, match="no live run"):
        choose_run(runs, "nosuchrun")


def test_shows_live_image_rois_traces_and_profile(qtbot: QtBot, window: ViewerWindow):
    qtbot.waitUntil(lambda: window.image_panel.image is not None, timeout=20000)
    qtbot.waitUntil(lambda: window.traces.points_shown() > 30, timeout=20000)
    img = window.image_panel.image
    assert img.shape == (128, 128) and img.max() > 1000 > np.median(img)  # beads, not blank
    beads = window._beads
    assert list(beads.ids) == [0, 1, 2] and window.selected == [0]
    assert window.bead_at(30, 40) == 0 and window.bead_at(5, 5) is None
    # the ROI outlines are drawn: 3 rectangles, 8 points each
    assert window.image_panel.outline_points() == 3 * 8
    lo, hi = window.image_panel.levels()
    assert img.min() - 50 <= lo < hi <= img.max() + 1  # auto contrast follows the image
    # bead 0 wobbles by +-2 px = +-200 nm: its x trace moves, around 3000 nm
    x = window.history.series(0)[:, 1]
    assert 2700 < x.mean() < 3300 and np.ptp(x) > 50
    qtbot.waitUntil(lambda: window.profile.profile is not None, timeout=20000)
    assert window.profile.profile.bead_id == 0
    assert np.ptp(window.profile.live_curve.getData()[1]) > 0
    window.image_panel.set_levels(0, 5000)
    assert not window.image_panel.auto.isChecked() and window.image_panel.levels() == (0, 5000)


def test_shift_click_adds_a_roi_that_is_tracked_and_removes_it(qtbot: QtBot, window):
    qtbot.waitUntil(lambda: window.image_panel.image is not None, timeout=20000)
    qtbot.waitUntil(lambda: len(window._beads.ids) == 3, timeout=20000)
    panel = window.image_panel
    shift = QtCore.Qt.KeyboardModifier.ShiftModifier
    left = QtCore.Qt.MouseButton.LeftButton
    point = panel.widget_point(*EXTRA)
    qtbot.mouseClick(panel.graphics.viewport(), left, shift, point)
    qtbot.waitUntil(lambda: len(window._beads.ids) == 4, timeout=20000)
    new = int(window._beads.ids[-1])
    assert window.selected == [new] and window.bead_at(*EXTRA) == new
    # the run tracks it: positions of the new bead arrive, at the spot's centre
    qtbot.waitUntil(lambda: len(window.history.series(new)) > 5, timeout=20000)
    x, y = window.history.series(new)[-1, 1:3]
    assert abs(x - EXTRA[0] * 100) < 100 and abs(y - EXTRA[1] * 100) < 100
    # a plain click selects, shift+click on a ROI removes it
    qtbot.mouseClick(panel.graphics.viewport(), left, pos=panel.widget_point(30, 40))
    assert window.selected == [0]
    qtbot.mouseClick(panel.graphics.viewport(), left, shift, panel.widget_point(*EXTRA))
    qtbot.waitUntil(lambda: len(window._beads.ids) == 3, timeout=20000)


def test_reference_subtraction(qtbot: QtBot, window):
    qtbot.waitUntil(lambda: len(window.history.series(1)) > 10, timeout=20000)
    plain = window.history.series(0)
    minus = window.history.series(0, reference=1)
    assert len(minus) > 10
    # bead 1 sits at x = 90 px: 0 minus 1 is about (30 - 90) px = -6000 nm
    assert abs(minus[:, 1].mean() + 6000) < 300 and abs(plain[:, 1].mean() - 3000) < 300


def test_run_ending_shows_a_message_not_a_crash(qtbot: QtBot, window, live_run):
    qtbot.waitUntil(lambda: window.image_panel.image is not None, timeout=20000)
    live_run.stop()
    qtbot.waitUntil(lambda: window.ended is not None, timeout=20000)
    assert window.banner.isVisible() and "has ended" in window.banner.text()
    assert window.image_panel.image is not None  # the last frame stays on screen
