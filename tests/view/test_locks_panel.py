"""The viewer's lock controls on a real `magacq run` with a Z-lock and an XY-lock: it shows each
lock on with its error and last correction, and its buttons switch them off and on in the run,
which records each switch as an event."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6 import QtCore
from pytestqt.qtbot import QtBot

from magacq.view._source import RunSource
from magacq.view._window import ViewerWindow

from .conftest import REFERENCE, SIM_SETTINGS, LiveRun

WAIT_MS = 60_000  # generous: two shared cores, a run starting up
LOCKS = {
    "z_lock": {"bead": REFERENCE, "interval_s": 0.2, "deadband_nm": 0.0},
    "xy_lock": {"threshold_px": 1.0, "window_s": 0.3},
}
#: The beads drift 3 px/s in x: the XY-lock re-centres their ROIs every second or so.
CAMERA = {"driver": "sim", "settings": {**SIM_SETTINGS, "drift_nm_per_s": [300.0, 0.0, 1.7]}}


@pytest.fixture
def locked_run(tmp_path: Path, zlut: Path) -> Iterator[LiveRun]:
    """A run tracking z with the ``zlut`` fixture's Z-LUT, with both locks on."""
    run = LiveRun(tmp_path, zlut, camera=CAMERA, focus_stage={"driver": "sim"}, locks=LOCKS)
    try:
        yield run
    finally:
        run.stop()


def test_lock_controls_show_the_locks_and_switch_them_off_and_on(qtbot: QtBot, locked_run: LiveRun):
    win = ViewerWindow(RunSource(locked_run.namespace), window_s=10)
    qtbot.addWidget(win)
    win.show()
    panel = win.locks
    assert panel is not None
    click = QtCore.Qt.MouseButton.LeftButton
    z, xy = panel.readout["z"], panel.readout["xy"]
    qtbot.waitUntil(lambda: "error" in z.text() and "nm · last step" in z.text()
                    and "none yet" not in z.text(), timeout=WAIT_MS)  # fmt: skip
    assert z.text().startswith("on · error ") and panel.buttons["z"].text() == "switch off"
    qtbot.waitUntil(lambda: "last bead" in xy.text() and "+0) px" in xy.text(), timeout=WAIT_MS)
    assert xy.text().startswith("on · off centre ")
    qtbot.mouseClick(panel.buttons["z"], click)
    qtbot.mouseClick(panel.buttons["xy"], click)
    qtbot.waitUntil(lambda: z.text() == "off" and xy.text() == "off", timeout=WAIT_MS)
    assert panel.buttons["z"].text() == panel.buttons["xy"].text() == "switch on"
    qtbot.mouseClick(panel.buttons["z"], click)
    qtbot.waitUntil(lambda: z.text().startswith("on · error ") and "error –" not in z.text(),
                    timeout=WAIT_MS)  # engaged again, on the bead's z now  # fmt: skip
    assert xy.text() == "off"
    shot = locked_run.tmp / "viewer-locks.png"
    assert win.grab().save(str(shot))
    win.close()
    assert locked_run.stop() == 0
    ev = locked_run.data()["events"]
    labels = [(a, k, lab) for a, k, lab in zip(ev["action"], ev["kind"], ev["label"], strict=True)]
    assert (b"zlock", b"off", b"off: switched off") in labels
    assert (b"xylock", b"off", b"off: switched off") in labels
    assert (b"zlock", b"start", b"on (switched on)") in labels
    assert sum(1 for a, _, lab in labels if a == b"zlock" and lab.startswith(b"on, target")) == 2
