"""Run and video files where the platform lacks Linux's file calls (macOS, Windows): with
``os.posix_fallocate``, ``os.posix_fadvise`` and ``O_DIRECT`` gone, the portable ways are taken
(and logged), on a real disk, and the files hold what was written."""

import logging
import os

import h5py
import numpy as np
import pytest

from buffers._platform import _choice
from magacq.runfile import ROIS_DTYPE, RunFile, VideoFile
from magacq.runfile import _video as video_module
from magacq.runfile._run import DISK_RESERVE
from tests.faults._isolated import mounted
from tests.pipeline.test_video_file import N_IMAGES, SHAPE, _append, _read, _ring


@pytest.fixture
def ext4(tmp_path):
    with mounted(tmp_path / "ext4", "ext4", 64) as mnt:
        yield mnt


@pytest.fixture
def no_linux_file_calls(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="buffers")
    monkeypatch.setattr(_choice, "_logged", {})  # each choice is logged once per process
    for name in ("posix_fallocate", "posix_fadvise", "O_DIRECT"):
        monkeypatch.delattr(os, name, raising=False)
    return caplog


def test_run_file_reserve_without_posix_fallocate(ext4, no_linux_file_calls):
    """The writer's disk reserve is written as zeros: its blocks are taken at once."""
    path = ext4 / "run.h5"
    rf = RunFile(path, {}, np.zeros(0, ROIS_DTYPE), with_truth=False)
    reserve = ext4 / f".{path.name}.reserve"
    st = reserve.stat()
    assert st.st_size == DISK_RESERVE and st.st_blocks * 512 >= DISK_RESERVE
    rf.append("frames", np.zeros(3, rf.tables["frames"].dtype))
    rf.close({"state": "complete"})
    assert not reserve.exists()
    with h5py.File(path, "r") as f:
        assert f.attrs["state"] == "complete" and len(f["frames"]) == 3
    assert "disk reserve: zeros" in no_linux_file_calls.text


def test_video_file_without_direct_io_or_fadvise(ext4, no_linux_file_calls, monkeypatch):
    """A disk that has direct I/O, a platform that has not: chunks through HDF5, the page
    cache left to the OS at every flush, the frames exact."""
    monkeypatch.setattr(video_module, "KEEP_CACHED", 0)  # every flush would drop the cache
    ring = _ring(3)
    vf = VideoFile(ext4 / "v.h5", mode="frames", frame_shape=SHAPE, dtype="uint16",
                   n_images=N_IMAGES)  # fmt: skip
    assert not vf.direct_io
    for i, stack in enumerate(ring):
        _append(vf, i, stack)
        assert vf.maybe_flush(force=True)
    vf.close()
    frames, seq = _read(ext4 / "v.h5")
    np.testing.assert_array_equal(frames, ring.reshape(-1, *SHAPE))
    np.testing.assert_array_equal(seq, np.arange(3 * N_IMAGES))
    text = no_linux_file_calls.text
    assert "direct I/O: through HDF5" in text and "page cache: left to the OS" in text
