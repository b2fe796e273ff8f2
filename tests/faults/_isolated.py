"""Run commands with a small tmpfs mounted in a private mount namespace (needs root)."""

import contextlib
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from magacq._platform import is_root
from tests.pipeline import _runner as r


def require_mount_namespace() -> None:
    """Skip the test, saying why, where a private tmpfs cannot be mounted."""
    if not is_root():
        pytest.skip("mounting a tmpfs in a private mount namespace needs root")
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to make a private mount namespace")


def on_tmpfs(
    mountpoint: Path, size: str, script: str, *, cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Shell ``script`` with a ``size`` tmpfs over ``mountpoint`` that only it sees (what it
    leaves there goes with the namespace)."""
    require_mount_namespace()
    mount = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(mountpoint))} || exit 99; "
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount + script],
        cwd=cwd,
        env=r.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode != 99, f"mounting the tmpfs failed: {done.stderr}"
    return done


def cli_on_tmpfs(
    mountpoint: Path, size: str, *args: str, cwd: Path, after: str = "", timeout: float = 180
) -> subprocess.CompletedProcess:
    """``magacq ARGS`` with a ``size`` tmpfs over ``mountpoint`` that only it sees.

    ``after`` is a shell command run in the namespace once magacq ended (e.g. copying its
    output out of the tmpfs); magacq's exit code is returned.
    """
    magacq = shlex.join([*r.MAGACQ, *args])
    script = f"{magacq}; rc=$?; {after or 'true'}; exit $rc"
    return on_tmpfs(mountpoint, size, script, cwd=cwd, timeout=timeout)


@contextlib.contextmanager
def mounted(mountpoint: Path, fs: str, size_mib: int) -> Iterator[Path]:
    """A ``size_mib`` MiB ``fs`` ("tmpfs", or "ext4" on a loop device: a disk with direct I/O)
    mounted over ``mountpoint`` for the block (skips where this may not mount)."""
    if not is_root():
        pytest.skip("mounting a small disk needs root")
    mountpoint.mkdir(exist_ok=True)
    if fs == "tmpfs":
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mountpoint)]
    else:
        image = mountpoint.with_name(mountpoint.name + ".img")
        with open(image, "wb") as f:
            f.truncate(size_mib * 2**20)
        subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
        cmd = ["mount", "-o", "loop", str(image), str(mountpoint)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a {fs} here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        # lazy: a test that failed with a file open there must not leave the mount behind
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)
