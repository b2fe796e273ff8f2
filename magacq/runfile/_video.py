"""The video file a run's recorder writes beside the run file (HDF5, schema ``magacq.video`` v1).

``<run file stem>.video.h5`` holds one dataset, linked from the run file by an HDF5 external link
of the same name (so ``h5py.File(run)["video"]`` reads it, the two files side by side):

- ``video`` (mode ``frames``): ``(n, height, width)`` frames in the camera's dtype, as acquired;
  uncompressed: one chunk per stack (every frame kept) or per frame, written straight from the
  shared-memory stack (see below); ``lz4``: one chunk per frame through the Blosc filter (LZ4,
  bit shuffle; readable with ``import hdf5plugin``);
- ``roi_video`` (mode ``rois``): ``(n, n_beads, side, side)``, each bead's ROI of each kept frame
  (the beads of the run file's ``rois`` at the start, in that order);
- ``video_seq``: seq (the frame's sequence number in the video buffer), timestamp; one row per
  kept frame, in the order of the dataset.

The run file's ``video_frames`` (frame, timestamp) gives the camera frame of each, and
``video_skipped`` those the recorder had to leave out; once the run's processes ended, the
supervisor makes that listing match ``video_seq`` (:func:`magacq.runfile.reconcile_video`). The
file is in SWMR mode and flushed every ``FLUSH_S``: after a crash it holds every frame up to the
last flush (read it with ``swmr=True``).

Uncompressed chunks whose size and address suit it go to disk with direct I/O (``O_DIRECT``),
past the page cache: HDF5 allocates each chunk as the dataset grows (early allocation, no fill,
4 KiB aligned) and the recorder writes the chunk's bytes at the offset HDF5 gives. On this
project's test machine that writes 1 GiB at 2.0-2.8 GB/s, where buffered writes swing between
0.15 and 2.5 GB/s with the state of the page cache's write-back, and it leaves the memory to the
run. Where direct I/O is refused (tmpfs before Linux 6.6, some network file systems, macOS and
Windows: :mod:`magacq.runfile._fileio`), chunks go through HDF5's buffered direct chunk writes,
their page cache dropped as it is written back where the OS lets us.
The file is plain HDF5 either way.
"""

import errno
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from magacq.runfile._fileio import drop_cached, open_direct
from magacq.runfile._run import FLUSH_S

#: Bytes at the end of the video file left in the page cache (the rest is dropped as written).
KEEP_CACHED = 256 * 2**20
#: Direct I/O needs sizes, file offsets and memory aligned to the device's block; 4 KiB suits
#: every device (512-byte and 4 KiB sectors alike).
DIRECT_ALIGN = 4096

VIDEO_SCHEMA = "magacq.video"
VIDEO_SCHEMA_VERSION = 1
VIDEO_SEQ_DTYPE = np.dtype([("seq", "i8"), ("timestamp", "f8")])


def video_path(run_path: Path) -> Path:
    """The video file of the run file ``run_path``."""
    return run_path.with_name(run_path.stem + ".video.h5")


def dataset_name(mode: Literal["frames", "rois"]) -> str:
    """The video dataset of a recording mode (and of its external link in the run file)."""
    return "video" if mode == "frames" else "roi_video"


def _filter(compression: str) -> dict[str, Any]:
    if compression == "none":
        return {}
    import hdf5plugin

    return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE))


class VideoFile:
    """The recorder's side: frames appended as they come.

    Parameters
    ----------
    path : Path
        File to create.
    mode : "frames" or "rois"
    frame_shape : (height, width)
    dtype : str
        The camera's pixel dtype.
    n_images : int
        Frames per stack of the video buffer.
    every : int
        Every how many frames one is kept (chunks of a stack only when 1).
    compression : "none" or "lz4"
    rois : ndarray (n_beads, 5), optional
        Bead id, x0, x1, y0, y1 (mode ``rois``).
    """

    def __init__(
        self,
        path: Path,
        *,
        mode: Literal["frames", "rois"],
        frame_shape: tuple[int, int],
        dtype: str,
        n_images: int,
        every: int = 1,
        compression: str = "none",
        rois: np.ndarray | None = None,
    ) -> None:
        self.path, self.mode = path, mode
        self.rois = None if rois is None else np.asarray(rois, dtype=np.int64).reshape(-1, 5)
        h, w = frame_shape
        shape: tuple[int, ...]
        chunk: tuple[int, ...]
        if mode == "frames":
            shape = (h, w)
            per_stack = every == 1 and compression == "none"
            chunk = (n_images if per_stack else 1, h, w)
        else:
            assert self.rois is not None and len(self.rois)
            side = int(self.rois[0, 2] - self.rois[0, 1])
            shape = (len(self.rois), side, side)
            chunk = (1, *shape)
        self.direct = compression == "none" and mode == "frames"
        self._chunk_frames = chunk[0]
        chunk_bytes = int(np.prod(chunk)) * np.dtype(dtype).itemsize
        aligned = self.direct and chunk_bytes % DIRECT_ALIGN == 0
        self._f = h5py.File(
            path, "w", libver="latest", alignment_interval=DIRECT_ALIGN if aligned else 1,
            alignment_threshold=chunk_bytes if aligned else 1,
        )  # fmt: skip
        self._f.attrs.update(
            {"schema": VIDEO_SCHEMA, "schema_version": VIDEO_SCHEMA_VERSION, "mode": mode,
             "every": every, "compression": compression}
        )  # fmt: skip
        #: the descriptor for direct I/O, or None (chunks through HDF5)
        self._direct_fd = open_direct(path) if aligned else None
        self.data = self._f.create_dataset(
            dataset_name(mode), shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
            chunks=chunk, **_filter(compression),
            **({"dcpl": _allocated_unfilled()} if self._direct_fd is not None else {}),
        )  # fmt: skip
        self.seq = self._f.create_dataset(
            "video_seq", shape=(0,), maxshape=(None,), dtype=VIDEO_SEQ_DTYPE, chunks=(4096,)
        )
        self._f.swmr_mode = True
        self._last_flush = time.monotonic()
        self._cache_fd = os.open(path, os.O_RDONLY)  # to drop what is on disk from the page cache
        self._n = 0
        self._seq_rows: list[np.ndarray] = []  # appended to video_seq at each flush

    @property
    def n_frames(self) -> int:
        return self._n

    @property
    def direct_io(self) -> bool:
        """Whether the chunks go to disk with direct I/O (else through HDF5, buffered)."""
        return self._direct_fd is not None

    def append(self, frames: np.ndarray, seqs: np.ndarray, timestamps: np.ndarray) -> None:
        """Frames ``(k, height, width)`` of one stack (a zero-copy view is fine) and their
        sequence numbers and timestamps. A whole stack in per-stack chunks is one direct write."""
        k = len(frames)
        if k == 0:
            return
        n = self._n
        self.data.resize((n + k, *self.data.shape[1:]))
        try:
            if self.mode == "rois":
                assert self.rois is not None  # a rois recording is made with its ROIs
                self.data[n:] = _crops(frames, self.rois)
            elif self.direct and n % self._chunk_frames == 0 and k == self._chunk_frames:
                self._write_chunk(n, frames)
            elif self.direct and self._chunk_frames == 1:
                for i in range(k):
                    self._write_chunk(n + i, frames[i])
            else:
                self.data[n:] = frames
        except BaseException:  # a failed write (a full disk): no frames that are not there
            self.data.resize((n, *self.data.shape[1:]))
            raise
        self._n = n + k
        rows = np.empty(k, VIDEO_SEQ_DTYPE)
        rows["seq"], rows["timestamp"] = seqs, timestamps
        self._seq_rows.append(rows)

    def _write_chunk(self, first: int, data: np.ndarray) -> None:
        """The chunk that starts at frame ``first``: direct I/O where it can, else through HDF5."""
        data = np.ascontiguousarray(data)
        fd = self._direct_fd
        if fd is not None and data.ctypes.data % DIRECT_ALIGN == 0:
            at = self.data.id.get_chunk_info_by_coord((first, 0, 0)).byte_offset
            try:
                _pwrite_all(fd, data.reshape(-1).view(np.uint8), at)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: opened, but no direct writes here
                    raise
                self._direct_fd = None
                os.close(fd)
        self.data.id.write_direct_chunk((first, 0, 0), data)

    def _append_seq(self) -> None:
        """The ``video_seq`` rows of the frames appended since the last flush, in one write."""
        if self._seq_rows:
            rows = np.concatenate(self._seq_rows)
            m = self.seq.shape[0]
            self.seq.resize((m + len(rows),))
            self.seq[m:] = rows
            self._seq_rows.clear()

    def maybe_flush(self, force: bool = False) -> bool:
        """Flush if ``FLUSH_S`` passed since the last flush (or ``force``); True if it did."""
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_S:
            self._append_seq()
            self._f.flush()
            self._last_flush = now
            if self._direct_fd is None:  # direct I/O leaves no frames in the page cache
                self._drop_cached()
            return True
        return False

    def _drop_cached(self) -> None:
        """Start writing back, and drop from the page cache, all but the newest
        ``KEEP_CACHED`` bytes of the file (where the OS lets us): video far larger than the
        memory otherwise fills the cache, and reclaiming it costs the recorder more than the
        writing."""
        end = os.fstat(self._cache_fd).st_size - KEEP_CACHED
        if end > 0:
            drop_cached(self._cache_fd, end)

    def close(self) -> None:
        try:
            self._append_seq()
            self._f.flush()
            self._f.close()
        finally:
            os.close(self._cache_fd)
            if self._direct_fd is not None:
                os.close(self._direct_fd)


def _allocated_unfilled() -> h5py.h5p.PropDCID:
    """Chunks allocated as the dataset grows, never filled: written at their offsets."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def _pwrite_all(fd: int, data: np.ndarray, at: int) -> None:
    """Write all of 1-D uint8 ``data`` at offset ``at`` (ENOSPC if the disk takes no more)."""
    if sys.platform == "win32":  # direct I/O (:func:`._fileio.open_direct`) is POSIX's
        raise OSError(errno.ENOTSUP, "no direct I/O on Windows")
    done = 0
    while done < len(data):
        n = os.pwrite(fd, data[done:].data, at + done)
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += n


def _crops(frames: np.ndarray, rois: np.ndarray) -> np.ndarray:
    """``(k, n_beads, side, side)`` ROIs of each frame."""
    side = int(rois[0, 2] - rois[0, 1])
    out = np.empty((len(frames), len(rois), side, side), dtype=frames.dtype)
    for b, (_, x0, x1, y0, y1) in enumerate(rois):
        out[:, b] = frames[:, y0:y1, x0:x1]
    return out
