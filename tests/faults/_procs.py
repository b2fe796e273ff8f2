"""Processes of a run under test: find them by title, wait for them to be gone."""

import subprocess
import time

import psutil


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
