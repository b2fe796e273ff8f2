"""Fixtures for the viewer tests: Qt offscreen, and a live run in a child process."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

FAKE_RUN = Path(__file__).with_name("fake_run.py")


class LiveRun:
    """A run in a child process, in its own namespace; ``stop()`` ends it cleanly."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_RUN), namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the run did not start (said {line!r})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
def live_run() -> Iterator[LiveRun]:
    """A running (simulated) acquisition the viewer can attach to."""
    run = LiveRun(f"view{uuid.uuid4().hex[:8]}")
    try:
        yield run
    finally:
        run.stop()
