"""VideoFile's chunk writes on real file systems (real HDF5 files, small disks mounted for the
test): direct I/O on a disk that has it (ext4), HDF5's buffered chunk writes for chunks and
memory that direct I/O cannot take; the same frames read back every way, on tmpfs too (which
has direct I/O from Linux 6.6 on, and not before); a disk that fills mid-stack leaves a readable
file holding exactly the stacks written."""

import errno
import mmap

import h5py
import numpy as np
import pytest

from magacq.runfile import VideoFile
from tests.faults._isolated import mounted

N_IMAGES, SHAPE = 10, (256, 256)  # a stack: 1.25 MiB, 4 KiB aligned


def _ring(n_stacks: int) -> np.ndarray:
    """Stacks of distinct frames in page-aligned memory, as the shared-memory ring holds them."""
    ring = np.frombuffer(mmap.mmap(-1, n_stacks * N_IMAGES * SHAPE[0] * SHAPE[1] * 2), np.uint16)
    ring = ring.reshape(n_stacks, N_IMAGES, *SHAPE)
    ring[:] = np.random.default_rng(1).integers(1, 4096, ring.shape, dtype=np.uint16)
    return ring


def _video(path, **kw) -> VideoFile:
    return VideoFile(path, mode="frames", frame_shape=SHAPE, dtype="uint16", n_images=N_IMAGES,
                     **kw)  # fmt: skip


def _append(vf: VideoFile, i: int, stack: np.ndarray) -> None:
    seqs = np.arange(i * N_IMAGES, (i + 1) * N_IMAGES)
    vf.append(stack, seqs, seqs * 1e-3)


def _read(path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return f["video"][:], f["video_seq"]["seq"][:]


@pytest.fixture(autouse=True)
def linux_paths(monkeypatch):
    """These tests are about Linux's direct I/O; the portable pass (``MAGACQ_PORTABLE=1``)
    turns it off on purpose, and tests/pipeline/test_fileio.py tests the portable paths."""
    monkeypatch.delenv("MAGACQ_PORTABLE", raising=False)


@pytest.fixture
def ext4(tmp_path):
    with mounted(tmp_path / "ext4", "ext4", 64) as mnt:
        yield mnt


@pytest.fixture
def tmpfs(tmp_path):
    with mounted(tmp_path / "tmpfs", "tmpfs", 64) as mnt:
        yield mnt


def test_direct_io_on_a_disk_that_has_it(ext4):
    """Stacks from page-aligned memory go with direct I/O into 4 KiB-aligned chunks; a stack
    from memory direct I/O cannot take (a copy at an odd address) goes through HDF5, and the
    next again directly; the file holds every frame as written."""
    ring = _ring(4)
    odd = np.frombuffer(bytearray(ring[2].nbytes + 2), np.uint16, offset=2).reshape(ring[2].shape)
    odd[:] = ring[2]
    vf = _video(ext4 / "v.h5")
    assert vf.direct_io
    for i, stack in enumerate([ring[0], ring[1], odd, ring[3]]):
        _append(vf, i, stack)
    assert vf.direct_io  # the odd one did not turn it off
    vf.close()
    frames, seq = _read(ext4 / "v.h5")
    np.testing.assert_array_equal(frames, ring.reshape(-1, *SHAPE))
    np.testing.assert_array_equal(seq, np.arange(4 * N_IMAGES))
    with h5py.File(ext4 / "v.h5", "r") as f:
        offsets = [f["video"].id.get_chunk_info(k).byte_offset for k in range(4)]
    assert all(at % 4096 == 0 for at in offsets), offsets


def test_buffered_where_direct_io_is_not_possible(tmpfs, ext4):
    """Frames of 100 x 100 uint16 make chunks that are not 4 KiB multiples: written through
    HDF5, the frames exact; and exact on tmpfs, whichever way its kernel allows."""
    ring = _ring(3)
    vf = _video(tmpfs / "v.h5")
    for i, stack in enumerate(ring):
        _append(vf, i, stack)
    vf.close()
    np.testing.assert_array_equal(_read(tmpfs / "v.h5")[0], ring.reshape(-1, *SHAPE))
    small = ring[:, :, :100, :100].copy()
    vf = VideoFile(ext4 / "s.h5", mode="frames", frame_shape=(100, 100), dtype="uint16",
                   n_images=N_IMAGES)  # fmt: skip
    assert not vf.direct_io
    for i, stack in enumerate(small):
        _append(vf, i, stack)
    vf.close()
    np.testing.assert_array_equal(_read(ext4 / "s.h5")[0], small.reshape(-1, 100, 100))


def test_every_nth_frame_in_frame_chunks_directly(ext4):
    """every > 1 keeps single frames (a chunk each, 128 KiB): direct I/O per frame."""
    ring = _ring(2)
    vf = _video(ext4 / "v.h5", every=2)
    assert vf.direct_io
    kept = ring.reshape(-1, *SHAPE)[::2]
    for i in range(2):
        seqs = np.arange(i * N_IMAGES, (i + 1) * N_IMAGES, 2)
        vf.append(ring[i, ::2], seqs, seqs * 1e-3)
    vf.close()
    np.testing.assert_array_equal(_read(ext4 / "v.h5")[0], kept)


def test_a_disk_full_mid_stack_leaves_the_stacks_written(tmp_path):
    """Stacks written with direct I/O (flushed after each) onto 16 MiB until the disk refuses
    one (ENOSPC): the file still opens, and holds exactly the stacks that went in, intact:
    not the one that failed (its chunk was allocated first, so it must not be listed)."""
    ring = _ring(4)
    with mounted(tmp_path / "disk", "ext4", 16) as disk:
        vf = _video(disk / "v.h5")
        assert vf.direct_io
        written = 0
        with pytest.raises(OSError) as failed:
            while True:
                _append(vf, written, ring[written % 4])
                vf.maybe_flush(force=True)
                written += 1
        assert failed.value.errno == errno.ENOSPC
        assert vf.n_frames == written * N_IMAGES
        try:
            vf.close()
        except OSError:  # the last flush may not fit either: the file is as last flushed
            pass
        frames, seq = _read(disk / "v.h5")
    assert written > 5
    assert len(frames) == len(seq) == written * N_IMAGES
    np.testing.assert_array_equal(frames, ring[np.arange(written) % 4].reshape(-1, *SHAPE))
