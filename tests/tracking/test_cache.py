"""The tracking kernels' disk cache is dropped when any source of the package changes."""

from pathlib import Path

import magacq.tracking
from magacq.tracking._cache import STAMP, drop_stale_cache


def test_cache_follows_every_source(tmp_path):
    (tmp_path / "_track.py").write_text("x = 1\n")
    (tmp_path / "_zmatch.py").write_text("y = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "_track.kernel-1.py311.nbi").write_text("index")
    (cache / "_track.kernel-1.py311.1.nbc").write_text("code")
    (cache / "_track.cpython-311.pyc").write_text("bytecode")

    assert drop_stale_cache(tmp_path)  # never stamped: dropped
    assert sorted(p.name for p in cache.iterdir()) == ["_track.cpython-311.pyc", STAMP]
    (cache / "_track.kernel-1.py311.nbi").write_text("index")  # numba caches anew
    assert not drop_stale_cache(tmp_path)  # sources unchanged: kept
    assert (cache / "_track.kernel-1.py311.nbi").exists()
    (tmp_path / "_zmatch.py").write_text("y = 2\n")  # a file the cached kernel did not check
    assert drop_stale_cache(tmp_path)
    assert not (cache / "_track.kernel-1.py311.nbi").exists()


def test_the_package_is_stamped_on_import():
    package = Path(magacq.tracking.__file__).parent
    assert (package / "__pycache__" / STAMP).exists()
    assert not drop_stale_cache(package)
