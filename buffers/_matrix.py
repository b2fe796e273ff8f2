"""MatrixBuffer: a shared-memory FIFO of float64 rows (bead positions, motor telemetry).

The rows live in the payload of one :class:`~buffers._segment.Segment`; the read index, write
index and unread count (all in bytes, as the reference documents), two counters and a
sequence counter live in the segment's spare header words. Every access holds the caller's lock,
so any number of processes sharing that lock may write and read concurrently; the peaks are
consistent even in a process that cannot share it (see :mod:`buffers._seqlock`).

Unlike the reference, a write never silently overwrites unread rows: a write that does not fit
raises :class:`BufferOverflow`, unless the buffer was created with ``overwrite=True``, in which
case the oldest unread rows are dropped and counted in :attr:`MatrixBuffer.overwritten_rows`.
"""

import os
from multiprocessing.synchronize import Lock
from typing import Any

import numpy as np

from ._errors import BufferOverflow
from ._segment import Segment
from ._seqlock import consistent_copy, lock_for

# spare header words used by a MatrixBuffer
_READ, _WRITE, _COUNT, _OVERWRITTEN, _WRITTEN, _SEQ = range(6)


class MatrixBuffer:
    """Shared-memory ring buffer for 2D numeric data.

    Parameters
    ----------
    create : bool
        True to allocate the shared memory; False to attach to an existing buffer.
    locks : dict[str, Lock]
        Mapping of buffer names to ``multiprocessing.Lock`` instances; must hold ``name``.
    name : str
        Identifier of the shared-memory segment.
    shape : tuple[int, int], optional
        ``(rows, columns)``; required when ``create`` is True, checked when attaching.
    overwrite : bool
        Creation only: when True a write that does not fit drops the oldest unread rows and
        counts them in :attr:`overwritten_rows`; when False (default) it raises BufferOverflow.
    namespace : str, optional
        Segment namespace; defaults to ``$MAGACQ_NAMESPACE`` or ``default``.

    Notes
    -----
    Each row is one time point, each column a measurement. :meth:`read` consumes unread rows;
    the ``peak`` helpers return copies without consuming. :meth:`write` and :meth:`read` need the
    lock the other processes use; a process attached with a private lock may only peak. The
    creating process unlinks the segment on :meth:`close`, at context-manager exit, or when the
    object is collected (keep a reference while the run needs it).
    """

    _KIND = "MatrixBuffer"
    # until mapped: close() then has nothing to release
    _seg: Segment | None = None
    _shm: Segment | None
    _shm_info: Segment | None
    _idx_shm: Segment | None
    _buf: memoryview | None = None
    _idx_buf: memoryview | None = None
    _rows: np.ndarray | None = None

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Lock],
        name: str,
        shape: tuple[int, int] | None = None,
        overwrite: bool = False,
        namespace: str | None = None,
    ) -> None:
        self.name: str = name
        self.lock: Lock = lock_for(locks, name)
        self._creator_pid = os.getpid() if create else None
        if create:
            if shape is None:
                raise ValueError("shape must be specified when creating a MatrixBuffer")
            rows, cols = (int(v) for v in shape)
            if rows <= 0 or cols <= 0:
                raise ValueError(f"shape must be two positive integers, got {shape}")
            seg = Segment.create(
                name,
                kind=self._KIND,
                size=rows * cols * 8,
                geometry=(rows, cols, int(bool(overwrite))),
                namespace=namespace,
            )
        else:
            geometry = None if shape is None else tuple(int(v) for v in shape)
            seg = Segment.attach(name, kind=self._KIND, namespace=namespace, geometry=geometry)
        self._seg = seg
        try:
            rows, cols, ow = seg.geometry[:3]
            self.shape: tuple[int, int] = (rows, cols)
            self.overwrite: bool = bool(ow)
            self.dtype: np.dtype = np.dtype(np.float64)
            self.itemsize: int = self.dtype.itemsize
            self.strides: tuple[int, int] = (cols * self.itemsize, self.itemsize)
            self.nbytes: int = rows * cols * self.itemsize
            # One segment holds what the reference spreads over three.
            self._shm = self._shm_info = self._idx_shm = seg
            self._buf = seg.payload
            self._idx_buf = seg.words()
            self._rows = np.ndarray(self.shape, self.dtype, buffer=seg.payload)
            if create:
                self._rows.fill(np.nan)
        except BaseException:  # a failed creation leaves nothing behind
            self.close()
            raise

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._seg is None

    def close(self) -> None:
        """Unmap the buffer; the creating process also unlinks it. Idempotent."""
        seg = self._seg
        if seg is None:
            return
        self._rows = None
        self._buf = None
        if self._idx_buf is not None:
            self._idx_buf.release()
            self._idx_buf = None
        self._seg = self._shm = self._shm_info = self._idx_shm = None
        if self._creator_pid == os.getpid():
            seg.unlink()
        seg.close()

    def __enter__(self) -> "MatrixBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful left to do
            pass

    def _live_rows(self) -> np.ndarray:
        if self._rows is None:
            raise ValueError(f"{self._KIND} {self.name!r} is closed")
        return self._rows

    # --- raw indices (caller holds the lock) ---------------------------------------------
    def _words(self) -> memoryview:
        if self._idx_buf is None:
            raise ValueError(f"{self._KIND} {self.name!r} is closed")
        return self._idx_buf

    def _word(self, index: int) -> int:
        return int(self._words()[index])

    def _set_word(self, index: int, value: int) -> None:
        self._words()[index] = int(value)

    def _get_count_index(self) -> int:
        return self._word(_COUNT)

    def _get_read_index(self) -> int:
        return self._word(_READ)

    def _get_write_index(self) -> int:
        return self._word(_WRITE)

    def _set_count_index(self, value: int) -> None:
        self._set_word(_COUNT, value)

    def _set_read_index(self, value: int) -> None:
        self._set_word(_READ, value % self.nbytes)

    def _set_write_index(self, value: int) -> None:
        self._set_word(_WRITE, value % self.nbytes)

    # --- documented API -----------------------------------------------------------------
    def get_count_index(self) -> int:
        """Return the number of unread bytes currently stored in the buffer."""
        with self.lock:
            return self._get_count_index()

    def get_read_index(self) -> int:
        """Return the byte index of the next row that will be read."""
        with self.lock:
            return self._get_read_index()

    def get_write_index(self) -> int:
        """Return the byte index of the next row that will be written."""
        with self.lock:
            return self._get_write_index()

    @property
    def overwritten_rows(self) -> int:
        """Unread rows dropped so far by writes into a full ``overwrite=True`` buffer."""
        with self.lock:
            return self._word(_OVERWRITTEN)

    @property
    def rows_written(self) -> int:
        """Rows accepted by :meth:`write` since creation (a sequence number for readers)."""
        with self.lock:
            return self._word(_WRITTEN)

    def _validated(self, np_array: Any) -> np.ndarray:
        arr = np_array if type(np_array) is np.ndarray else np.asarray(np_array)
        if arr.ndim != 2 or arr.shape[1] != self.shape[1]:
            raise ValueError(
                f"{self.name!r} takes 2-D arrays of {self.shape[1]} columns, got shape {arr.shape}"
            )
        if arr.dtype != self.dtype:
            if not np.can_cast(arr.dtype, self.dtype, casting="same_kind"):
                raise ValueError(f"{self.name!r} stores float64; cannot take dtype {arr.dtype}")
            arr = arr.astype(self.dtype)
        return arr

    def write(self, np_array: np.ndarray) -> None:
        """Append the rows of ``np_array``, wrapping around the end of the buffer.

        Safe to call from several processes at once: the whole write holds the lock.

        Parameters
        ----------
        np_array : numpy.ndarray
            2-D array with ``shape[1]`` columns of a dtype that casts to float64.

        Raises
        ------
        ValueError
            Wrong dimensions, column count or dtype; the buffer is left untouched.
        BufferOverflow
            The rows do not fit in the free space (and ``overwrite`` is False); nothing is
            written.
        """
        arr = self._validated(np_array)
        n = n_in = arr.shape[0]
        n_rows = self.shape[0]
        row_bytes = self.strides[0]
        with self.lock:
            rows, words = self._live_rows(), self._words()
            if n == 0:
                return
            unread = words[_COUNT] // row_bytes
            lost = 0
            if n > n_rows - unread:
                if not self.overwrite:
                    raise BufferOverflow(
                        f"{self.name!r}: {n} rows do not fit ({n_rows - unread} of {n_rows} free)"
                    )
                if n > n_rows:  # only the newest n_rows of this write can be kept
                    lost = n - n_rows
                    arr = arr[lost:]
                    n = n_rows
                drop = max(0, n - (n_rows - unread))
                lost += drop
                unread -= drop
                self._set_read_index(words[_READ] + drop * row_bytes)
            w = words[_WRITE] // row_bytes
            first = min(n, n_rows - w)
            words[_SEQ] += 1  # odd: a change is under way (buffers._seqlock)
            try:
                rows[w : w + first] = arr[:first]
                if first < n:
                    rows[: n - first] = arr[first:]
                words[_WRITE] = (w + n) % n_rows * row_bytes
                words[_COUNT] = (unread + n) * row_bytes
                words[_OVERWRITTEN] += lost
                words[_WRITTEN] += n_in
            finally:
                words[_SEQ] += 1

    def read(self) -> np.ndarray:
        """Return the unread rows, oldest first, and mark them read.

        Returns
        -------
        numpy.ndarray
            A ``(n, columns)`` float64 copy; ``n`` is 0 when nothing is unread (as the reference
            does: an empty read is not an error for a polling writer).
        """
        row_bytes = self.strides[0]
        with self.lock:
            rows, words = self._live_rows(), self._words()
            n = words[_COUNT] // row_bytes
            r = words[_READ] // row_bytes
            out = self._ordered(rows, r, n)
            words[_READ] = (r + n) % self.shape[0] * row_bytes
            words[_COUNT] = 0
        return out

    def _ordered(self, rows: np.ndarray, start: int, n: int) -> np.ndarray:
        """Copy ``n`` rows starting at row ``start``, following the wrap."""
        first = min(n, self.shape[0] - start)
        if first == n:
            return rows[start : start + n].copy()
        out = np.empty((n, self.shape[1]), self.dtype)
        out[:first] = rows[start:]
        out[first:] = rows[: n - first]
        return out

    def peak_unsorted(self) -> np.ndarray:
        """Return the whole buffer in storage order, without consuming.

        Unlike the reference this is a copy, never torn (see :mod:`buffers._seqlock`): a view
        would tear while other processes write, and would pin the mapping after :meth:`close`.
        """
        with self.lock:
            rows = self._live_rows()
            return consistent_copy(self._words(), _SEQ, rows.copy, self.name)

    def peak_sorted(self) -> np.ndarray:
        """Return every row of the buffer, oldest slot first, without consuming.

        Slots never written hold NaN. A consistent copy even for a process that does not
        hold the shared lock (a viewer).
        """

        def copy() -> np.ndarray:
            w = self._get_write_index() // self.strides[0]
            return self._ordered(rows, w, self.shape[0])

        with self.lock:
            rows = self._live_rows()
            return consistent_copy(self._words(), _SEQ, copy, self.name)

    def __repr__(self) -> str:
        return f"MatrixBuffer(name={self.name!r}, shape={self.shape}, overwrite={self.overwrite})"
