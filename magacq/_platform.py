"""What magacq asks of the operating system besides its buffers (``buffers._platform``) and
files (``runfile._fileio``), in one place.

==================  ========================================  ================================
probe               Linux                                     macOS, Windows
==================  ========================================  ================================
shared memory room  /dev/shm, a tmpfs of its own size         none: it is memory only
memory available    ``psutil``, or less under a cgroup limit  ``psutil``
                    (read from /proc and /sys, unless
                    ``MAGACQ_PORTABLE=1``)
open-file limit     ``resource`` (``ulimit -n``)              macOS the same; Windows none
process limit       ``psutil`` (``ulimit -u``; root is not    none checked
                    held to it)
lower priority      ``nice`` (``psutil``)                     macOS the same; Windows below
                                                              normal
raise priority      ``nice``, and the session's autogroup     macOS ``nice``; Windows above
                    (``/proc/self/autogroup``), where the     normal
                    OS allows it
free heap returned  glibc's ``malloc_trim``                   nothing (their allocators return
                                                              free pages themselves)
==================  ========================================  ================================
"""

import contextlib
import ctypes
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from buffers import choose_fast_path

LINUX = sys.platform.startswith("linux")
#: Where shared memory takes room of its own (Linux); None where it is memory only.
SHM_DIR = Path("/dev/shm") if LINUX else None
CGROUP_ROOT = Path("/sys/fs/cgroup")
_NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def memory_available() -> tuple[int, str]:
    """Bytes of memory this process may still use, and what sets it (for a message).

    The machine's available memory, or less when a cgroup (a container's memory limit, at any
    level of this process's cgroup hierarchy) allows less (Linux, unless forced portable).
    """
    free, limit = psutil.virtual_memory().available, "the machine"
    cgroups = choose_fast_path("memory limit", LINUX, "psutil and cgroups", "psutil")
    left = cgroup_memory_left() if cgroups else None
    if left is not None and left < free:
        free, limit = max(0, left), "the memory limit of this process's cgroup (container)"
    return free, limit


def cgroup_memory_left(root: Path = CGROUP_ROOT) -> int | None:
    """Bytes left under the tightest memory limit of this process's cgroups (limit less the
    usage that cannot be reclaimed), None when none limits it (or there are no cgroups)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # "0::/path" (v2), "4:memory:/path" (v1)
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            return _left(root / "memory", path, files)
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (root / "cgroup.controllers").exists():
            return _left(root, path, ("memory.max", "memory.current", "inactive_file"))
    return None


def _left(mount: Path, path: str, files: tuple[str, str, str]) -> int | None:
    """The smallest ``limit - (usage - inactive file cache)`` from the cgroup at ``path`` (or
    the mount's root, in a container that shows the host's path) up to the root."""
    limit_file, usage_file, inactive = files
    folder = mount / path.lstrip("/")
    if not folder.is_dir():
        folder = mount
    left: int | None = None
    for cgroup in (folder, *folder.parents):
        if not cgroup.is_relative_to(mount):
            break
        try:
            limit = (cgroup / limit_file).read_text().strip()
            if limit == "max" or int(limit) >= _NO_LIMIT:
                continue
            usage = int((cgroup / usage_file).read_text())
            stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
            used = usage - int(stat.get(inactive, 0))
        except (OSError, ValueError):
            continue
        left = int(limit) - used if left is None else min(left, int(limit) - used)
    return left


def open_file_limits() -> tuple[float, float] | None:
    """This process's open-file limits (``ulimit -n``: soft, hard; ``math.inf`` for none);
    None where the OS has none (Windows)."""
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _finite(soft, resource.RLIM_INFINITY), _finite(hard, resource.RLIM_INFINITY)


def raise_open_file_limit() -> None:
    """Raise this process's open-file limit to its hard limit (nothing where there is none)."""
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def is_root() -> bool:
    """Whether this process runs as root (POSIX uid 0); False on Windows, which has none."""
    if sys.platform == "win32":  # spelled out: mypy narrows on it (os.geteuid is POSIX only)
        return False
    return os.geteuid() == 0


def process_limit() -> int | None:
    """The soft limit on this user's threads (``ulimit -u``) this process is held to; None
    where there is none (root, no limit, or an OS where it is not checked: Linux only)."""
    if not sys.platform.startswith("linux") or is_root():
        return None
    soft = psutil.Process().rlimit(psutil.RLIMIT_NPROC)[0]
    return None if soft == psutil.RLIM_INFINITY else int(soft)


def user_threads() -> int:
    """Threads of all of this user's processes (0 on Windows, which limits none)."""
    if sys.platform == "win32":
        return 0
    uid = os.getuid()
    return sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["uids", "num_threads"])
               if p.info["uids"] is not None and p.info["uids"].real == uid)  # fmt: skip


def lower_priority(increment: int = 10) -> int | None:
    """Lower this process's priority (POSIX: ``increment`` more nice; Windows: below normal);
    its new nice value (Windows: priority class), None where it may not."""
    me = psutil.Process()
    try:
        if sys.platform == "win32":
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            me.nice(me.nice() + increment)
        return int(me.nice())
    except psutil.Error:
        return None


@contextlib.contextmanager
def raised_priority(nice: int) -> Iterator[int | None]:
    """Ask, for the block, for scheduling priority ``nice`` (lower is sooner) for this process
    and the children it starts; on Linux for its session's autogroup too, which the scheduler
    weighs against the other sessions before the nice of their processes (a session busy
    elsewhere otherwise takes half the CPUs); both given back on leaving. Only where the OS
    allows it (root, ``CAP_SYS_NICE``, a nice limit in limits.conf); Windows: above normal.
    Yields the nice value obtained (Windows: the priority class), None where refused."""
    me = psutil.Process()
    mine = me.nice()
    try:
        if sys.platform == "win32":
            me.nice(psutil.ABOVE_NORMAL_PRIORITY_CLASS)
        elif nice < mine:
            me.nice(nice)
        got: int | None = int(me.nice())
    except psutil.Error:
        got = None
    before = autogroup_nice() if got is not None else None
    if before is not None:
        try:
            _AUTOGROUP.write_text(str(got))
        except OSError:
            before = None
    try:
        yield got
    finally:  # (lowering a priority is always allowed)
        if before is not None:
            with contextlib.suppress(OSError):
                _AUTOGROUP.write_text(str(before))
        with contextlib.suppress(psutil.Error):
            me.nice(mine)


_AUTOGROUP = Path("/proc/self/autogroup")  # Linux: "/autogroup-28 nice 0"


def autogroup_nice() -> int | None:
    """The nice value of this process's session autogroup (Linux); None where it has none (other
    systems, or a process in a cgroup of its own, whose file reads empty)."""
    if not LINUX:
        return None
    try:
        return int(_AUTOGROUP.read_text().split()[-1])
    except (OSError, IndexError, ValueError):
        return None


def _finite(value: int, infinity: int) -> float:
    return float("inf") if value == infinity else value


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc; elsewhere nothing). A process
    that lives for hours, allocating arrays of varying sizes from several threads, keeps
    fragments of freed memory in its arenas otherwise, and its memory creeps up."""
    trim = _malloc_trim() if LINUX else None
    if trim is not None:
        trim(0)
