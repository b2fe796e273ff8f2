"""`validate` and `run` size a run's buffers honestly: for as many beads as it may track, against
the memory this process may use (a container's cgroup limit included), with a margin left free."""

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from buffers import PORTABLE_ENV
from buffers._platform import _choice
from buffers._platform._choice import portable_forced
from magacq._platform import memory_available
from magacq.errors import ConfigError
from magacq.pipeline.sizing import BufferSizes, check_room
from tests.faults.test_config_faults import _refused
from tests.pipeline import _runner as r

SMALL = {"camera": {"driver": "sim", "settings": {"width": 128, "height": 128}},
         "buffers": {"n_stacks": 8, "images_per_stack": 5}, "tracking": {"workers": 1}}  # fmt: skip


def _write(tmp: Path, data: dict) -> Path:
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_sizes_the_tables_for_the_most_beads_detection_keeps(tmp_path):
    few = _write(tmp_path, {**SMALL, "beads": {"detect": {"max_beads": 2}}})
    done = r.cli("validate", str(few), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    many = _write(tmp_path, {**SMALL, "beads": {"detect": {"max_beads": 10_000}}})
    _refused(r.cli("validate", str(many), cwd=tmp_path), "buffers need", "truth")


@contextlib.contextmanager
def _memory_cgroup(limit: int) -> Iterator[Path]:
    """A new child of this process's memory cgroup (v1) limited to ``limit`` bytes; yields its
    ``cgroup.procs`` (skips where no cgroup can be made here)."""
    if portable_forced():
        pytest.skip("cgroups are Linux's: MAGACQ_PORTABLE=1 reads memory through psutil only, as "
                    "on macOS and Windows, which have no container memory limit")  # fmt: skip
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    paths = [line.split(":", 2)[2] for line in lines if "memory" in line.split(":")[1].split(",")]
    mount = Path("/sys/fs/cgroup/memory")
    if not paths or not mount.is_dir():
        pytest.skip("no cgroup v1 memory controller here")
    parent = mount / paths[0].lstrip("/")
    child = (parent if parent.is_dir() else mount) / f"magacq-test-{os.getpid()}"
    try:
        child.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup here: {exc.strerror}")
    try:
        (child / "memory.limit_in_bytes").write_text(str(limit))
        yield child / "cgroup.procs"
    finally:
        child.rmdir()


def _validate_in(procs: Path, config: Path) -> subprocess.CompletedProcess:
    def enter() -> None:
        procs.write_text(str(os.getpid()))

    command = [*r.MAGACQ, "validate", str(config)]
    return subprocess.run(command, cwd=config.parent, env=r.env(), capture_output=True,
                          text=True, timeout=120, preexec_fn=enter)  # fmt: skip


def test_a_containers_memory_limit_is_the_memory_a_run_may_use(tmp_path):
    """Under a 3 GB cgroup limit, on a machine with more: about 0.5 GB of frames fit beside the
    run's processes (1 GB) and the margin (0.5 GB); 1.6 GB do not."""
    side = 4096  # 32 MiB frames (uint16)
    fits = _write(tmp_path, {**SMALL, "camera": {"driver": "sim",
                  "settings": {"width": side, "height": side}},
                  "buffers": {"n_stacks": 4, "images_per_stack": 4}})  # fmt: skip
    with _memory_cgroup(3 * 2**30) as procs:
        done = _validate_in(procs, fits)
        assert done.returncode == 0, done.stderr
        big = _write(tmp_path, {**yaml.safe_load(fits.read_text()),
                     "buffers": {"n_stacks": 12, "images_per_stack": 4}})  # fmt: skip
        _refused(_validate_in(procs, big), "buffers need", "cgroup", "kept free")


def test_where_shared_memory_is_memory_only_it_is_counted_as_memory(monkeypatch, caplog):
    """macOS and Windows have no /dev/shm (``shm_dir=None``): buffers are refused by memory
    alone, and the advice names memory; the portable pass reads no cgroup (logged)."""
    monkeypatch.setenv(PORTABLE_ENV, "1")
    monkeypatch.setattr(_choice, "_logged", {})  # each choice is logged once per process
    caplog.set_level(logging.DEBUG, logger="buffers")
    assert memory_available()[1] == "the machine"
    assert "memory limit: psutil" in caplog.text
    small = BufferSizes({}, {"VideoBuffer": 2**20})
    check_room(small, n_processes=1, shm_dir=None)
    huge = BufferSizes({}, {"VideoBuffer": 4 * psutil.virtual_memory().total})
    with pytest.raises(ConfigError, match="of memory available") as refused:
        check_room(huge, n_processes=1, shm_dir=None)
    assert "/dev/shm" not in str(refused.value) and str(refused.value).endswith("free memory")
