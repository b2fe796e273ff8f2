"""BeadRoiBuffer: the region of interest of every tracked bead, one fixed row per bead id.

The payload of one :class:`~buffers._segment.Segment` holds a ``(capacity, 4)`` uint32 ROI
matrix followed by a ``capacity`` uint8 occupancy vector; capacity, ``max_id_plus_one``,
``active_count``, ``version`` and a sequence counter live in the segment's spare header words.
Every change and every snapshot holds the caller's lock, and a snapshot is also checked against
the sequence counter (:mod:`buffers._seqlock`), so a reader never sees a half-applied update,
even one that cannot share the writers' lock. ``version`` grows by one on every change so
readers can cache a snapshot until it moves.

An ROI is ``(x0, x1, y0, y1)`` in pixels, as the reference uses it: columns ``x0:x1`` and rows
``y0:y1`` of the frame, with ``x0 < x1`` and ``y0 < y1``.
"""

import operator
import os
from collections.abc import Iterable, Mapping
from multiprocessing.synchronize import Lock
from typing import Any

import numpy as np

from ._segment import Segment
from ._seqlock import consistent_copy, lock_for, writing

_UINT32_MAX = 2**32 - 1
_CAPACITY, _MAX_ID_PLUS_ONE, _ACTIVE_COUNT, _VERSION, _SEQ = range(5)


def _as_int(value: Any, what: str) -> int:
    """``value`` as an int; integral floats are accepted, anything else is a ValueError."""
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{what} must be an integer, got {value!r}")


class BeadRoiBuffer:
    """Shared-memory store for bead ROI metadata.

    Parameters
    ----------
    create : bool
        True to allocate the shared memory; False to attach to an existing buffer.
    locks : dict[str, Lock]
        Mapping of buffer names to ``multiprocessing.Lock`` instances; must hold ``name``.
    capacity : int, optional
        Number of bead ids (``0..capacity-1``); required when creating, checked when attaching.
    name : str
        Identifier of the shared-memory segment.
    namespace : str, optional
        Segment namespace; defaults to ``$MAGACQ_NAMESPACE`` or ``default``.

    Notes
    -----
    Removing a bead does not lower ``max_id_plus_one``, so a new bead never reuses the id of a
    removed one until :meth:`reorder_beads` or :meth:`clear_beads`. Changes need the lock the
    other writers use; snapshots are consistent even with a private lock (a viewer).
    """

    name = "BeadRoiBuffer"
    _KIND = "BeadRoiBuffer"
    # until mapped: close() then has nothing to release
    _seg: Segment | None = None
    _shm_info: Segment | None
    _shm_data: Segment | None
    _shm_occupancy: Segment | None
    _info: memoryview | None = None
    _roi_matrix: np.ndarray | None = None
    _occupancy: np.ndarray | None = None
    _info_fields = 4
    _info_size = 8 * _info_fields
    _roi_dtype = np.dtype(np.uint32)
    _occupancy_dtype = np.dtype(np.uint8)

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Lock],
        capacity: int | None = None,
        name: str = "BeadRoiBuffer",
        namespace: str | None = None,
    ) -> None:
        self.name = name
        self.lock: Lock = lock_for(locks, name)
        self._creator_pid = os.getpid() if create else None
        if create:
            if capacity is None:
                raise ValueError("capacity must be provided when creating BeadRoiBuffer")
            capacity = _as_int(capacity, "capacity")
            if not 0 < capacity <= _UINT32_MAX:
                raise ValueError(f"capacity must be positive, got {capacity}")
            size = capacity * (4 * self._roi_dtype.itemsize + self._occupancy_dtype.itemsize)
            seg = Segment.create(
                name, kind=self._KIND, size=size, geometry=(capacity,), namespace=namespace
            )
        else:
            geometry = None if capacity is None else (_as_int(capacity, "capacity"),)
            seg = Segment.attach(name, kind=self._KIND, namespace=namespace, geometry=geometry)
        self._seg = seg
        try:
            self._shm_info = self._shm_data = self._shm_occupancy = seg
            self._info = seg.words()
            self.capacity: int = seg.geometry[0]
            self._roi_shape = (self.capacity, 4)
            self._roi_nbytes = self.capacity * 4 * self._roi_dtype.itemsize
            self._occupancy_nbytes = self.capacity * self._occupancy_dtype.itemsize
            self._roi_matrix = np.ndarray(self._roi_shape, self._roi_dtype, buffer=seg.payload)
            self._occupancy = np.ndarray(
                (self.capacity,), self._occupancy_dtype, buffer=seg.payload, offset=self._roi_nbytes
            )
            if create:
                self._write_info(_CAPACITY, self.capacity)
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
        self._roi_matrix = self._occupancy = None
        if self._info is not None:
            self._info.release()
            self._info = None
        self._seg = self._shm_info = self._shm_data = self._shm_occupancy = None
        if self._creator_pid == os.getpid():
            seg.unlink()
        seg.close()

    def __enter__(self) -> "BeadRoiBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful left to do
            pass

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._roi_matrix is None or self._occupancy is None:
            raise ValueError(f"BeadRoiBuffer {self.name!r} is closed")
        return self._roi_matrix, self._occupancy

    # --- counters -----------------------------------------------------------------------
    @property
    def max_id_plus_one(self) -> int:
        """One more than the highest bead id in use (or used since the last compaction)."""
        with self.lock:
            return self._read_info(_MAX_ID_PLUS_ONE)

    @property
    def active_count(self) -> int:
        """Number of beads currently stored."""
        with self.lock:
            return self._read_info(_ACTIVE_COUNT)

    @property
    def version(self) -> int:
        """Change counter: grows by one on every change of the stored beads."""
        with self.lock:
            return self._read_info(_VERSION)

    # --- changes ------------------------------------------------------------------------
    def replace_beads(self, value: Mapping[int, tuple[int, int, int, int]]) -> None:
        """Replace every stored bead by ``value`` (``{bead_id: (x0, x1, y0, y1)}``)."""
        ids, rois = self._normalize(value)
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            with writing(self._words(), _SEQ):
                roi_matrix.fill(0)
                occupancy.fill(0)
                roi_matrix[ids] = rois
                occupancy[ids] = 1
                self._write_info(_MAX_ID_PLUS_ONE, int(ids.max()) + 1 if ids.size else 0)
                self._write_info(_ACTIVE_COUNT, ids.size)
                self._increment_version()

    def add_beads(self, value: Mapping[int, tuple[int, int, int, int]]) -> None:
        """Add new beads; raises ValueError (and changes nothing) if any id is in use."""
        ids, rois = self._normalize(value)
        if ids.size == 0:
            return
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            taken = occupancy[ids] != 0
            if taken.any():
                raise ValueError(f"bead ids already exist: {ids[taken].tolist()}")
            with writing(self._words(), _SEQ):
                roi_matrix[ids] = rois
                occupancy[ids] = 1
                top = max(self._read_info(_MAX_ID_PLUS_ONE), int(ids.max()) + 1)
                self._write_info(_MAX_ID_PLUS_ONE, top)
                self._write_info(_ACTIVE_COUNT, self._read_info(_ACTIVE_COUNT) + ids.size)
                self._increment_version()

    def update_beads(self, value: Mapping[int, tuple[int, int, int, int]]) -> None:
        """Move existing beads; raises ValueError (and changes nothing) if any id is absent."""
        ids, rois = self._normalize(value)
        if ids.size == 0:
            return
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            missing = occupancy[ids] == 0
            if missing.any():
                raise ValueError(f"bead ids do not exist: {ids[missing].tolist()}")
            with writing(self._words(), _SEQ):
                roi_matrix[ids] = rois
                self._increment_version()

    def remove_beads(self, ids: Iterable[int]) -> None:
        """Remove the beads ``ids``; ids not stored are ignored, repeated ids are an error."""
        targets = self._normalize_ids(ids)
        if targets.size == 0:
            return
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            present = targets[occupancy[targets] != 0]
            if present.size == 0:
                return
            with writing(self._words(), _SEQ):
                occupancy[present] = 0
                roi_matrix[present] = 0
                self._write_info(_ACTIVE_COUNT, self._read_info(_ACTIVE_COUNT) - present.size)
                self._increment_version()

    def clear_beads(self) -> None:
        """Remove every bead and reset ``max_id_plus_one``."""
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            with writing(self._words(), _SEQ):
                roi_matrix.fill(0)
                occupancy.fill(0)
                self._write_info(_MAX_ID_PLUS_ONE, 0)
                self._write_info(_ACTIVE_COUNT, 0)
                self._increment_version()

    def reorder_beads(self) -> dict[int, int]:
        """Renumber the stored beads ``0..n-1`` in id order; return ``{old_id: new_id}``."""
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            old = np.flatnonzero(occupancy[: self._read_info(_MAX_ID_PLUS_ONE)])
            rois = roi_matrix[old].copy()
            with writing(self._words(), _SEQ):
                roi_matrix.fill(0)
                occupancy.fill(0)
                roi_matrix[: old.size] = rois
                occupancy[: old.size] = 1
                self._write_info(_MAX_ID_PLUS_ONE, old.size)
                self._write_info(_ACTIVE_COUNT, old.size)
                self._increment_version()
        return {int(o): n for n, o in enumerate(old.tolist())}

    # --- snapshots ----------------------------------------------------------------------
    def get_next_available_bead_id(self) -> int:
        """The id a new bead should get: ``max_id_plus_one`` (may equal ``capacity``: full)."""
        with self.lock:
            return self._read_info(_MAX_ID_PLUS_ONE)

    def get_beads(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ids, rois)``: uint32 ids ascending and their ``(n, 4)`` uint32 ROIs."""
        return self.snapshot()[1:]

    def snapshot(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Return ``(version, ids, rois)`` taken at once, for readers that cache by version."""

        def copy() -> tuple[int, np.ndarray, np.ndarray]:
            version = self._read_info(_VERSION)
            # copy first: numpy's nonzero fails if a writer without our lock changes the input
            occupied = occupancy[: self._read_info(_MAX_ID_PLUS_ONE)].copy()
            ids = np.flatnonzero(occupied)
            return version, ids.astype(np.uint32), roi_matrix[ids]

        # consistent even for a process without the shared lock (see buffers._seqlock)
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            return consistent_copy(self._words(), _SEQ, copy, self.name)

    # --- validation ---------------------------------------------------------------------
    def _normalize(self, value: Mapping[int, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``value`` as (ids, rois) arrays, validated; ValueError on any bad entry."""
        mapping = self._normalize_bead_mapping(value)
        ids = np.fromiter(mapping.keys(), np.intp, count=len(mapping))
        rois = np.array(list(mapping.values()), self._roi_dtype).reshape(len(mapping), 4)
        return ids, rois

    def _normalize_bead_mapping(
        self, value: Mapping[int, Any]
    ) -> dict[int, tuple[int, int, int, int]]:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"beads must be a mapping {{bead_id: (x0, x1, y0, y1)}}, got {value!r}"
            )
        normalized: dict[int, tuple[int, int, int, int]] = {}
        for bead_id, roi in value.items():
            bid = self._validate_bead_id(bead_id)
            if bid in normalized:
                raise ValueError(f"bead id {bid} given twice")
            try:
                coords = tuple(_as_int(c, f"ROI of bead {bid}") for c in roi)
            except TypeError:
                raise ValueError(
                    f"ROI of bead {bid} must be (x0, x1, y0, y1), got {roi!r}"
                ) from None
            if len(coords) != 4:
                raise ValueError(f"ROI of bead {bid} must have four values, got {roi!r}")
            x0, x1, y0, y1 = coords
            if min(coords) < 0 or max(coords) > _UINT32_MAX or not (x0 < x1 and y0 < y1):
                raise ValueError(
                    f"ROI of bead {bid} must be (x0, x1, y0, y1) with 0 <= x0 < x1 and "
                    f"0 <= y0 < y1, got {roi!r}"
                )
            normalized[bid] = (x0, x1, y0, y1)
        return normalized

    def _normalize_ids(self, ids: Iterable[int]) -> np.ndarray:
        try:
            values = [self._validate_bead_id(i) for i in ids]
        except TypeError:
            raise ValueError(f"bead ids must be an iterable of integers, got {ids!r}") from None
        if len(set(values)) != len(values):
            raise ValueError(f"bead ids repeated in {values}")
        return np.array(values, np.intp)

    def _validate_bead_id(self, bead_id: Any) -> int:
        bid = _as_int(bead_id, "bead id")
        if not 0 <= bid < self.capacity:
            raise ValueError(f"bead id {bid} is out of range 0..{self.capacity - 1}")
        return bid

    # --- header words (caller holds the lock) --------------------------------------------
    def _words(self) -> memoryview:
        if self._info is None:
            raise ValueError(f"BeadRoiBuffer {self.name!r} is closed")
        return self._info

    def _read_info(self, index: int) -> int:
        return int(self._words()[index])

    def _write_info(self, index: int, value: int) -> None:
        self._words()[index] = int(value)

    def _increment_version(self) -> None:
        self._write_info(_VERSION, self._read_info(_VERSION) + 1)

    def __repr__(self) -> str:
        return f"BeadRoiBuffer(name={self.name!r}, capacity={self.capacity})"
