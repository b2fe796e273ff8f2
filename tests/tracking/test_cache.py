"""The tracking kernels are cached per user, under a key of the build and the CPU."""

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import magacq.tracking
from magacq.tracking import _cache

PACKAGE = Path(magacq.tracking.__file__).parent

# Tracks with the com kernel (the quickest to compile) in a fresh interpreter; prints where the
# kernels are cached and how many signatures of that kernel numba loaded from it / compiled.
_TRACK = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import tracking
track_rois = tracking.track_rois  # the kernels' modules load (in their cache) on first use
from tracking._track import XYMethod, _KERNELS
rois = np.zeros((2, 32, 32), np.uint16)
rois[:, 12:20, 12:20] = 100
track_rois(rois, method="com")
stats = _KERNELS[XYMethod.COM].stats
print(tracking.KERNEL_CACHE, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_the_key_follows_every_source(tmp_path):
    (tmp_path / "_track.py").write_text("x = 1\n")
    (tmp_path / "_zmatch.py").write_text("y = 1\n")
    key = _cache.cache_key(tmp_path)
    assert _cache.cache_key(tmp_path) == key  # sources unchanged: the same entry
    (tmp_path / "_zmatch.py").write_text("y = 2\n")  # a file the cached kernel did not check
    assert _cache.cache_key(tmp_path) != key
    assert magacq.__version__ in _cache.cache_key(PACKAGE)


def test_the_root_is_per_user_and_can_be_chosen(monkeypatch, tmp_path):
    monkeypatch.delenv(_cache.ENV, raising=False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_root() == tmp_path / "xdg" / "magacq"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert _cache.cache_root() == tmp_path / "numba" / "magacq"
    monkeypatch.setenv(_cache.ENV, str(tmp_path / "mine"))
    assert _cache.cache_root() == tmp_path / "mine"


def test_prune_removes_old_and_surplus_entries(tmp_path):
    now = time.time()
    entries = []
    for i in range(_cache.KEEP + 2):  # entry 0 the most recently used
        entry = tmp_path / f"entry{i}"
        (entry / "sub").mkdir(parents=True)
        os.utime(entry, (now - i, now - i))
        entries.append(entry)
    old = tmp_path / "old"
    old.mkdir()
    os.utime(old, (now - 86400 * (_cache.MAX_AGE_DAYS + 1),) * 2)
    current = entries[-1]  # in use, though the oldest but one
    removed = _cache.prune(tmp_path, current)
    assert sorted(removed) == sorted([old, *entries[_cache.KEEP - 1 : -1]])
    assert sorted(tmp_path.iterdir()) == sorted([*entries[: _cache.KEEP - 1], current])


def test_a_read_only_install_caches_in_the_users_entry(tmp_path):
    """A copy of the package that nobody may write to: its kernels are cached in the entry,
    none next to its sources, and the next interpreter loads them."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "tracking", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    env = dict(os.environ, **{_cache.ENV: str(tmp_path / "cache")})
    try:
        runs = [
            subprocess.run([sys.executable, "-c", _TRACK, str(site)], env=env,
                           capture_output=True, text=True, check=True, timeout=600)
            for _ in range(2)
        ]  # fmt: skip
        written = sorted(p.name for p in site.rglob("*.nb[ic]"))
    finally:
        for path in [site, *site.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    (entry, hits, misses), (entry2, hits2, misses2) = (r.stdout.split() for r in runs)
    assert Path(entry).parent == tmp_path / "cache" and entry2 == entry
    assert (int(hits), int(misses)) == (0, 1)  # compiled, then cached
    assert (int(hits2), int(misses2)) == (1, 0)  # loaded
    assert list(Path(entry).rglob("_track.track_com-*.nbi"))
    assert written == []
