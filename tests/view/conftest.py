"""Fixtures for the viewer tests: Qt offscreen, and a real `magacq run` on the sim camera."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from magacq.status import ACQUIRING, read_status
from tests.pipeline import _runner as r

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

#: Where the sim draws its beads (px). The run is given ROIs for the first two only: the third is
#: the one a test adds by shift+clicking.
BEADS_PX = [(80.3, 90.6), (170.2, 100.1), (250.7, 80.4)]
WIDTH, HEIGHT = 320, 192
PIXEL_NM = 100.0  # the sim's default pixel size
ROI = 64  # the run's ROI size (px)
REFERENCE = 1  # bead 1 is the run's reference bead


class LiveRun:
    """A `magacq run` of the real CLI in a child process; ``stop()`` ends it with Ctrl-C."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        settings = {
            "width": WIDTH,
            "height": HEIGHT,
            "frame_rate": 200,
            "n_beads": len(BEADS_PX),
            "bead_xy_px": [list(b) for b in BEADS_PX],
            "roi_size": 96,
            "seed": 1,
        }
        config = r.write_config(
            tmp,
            camera={"driver": "sim", "settings": settings},
            tracking={"workers": 1, "roi_size": ROI},
            beads={"rois": [[round(x), round(y)] for x, y in BEADS_PX[:2]], "reference": [1]},
            duration=None,
        )
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
