"""Processes of a run under test: find them by title, wait for them to be gone."""

import os
import subprocess
import sys
import time

import psutil

from tests.pipeline import _runner as r


def run_processes(proc: subprocess.Popen) -> list[psutil.Process]:
    """The run's children (producer, trackers, writer), as they are now."""
    return psutil.Process(proc.pid).children(recursive=True)


def wait_gone(procs: list[psutil.Process], timeout: float = 60) -> list[psutil.Process]:
    """Wait until none of ``procs`` runs (exited or a zombie); return those still running."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def make_stale_segment(namespace: str) -> str:
    """A segment whose creator was SIGKILLed a minute ago (as a crashed run leaves it); return
    its name."""
    code = (
        "import os, signal\n"
        "from buffers import MatrixBuffer\n"
        f"b = MatrixBuffer(create=True, name='crashed', shape=(1000, 4), namespace={namespace!r})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=r.env(), capture_output=True)
    assert done.returncode == -9, done.stderr
    name = f"magacq.{namespace}.crashed"
    old = time.time() - 60  # left a minute ago: old enough for a sweep of every namespace
    os.utime(f"/dev/shm/{name}", (old, old))
    return name
