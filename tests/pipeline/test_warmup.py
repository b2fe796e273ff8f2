"""The trackers' kernels compiled once, ahead of the trackers: by a run's compile child, or by
`magacq compile`; a tracker started afterwards loads them from the disk cache."""

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
from multiprocessing import resource_tracker
from pathlib import Path

import numpy as np
import psutil

from magacq.config import TrackingConfig
from magacq.pipeline.processes.warmup import KernelCompile, warm_note

MAGACQ = Path(sys.executable).with_name("magacq")

# A tracker as a run starts one (com, uint8 frames), in a fresh interpreter: prints how many
# signatures of its two kernels (ROI cutting, tracking) numba loaded from the cache / compiled.
_TRACKER = """
import numpy as np
from magacq.pipeline.processes.tracker import warm_up
from magacq.tracking import Tracker
from magacq.tracking._cut import _cut
from magacq.tracking._track import XYMethod, _KERNELS
tracker = Tracker(np.array([[0, 0, 32, 0, 32]]), 100.0, {"algorithm": "com", "roi_size": 32})
warm_up(tracker, "uint8", 64, 64)
stats = [_cut.stats, _KERNELS[XYMethod.COM].stats]
print(sum(sum(s.cache_hits.values()) for s in stats),
      sum(sum(s.cache_misses.values()) for s in stats))
"""

# A run's compile child, started and told the pixel type as the supervisor does.
_RUN_CHILD = """
import multiprocessing as mp
from magacq.config import TrackingConfig
from magacq.pipeline.processes.warmup import KernelCompile
kernels = KernelCompile(mp.get_context("fork"), TrackingConfig(algorithm="com", roi_size=32))
kernels.compile("uint8")
assert kernels.wait(600)
kernels.close()
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, MAGACQ_CACHE_DIR=str(tmp_path / "cache"))


def _tracker_cache_use(tmp_path: Path) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", _TRACKER], env=_env(tmp_path), check=True,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    hits, misses = done.stdout.split()
    return int(hits), int(misses)


def test_a_runs_compile_child_fills_the_cache_the_trackers_load(tmp_path):
    assert _tracker_cache_use(tmp_path / "empty") == (0, 2)  # nothing cached: both compiled
    subprocess.run([sys.executable, "-c", _RUN_CHILD], env=_env(tmp_path), check=True,
                   timeout=600)  # fmt: skip
    assert _tracker_cache_use(tmp_path) == (2, 0)


def _children() -> list[psutil.Process]:
    """This process's children but multiprocessing's resource tracker (spawn keeps one)."""
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    return [c for c in psutil.Process().children() if c.pid != tracker]


def test_spawned_runs_start_a_compile_child_only_until_their_kernels_are_cached(
    tmp_path, monkeypatch
):
    """Spawned, a compile child is an interpreter importing numba again (about 1.3 s of CPU at
    each start): once one made the kernels of these settings and pixel type, the next run
    starts none; nor when the cache entry it named is gone (a new child is started)."""
    monkeypatch.setenv("MAGACQ_CACHE_DIR", str(tmp_path / "cache"))
    tracking = TrackingConfig(algorithm="com", roi_size=32)
    started = []
    for _ in range(2):
        kernels = KernelCompile(mp.get_context("spawn"), tracking)
        try:
            assert not _children()  # spawn: nothing before the pixel type is known
            kernels.compile("uint8")
            started.append(len(_children()))
            assert kernels.wait(600)
        finally:
            kernels.close()
    assert started == [1, 0]
    assert _tracker_cache_use(tmp_path) == (2, 0)  # the kernels are there
    entry = Path(warm_note(tracking, "uint8").read_text())
    shutil.rmtree(entry)
    kernels = KernelCompile(mp.get_context("spawn"), tracking)
    try:
        kernels.compile("uint8")
        assert len(_children()) == 1
    finally:
        kernels.close()


def test_magacq_compile_fills_the_cache(tmp_path):
    done = subprocess.run(
        [str(MAGACQ), "compile", "--algorithm", "com", "--dtype", "uint8"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "cache") in done.stdout
    assert _tracker_cache_use(tmp_path) == (2, 0)


def test_bad_algorithm_or_pixel_type_is_bad_input(tmp_path):
    for args in (["--algorithm", "nope"], ["--dtype", "text"]):
        done = subprocess.run([str(MAGACQ), "compile", *args], env=_env(tmp_path),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: --") and len(done.stderr.splitlines()) == 1


def test_closing_ends_the_child_at_any_point():
    """Before it is told the pixel type, and while it compiles: gone, no process left."""
    ctx = mp.get_context("fork")
    idle = KernelCompile(ctx, TrackingConfig(algorithm="com", roi_size=32))
    idle.close()  # told to end; killed if still importing 50 ms later
    assert idle._proc is not None and idle._proc.exitcode is not None
    busy = KernelCompile(ctx, TrackingConfig(algorithm="fit", roi_size=32))
    busy.compile(str(np.dtype(np.int16)))  # a type nobody compiled: seconds of work
    busy.close()
    assert busy._proc is not None and busy._proc.exitcode is not None
