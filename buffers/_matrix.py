"""MatrixBuffer: a shared-memory FIFO of float64 rows (bead positions, motor telemetry).

The rows live in the payload of one :class:`~buffers._segment.Segment`, followed by a small
journal; the read index, write index and unread count (all in bytes, as the reference
documents), two counters and a sequence counter live in the segment's spare header words. Every
change holds the buffer's segment lock (:mod:`buffers._lock`), which any process can take, so
any number of processes may write and read concurrently, and :meth:`MatrixBuffer.peak_since`
reads without any lock (:mod:`buffers._seqlock`).

A writer that dies mid-change (SIGKILL) leaves the sequence counter odd and its lock freed by the
kernel; the next process to take the lock rolls the change back from the journal (the rows it
was writing become NaN) and counts it in :attr:`MatrixBuffer.repairs`.

Unlike the reference, a write never silently overwrites unread rows: a write that does not fit
raises :class:`BufferOverflow`, unless the buffer was created with ``overwrite=True``, in which
case the oldest unread rows are dropped and counted in :attr:`MatrixBuffer.overwritten_rows`.
"""

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._errors import BufferOverflow
from ._lock import BufferLock, make_buffer_lock
from ._ordering import release_fence
from ._segment import Segment
from ._segment_holder import SegmentHandle, SegmentHolder
from ._seqlock import consistent_copy

SCHEMA = 2  # 2: a journal follows the rows
# spare header words used by a MatrixBuffer (_SPARE is left to subclasses)
_READ, _WRITE, _COUNT, _OVERWRITTEN, _WRITTEN, _SEQ, _SPARE, _REPAIRS = range(8)
# journal words: the index words to restore, and the rows the interrupted change was writing
_J_START, _J_N = 5, 6
_JOURNAL_BYTES = 64

_log = logging.getLogger("buffers")


class MatrixBuffer(SegmentHolder):
    """Shared-memory ring buffer for 2D numeric data.

    Parameters
    ----------
    create : bool
        True to allocate the shared memory; False to attach to an existing buffer.
    locks : dict or None
        Optional (the reference requires it). Every buffer takes its own segment lock
        (:mod:`buffers._lock`): it works from any process, including one that is not a child of
        the run, and the kernel frees it when its holder dies. A lock found under ``name`` in
        this dict is taken first, as well, so reference-style code holding it still excludes.
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
    the ``peak`` helpers return copies without consuming. Every method is safe from any process
    that attached, children of the run or not. The creating process unlinks the segment on
    :meth:`close`, at context-manager exit, or when the object is collected (keep a reference
    while the run needs it).
    """

    _KIND = "MatrixBuffer"
    # until mapped: close() then has nothing to release
    _shm: SegmentHandle
    _shm_info: SegmentHandle
    _idx_shm: SegmentHandle
    _buf: memoryview | None = None
    _idx_buf: memoryview | None = None
    _rows: np.ndarray | None = None
    _journal: memoryview | None = None
    lock: BufferLock
    #: Tests only: called mid-change, with the lock held and the counter odd.
    _fault_point: Callable[[], None] | None = None

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Any] | None = None,
        name: str,
        shape: tuple[int, int] | None = None,
        overwrite: bool = False,
        namespace: str | None = None,
    ) -> None:
        self.name: str = name
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
                size=rows * cols * 8 + _JOURNAL_BYTES,
                geometry=(rows, cols, int(bool(overwrite))),
                schema=SCHEMA,
                namespace=namespace,
            )
        else:
            geometry = None if shape is None else tuple(int(v) for v in shape)
            seg = Segment.attach(
                name, kind=self._KIND, schema=SCHEMA, namespace=namespace, geometry=geometry
            )
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
            self._expose_segment(seg, ("_shm", "_shm_info", "_idx_shm"))
            self._buf = seg.payload[: self.nbytes]
            self._idx_buf = seg.words()
            self._rows = np.ndarray(self.shape, self.dtype, buffer=seg.payload)
            self._journal = seg.payload[self.nbytes : self.nbytes + _JOURNAL_BYTES].cast("q")
            self.lock = make_buffer_lock(
                locks, name, seg.lock_path, self._repair, (self._idx_buf, _SEQ)
            )
            if create:
                self._rows.fill(np.nan)
        except BaseException:  # a failed creation leaves nothing behind
            self.close()
            raise

    # --- lifecycle ----------------------------------------------------------------------
    def _drop_views(self) -> None:
        self._rows = None
        self._buf = None
        for attr in ("_idx_buf", "_journal"):
            view = self.__dict__.get(attr)
            if view is not None:
                view.release()
                setattr(self, attr, None)

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
            rows, words, journal = self._live_rows(), self._words(), self._journal_words()
            if n == 0:
                return
            unread = words[_COUNT] // row_bytes
            lost = drop = 0
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
            read = (words[_READ] + drop * row_bytes) % self.nbytes
            w = words[_WRITE] // row_bytes
            # what a rollback restores: the oldest rows dropped, none of these written
            journal[_READ] = read
            journal[_WRITE] = words[_WRITE]
            journal[_COUNT] = unread * row_bytes
            journal[_OVERWRITTEN] = words[_OVERWRITTEN] + drop
            journal[_WRITTEN] = words[_WRITTEN]
            journal[_J_START] = w
            journal[_J_N] = n
            words[_SEQ] += 1  # odd: a change is under way (buffers._seqlock)
            release_fence()
            try:
                first = min(n, n_rows - w)
                rows[w : w + first] = arr[:first]
                if self._fault_point is not None:
                    self._fault_point()
                if first < n:
                    rows[: n - first] = arr[first:]
                words[_READ] = read
                words[_WRITE] = (w + n) % n_rows * row_bytes
                words[_COUNT] = (unread + n) * row_bytes
                words[_OVERWRITTEN] += lost
                words[_WRITTEN] += n_in
            except BaseException:
                self._rollback()
                raise
            release_fence()
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
            rows, words, journal = self._live_rows(), self._words(), self._journal_words()
            n = words[_COUNT] // row_bytes
            r = words[_READ] // row_bytes
            out = self._ordered(rows, r, n)
            for k in (_READ, _WRITE, _COUNT, _OVERWRITTEN, _WRITTEN):
                journal[k] = words[k]
            journal[_J_N] = 0
            words[_SEQ] += 1  # odd
            release_fence()
            words[_READ] = (r + n) % self.shape[0] * row_bytes
            words[_COUNT] = 0
            release_fence()
            words[_SEQ] += 1
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

        Unlike the reference this is a copy, never torn: a view would tear while other
        processes write, and would pin the mapping after :meth:`close`.
        """
        with self.lock:
            return self._live_rows().copy()

    def peak_sorted(self) -> np.ndarray:
        """Return every row of the buffer, oldest slot first, without consuming.

        Slots never written hold NaN. A consistent copy, from any process.
        """
        with self.lock:
            rows = self._live_rows()
            w = self._get_write_index() // self.strides[0]
            return self._ordered(rows, w, self.shape[0])

    def peak_since(self, seen_rows: int) -> tuple[np.ndarray, int]:
        """Rows written since the caller had seen ``seen_rows`` of them, without the lock.

        For viewers: it does not consume, never waits for a writer, and never returns a torn
        copy (:mod:`buffers._seqlock`). Rows already read by :meth:`read` are still returned.

        Parameters
        ----------
        seen_rows : int
            The total the caller got from its previous call (0 at first). A total larger than
            this buffer's (one from another buffer) counts as 0.

        Returns
        -------
        tuple of (numpy.ndarray, int)
            The newest ``min(new rows, rows of the buffer)`` rows, oldest first, as a
            ``(n, columns)`` float64 copy; and :attr:`rows_written` at the time of the copy,
            to pass next time. Rows lost to the capacity are the difference between that total
            and ``seen_rows + n``.

        Raises
        ------
        ValueError
            ``seen_rows`` is negative, or the buffer is closed.
        """
        seen = int(seen_rows)
        if seen < 0:
            raise ValueError(f"seen_rows must be >= 0, got {seen_rows!r}")
        rows, words = self._live_rows(), self._words()
        n_rows, row_bytes = self.shape[0], self.strides[0]

        def copy() -> tuple[np.ndarray, int]:
            total = words[_WRITTEN]
            w = words[_WRITE] // row_bytes
            k = min(total - seen if seen <= total else total, n_rows)
            return self._ordered(rows, (w - k) % n_rows, k), total

        return consistent_copy(words, _SEQ, copy, self.lock)

    @property
    def repairs(self) -> int:
        """Changes left half-done by a process that died, rolled back since creation."""
        return self._word(_REPAIRS)

    # --- recovery (lock held) ---------------------------------------------------------------
    def _journal_words(self) -> memoryview:
        if self._journal is None:
            raise ValueError(f"{self._KIND} {self.name!r} is closed")
        return self._journal

    def _rollback(self) -> None:
        """Undo the change in progress from the journal; its rows become NaN."""
        rows, words, journal = self._live_rows(), self._words(), self._journal_words()
        for k in (_READ, _WRITE, _COUNT, _OVERWRITTEN, _WRITTEN):
            words[k] = journal[k]
        start, n = journal[_J_START], journal[_J_N]
        first = min(n, self.shape[0] - start)
        rows[start : start + first] = np.nan
        rows[: n - first] = np.nan
        release_fence()
        words[_SEQ] += 1  # even again

    def _repair(self) -> None:
        """Run on taking the lock: roll back a change whose writer died (counter left odd)."""
        words = self._idx_buf
        if words is None or not words[_SEQ] & 1:
            return
        self._rollback()
        words[_REPAIRS] += 1
        _log.warning("%s %r: rolled back a change left half-done by a dead process",
                     self._KIND, self.name)  # fmt: skip

    def __repr__(self) -> str:
        return f"MatrixBuffer(name={self.name!r}, shape={self.shape}, overwrite={self.overwrite})"
