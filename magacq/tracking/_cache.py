"""Where numba caches this package's kernels: a per-user directory, one entry per build and CPU.

numba checks a cached function against its own file only: after an edit of ``_zmatch.py``, the
cached kernel of ``_track.py``, which compiled ``match_plane`` into itself, would still load and
run the old code. So the kernels are cached under a key of the package's version, a hash of all
its sources, numba's version and the CPU. An edit, an upgrade or another CPU (a home directory
shared by several machines) gets an entry of its own; a reinstall of the same sources finds its
kernels again; a read-only install (site-packages) caches like an editable one. The directory is
``$MAGACQ_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/magacq``, else the user's cache directory
(``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux) ``/magacq``. Entries unused for
``MAX_AGE_DAYS``, or beyond the ``KEEP`` most recently used, are removed.
"""

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV = "MAGACQ_CACHE_DIR"
KEEP = 32
MAX_AGE_DAYS = 14


def cache_root() -> Path:
    """The per-user directory that holds the entries (see the module's docstring)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / "magacq"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "magacq"


def sources_digest(package_dir: Path) -> str:
    """A hash of the package's sources: what an edit of any of them changes."""
    sources = sorted(package_dir.glob("*.py"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]


def cache_key(package_dir: Path) -> str:
    """``VERSION-SOURCES-numbaVERSION-CPU``: what the cached machine code depends on."""
    import numba
    from llvmlite import binding as llvm

    digest = sources_digest(package_dir)
    try:
        version = importlib.metadata.version("magacq")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        version = "src"
    cpu = llvm.get_host_cpu_name()
    features = hashlib.sha256(llvm.get_host_cpu_features().flatten().encode()).hexdigest()[:8]
    return f"{version}-{digest}-numba{numba.__version__}-{cpu}-{features}"


def prune(root: Path, current: Path) -> list[Path]:
    """Remove the entries of ``root`` but ``current`` that are stale (see the module); return
    them."""
    try:
        entries = [p for p in root.iterdir() if p.is_dir() and p != current]
    except OSError:
        return []
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    cutoff = time.time() - MAX_AGE_DAYS * 86400
    stale = [p for i, p in enumerate(entries) if i >= KEEP - 1 or p.stat().st_mtime < cutoff]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


@contextlib.contextmanager
def kernel_cache(package_dir: Path) -> Iterator[Path | None]:
    """numba caches the functions decorated in this block in the entry of ``package_dir``.

    Yields the entry, or None where it cannot be made (numba then caches as it would anyway:
    next to the sources, or in its own per-user directory).
    """
    entry = cache_root() / cache_key(package_dir)
    try:
        entry.mkdir(parents=True, exist_ok=True)
        os.utime(entry)  # used now: the newest entry
    except OSError:
        yield None
        return
    prune(entry.parent, entry)
    import numba

    config: Any = numba.config  # its settings are made at import, from the environment
    before = config.CACHE_DIR
    config.CACHE_DIR = str(entry)  # read when a function is decorated
    try:
        yield entry
    finally:
        config.CACHE_DIR = before
