"""Keep numba's disk cache of this package in step with all of its sources.

numba checks a cached function against its own file only: after an edit of ``_zmatch.py``, the
cached kernel of ``_track.py``, which compiled ``match_plane`` into itself, would still load and
run the old code. :func:`drop_stale_cache` removes the package's cache files whenever any of its
sources changed since the cache was stamped (one hash of a few files at import, ~1 ms).
"""

import hashlib
from pathlib import Path

STAMP = "numba-sources.sha256"


def drop_stale_cache(package_dir: Path) -> bool:
    """Delete ``package_dir/__pycache__/*.nbi|*.nbc`` unless stamped with the sources' hash.

    Returns True when the cache was dropped. A read-only install is left as it is (numba then
    caches in its user-wide directory).
    """
    sources = sorted(package_dir.glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    cache = package_dir / "__pycache__"
    stamp = cache / STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        for path in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return True
