"""Processes: who owns a segment and whether it still lives; yielding; fork hooks.

A process is named by its pid and a token of its start time (:func:`process_token`), so a pid
reused by a later process is not taken for the owner. The token comes from ``psutil`` on every
platform: on Linux the clock ticks from boot to the process's start (the number in
``/proc/<pid>/stat``, as magacq's segment headers have always held; psutil adds the boot time,
which moves with the wall clock, and the difference does not), elsewhere the microseconds since
the epoch of its creation (a value the kernel keeps).
"""

import os
import sys
import time
from collections.abc import Callable

import psutil


def process_token(pid: int) -> int:
    """Start time of process ``pid`` (see above), or -1 when it does not exist or has ended (a
    zombie not yet reaped by its parent)."""
    if pid <= 0:
        return -1
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return -1
            start = proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return -1
    if sys.platform.startswith("linux"):
        return round((start - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))
    return round(start * 1e6)


def owner_alive(pid: int, token: int) -> bool:
    """Whether process ``pid`` started at ``token`` (:func:`process_token`) still runs."""
    return pid > 0 and process_token(pid) == token


def yield_cpu() -> None:
    """Give the CPU to another ready thread or process (``sched_yield`` where there is one)."""
    sched_yield = getattr(os, "sched_yield", None)
    if sched_yield is not None:
        sched_yield()
    else:
        time.sleep(0)


def after_fork_in_child(func: Callable[[], None]) -> None:
    """Run ``func`` in a child made by ``fork`` (nothing where processes are never forked)."""
    register = getattr(os, "register_at_fork", None)
    if register is not None:
        register(after_in_child=func)


def before_fork(func: Callable[[], None]) -> None:
    """Run ``func`` before this process forks (nothing where processes are never forked)."""
    register = getattr(os, "register_at_fork", None)
    if register is not None:
        register(before=func)
