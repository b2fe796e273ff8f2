"""Fixtures for the viewer tests: Qt on a real X server (Xvfb), a real `magacq run` on the sim
camera, and a Z-LUT made by a real `magacq calibrate`."""

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from magacq.pipeline.channels.status import ACQUIRING, read_status
from tests.pipeline import _runner as r

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

#: Where the sim draws its beads (px). The run is given ROIs for the first two only: the third is
#: the one a test adds by shift+clicking.
BEADS_PX = [(80.3, 90.6), (170.2, 100.1), (250.7, 80.4)]
WIDTH, HEIGHT = 320, 192
PIXEL_NM = 100.0  # the sim's default pixel size
ROI = 64  # the run's ROI size (px)
REFERENCE = 1  # bead 1 is the run's reference bead


#: The Z-LUT sweep of the ``zlut`` fixture (nm): around the sim's focus (6000 nm).
SWEEP_NM = (5000, 7000, 100)


def _xvfb_start() -> tuple[int, str]:
    """Start Xvfb on a free display; its pid and the display (``:N``).

    Xvfb picks the display itself (``-displayfd``). It is started through ``sh ... &`` so that it
    is not a child of pytest: the leak check (tests/conftest.py) fails a test that leaves a child
    process running, and this one lives for the whole session.
    """
    read_fd, write_fd = os.pipe()
    try:
        started = subprocess.run(
            ["sh", "-c", 'Xvfb -displayfd "$0" -screen 0 1600x1000x24 -nolisten tcp '
             '>/dev/null 2>&1 </dev/null & echo $!', str(write_fd)],
            pass_fds=(write_fd,), capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        os.close(write_fd)
        write_fd = -1
        pid = int(started.stdout)
        number = b""
        while not number.endswith(b"\n"):
            if not select.select([read_fd], [], [], 30)[0]:
                raise RuntimeError("Xvfb did not report its display within 30 s")
            chunk = os.read(read_fd, 16)
            if not chunk:
                raise RuntimeError("Xvfb exited before reporting its display")
            number += chunk
        return pid, f":{int(number)}"
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def _xvfb_stop(pid: int) -> None:
    try:
        xvfb = psutil.Process(pid)
        xvfb.terminate()
        xvfb.wait(10)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        xvfb.kill()


def _qt_shutdown() -> None:
    """Close the session's QApplication (pytest-qt's ``qapp``), if one was made."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    app = widgets.QApplication.instance() if widgets is not None else None
    if app is not None:
        app.closeAllWindows()
        app.processEvents()
        app.shutdown()


@pytest.fixture(scope="session", autouse=True)
def x_display(request: pytest.FixtureRequest) -> Iterator[str]:
    """Qt on a real X server: a private Xvfb for the session (``QT_QPA_PLATFORM=xcb``).

    Only without Xvfb (``apt-get install xvfb``, as .ci/run does) do the tests fall back to Qt's
    offscreen platform, and say so on the terminal. Must run before the QApplication exists:
    session-scoped and autouse, it comes before pytest-qt's ``qapp``.
    """
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    pid = None
    if shutil.which("Xvfb") is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        display = "offscreen"
        note = "tests/view: Xvfb not found: Qt runs OFFSCREEN, not on a real X server"
    else:
        pid, display = _xvfb_start()
        os.environ["DISPLAY"] = display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        note = f"tests/view: Qt on Xvfb display {display} (xcb)"
    if terminal is not None:
        terminal.write_line(note)
    try:
        yield display
    finally:
        _qt_shutdown()  # before its X server goes: Qt would report a broken connection
        if pid is not None:
            _xvfb_stop(pid)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: The sim camera's settings of every viewer run.
SIM_SETTINGS = {
    "width": WIDTH,
    "height": HEIGHT,
    "frame_rate": 200,
    "n_beads": len(BEADS_PX),
    "bead_xy_px": [list(b) for b in BEADS_PX],
    "roi_size": 96,
    "seed": 1,
}


def _sim_config(tmp: Path, **overrides: object) -> Path:
    """The sim camera with three beads (ROIs for the first two), tracked by one QI worker."""
    sections: dict = {
        "camera": {"driver": "sim", "settings": SIM_SETTINGS},
        "tracking": {"workers": 1, "roi_size": ROI},
        "beads": {"rois": [[round(x), round(y)] for x, y in BEADS_PX[:2]], "reference": [1]},
        "duration": None,
    }
    for key, value in overrides.items():
        sections[key] = {**sections[key], **value} if key in sections else value
    return r.write_config(tmp, **sections)


@pytest.fixture(scope="session")
def zlut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Z-LUT of the run's two beads, made by a real `magacq calibrate` (once per session)."""
    tmp = tmp_path_factory.mktemp("zlut")
    start, stop, step = SWEEP_NM
    config = _sim_config(
        tmp,
        focus_stage={"driver": "sim", "settings": {"settle_time_s": 0.01}},
        calibration={"start_nm": start, "stop_nm": stop, "step_nm": step, "settle_s": 0.0,
                     "profiles_per_step": 5},
    )  # fmt: skip
    out = tmp / "zlut.h5"
    done = r.cli("calibrate", str(config), "--output", str(out), cwd=tmp, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


class LiveRun:
    """A `magacq run` of the real CLI in a child process; ``stop()`` ends it with Ctrl-C.

    With ``zlut``, the run tracks z with that Z-LUT file (and publishes it for viewers); other
    keywords are config sections (e.g. ``magnets``).
    """

    def __init__(self, tmp: Path, zlut: Path | None = None, **sections: object) -> None:
        self.tmp = tmp
        if zlut is not None:
            sections["tracking"] = {"zlut": str(zlut)}
        config = _sim_config(tmp, **sections)
        self.proc = r.start(config)
        self.namespace = f"{os.environ['MAGACQ_NAMESPACE']}-run{self.proc.pid}"
        self.stderr = ""
        try:
            self._wait_acquiring()
        except BaseException:
            self.stop()
            raise

    def _wait_acquiring(self, timeout: float = 120) -> None:
        """Until the run publishes that its camera is acquiring (fails if the run exits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the run exited ({self.stop()}): {self.stderr}")
            status = read_status(self.namespace)
            if status is not None and status["state"] == ACQUIRING and status["frames"] > 0:
                return
            time.sleep(0.1)
        raise RuntimeError("the run did not start acquiring")

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C the run and wait for it to save and exit; its exit code."""
        if self.proc.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                _, self.stderr = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, self.stderr = self.proc.communicate()
        return self.proc.returncode

    def data(self) -> dict:
        """The run's HDF5 file (after ``stop``)."""
        return r.read(r.output_file(self.tmp))


@pytest.fixture
def live_run(tmp_path: Path) -> Iterator[LiveRun]:
    """A running simulated acquisition the viewer can attach to; stopped at the end."""
    run = LiveRun(tmp_path)
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture
def live_run_magnets(tmp_path: Path) -> Iterator[LiveRun]:
    """The same acquisition with the sim magnets (at 6 mm, no rotation)."""
    run = LiveRun(tmp_path, magnets={"driver": "sim", "height_mm": 6.0, "rotation_turns": 0.0})
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture
def live_run_zlut(tmp_path: Path, zlut: Path) -> Iterator[LiveRun]:
    """The same acquisition tracking z with the ``zlut`` fixture's Z-LUT."""
    run = LiveRun(tmp_path, zlut)
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture
def live_run_force(tmp_path: Path) -> Iterator[LiveRun]:
    """The same acquisition with the live force estimate (its window 4 s, every 0.5 s), and no
    reference bead: the sim's beads 0 and 1 are both tethered (a tethered "reference" would
    add its motion to the others')."""
    from simulators.motion import MotionParams

    extension = round(MotionParams().extension_nm, 1)  # the sim's tethers at its 2 pN
    live_force = {"extension_nm": extension, "window_s": 4.0, "interval_s": 0.5}
    run = LiveRun(tmp_path, beads={"reference": []}, live_force=live_force)
    try:
        yield run
    finally:
        run.stop()
