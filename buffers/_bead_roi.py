"""BeadRoiBuffer: the region of interest of every tracked bead, one fixed row per bead id.

The payload of one :class:`~buffers._segment.Segment` holds a ``(capacity, 4)`` uint32 ROI
matrix, a ``capacity`` uint8 occupancy vector and a ``capacity`` uint8 reference-flag vector,
then a shadow copy of those three; capacity, ``max_id_plus_one``, ``active_count``, ``version``,
a sequence counter and the shadow's two counters live in the segment's spare header words.
Every change and every snapshot holds the buffer's segment lock (:mod:`buffers._lock`), which
any process can take (a viewer started on its own too), so a reader never sees a half-applied
update. ``version`` grows by one on every change so readers can cache a snapshot until it moves.

A change first copies the table to the shadow and makes the sequence counter odd. If its writer
dies mid-change (SIGKILL), the kernel frees the lock and the next process to take it restores
the shadow (the change is undone), bumps ``version`` and counts it in :attr:`repairs`.

An ROI is ``(x0, x1, y0, y1)`` in pixels, as the reference uses it: columns ``x0:x1`` and rows
``y0:y1`` of the frame, with ``x0 < x1`` and ``y0 < y1``.
"""

import logging
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._lock import BufferLock, make_buffer_lock
from ._ordering import release_fence
from ._segment import Segment
from ._segment_holder import SegmentHandle, SegmentHolder

SCHEMA = 2  # 2: reference flags and a shadow copy for rollback
_UINT32_MAX = 2**32 - 1
_CAPACITY, _MAX_ID_PLUS_ONE, _ACTIVE_COUNT, _VERSION, _SEQ = range(5)
_SHADOW_MAX_ID_PLUS_ONE, _SHADOW_ACTIVE_COUNT, _REPAIRS = 5, 6, 7
_ROW_BYTES = 4 * 4 + 1 + 1  # ROI, occupancy, reference flag

_log = logging.getLogger("buffers")


def _as_int(value: Any, what: str) -> int:
    """``value`` as an int; integral floats are accepted, anything else is a ValueError."""
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{what} must be an integer, got {value!r}")


class BeadRoiBuffer(SegmentHolder):
    """Shared-memory store for bead ROI metadata.

    Parameters
    ----------
    create : bool
        True to allocate the shared memory; False to attach to an existing buffer.
    locks : dict or None
        Optional (the reference requires it). Every buffer takes its own segment lock
        (:mod:`buffers._lock`): it works from any process, including one that is not a child of
        the run, and the kernel frees it when its holder dies. A lock found under ``name`` in
        this dict is taken first, as well, so reference-style code holding it still excludes.
    capacity : int, optional
        Number of bead ids (``0..capacity-1``); required when creating, checked when attaching.
    name : str
        Identifier of the shared-memory segment.
    namespace : str, optional
        Segment namespace; defaults to ``$MAGACQ_NAMESPACE`` or ``default``.

    Notes
    -----
    Removing a bead does not lower ``max_id_plus_one``, so a new bead never reuses the id of a
    removed one until :meth:`reorder_beads` or :meth:`clear_beads`. Every method is safe from
    any process that attached. Each bead also has a reference flag (:meth:`set_reference`),
    cleared when the bead is removed or the beads are replaced.
    """

    name = "BeadRoiBuffer"
    _KIND = "BeadRoiBuffer"
    # until mapped: close() then has nothing to release
    _shm_info: SegmentHandle
    _shm_data: SegmentHandle
    _shm_occupancy: SegmentHandle
    _info: memoryview | None = None
    _roi_matrix: np.ndarray | None = None
    _occupancy: np.ndarray | None = None
    _reference: np.ndarray | None = None
    _live: np.ndarray | None = None
    _shadow: np.ndarray | None = None
    lock: BufferLock
    #: Tests only: called mid-change, with the lock held and the counter odd.
    _fault_point: Callable[[], None] | None = None
    _info_fields = 4
    _info_size = 8 * _info_fields
    _roi_dtype = np.dtype(np.uint32)
    _occupancy_dtype = np.dtype(np.uint8)

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Any] | None = None,
        capacity: int | None = None,
        name: str = "BeadRoiBuffer",
        namespace: str | None = None,
    ) -> None:
        self.name = name
        self._creator_pid = os.getpid() if create else None
        if create:
            if capacity is None:
                raise ValueError("capacity must be provided when creating BeadRoiBuffer")
            capacity = _as_int(capacity, "capacity")
            if not 0 < capacity <= _UINT32_MAX:
                raise ValueError(f"capacity must be positive, got {capacity}")
            seg = Segment.create(
                name,
                kind=self._KIND,
                size=2 * capacity * _ROW_BYTES,
                geometry=(capacity,),
                schema=SCHEMA,
                namespace=namespace,
            )
        else:
            geometry = None if capacity is None else (_as_int(capacity, "capacity"),)
            seg = Segment.attach(
                name, kind=self._KIND, schema=SCHEMA, namespace=namespace, geometry=geometry
            )
        self._seg = seg
        try:
            self.lock = make_buffer_lock(
                locks, name, seg.lock_path, self._repair, (seg.words(), _SEQ)
            )
            self._expose_segment(seg, ("_shm_info", "_shm_data", "_shm_occupancy"))
            self._info = seg.words()
            self.capacity: int = seg.geometry[0]
            self._roi_shape = (self.capacity, 4)
            self._roi_nbytes = self.capacity * 4 * self._roi_dtype.itemsize
            self._occupancy_nbytes = self.capacity * self._occupancy_dtype.itemsize
            self._roi_matrix = np.ndarray(self._roi_shape, self._roi_dtype, buffer=seg.payload)
            self._occupancy = np.ndarray(
                (self.capacity,), self._occupancy_dtype, buffer=seg.payload, offset=self._roi_nbytes
            )
            self._reference = np.ndarray(
                (self.capacity,),
                np.uint8,
                buffer=seg.payload,
                offset=self._roi_nbytes + self._occupancy_nbytes,
            )
            table = self.capacity * _ROW_BYTES
            self._live = np.ndarray((table,), np.uint8, buffer=seg.payload)
            self._shadow = np.ndarray((table,), np.uint8, buffer=seg.payload, offset=table)
            if create:
                self._write_info(_CAPACITY, self.capacity)
        except BaseException:  # a failed creation leaves nothing behind
            self.close()
            raise

    # --- lifecycle ----------------------------------------------------------------------
    def _drop_views(self) -> None:
        self._roi_matrix = self._occupancy = self._reference = self._live = self._shadow = None
        if self._info is not None:
            self._info.release()
            self._info = None

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
            with self._changing():
                roi_matrix.fill(0)
                occupancy.fill(0)
                self._flags().fill(0)
                roi_matrix[ids] = rois
                occupancy[ids] = 1
                self._write_info(_MAX_ID_PLUS_ONE, int(ids.max()) + 1 if ids.size else 0)
                self._write_info(_ACTIVE_COUNT, ids.size)

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
            with self._changing():
                roi_matrix[ids] = rois
                occupancy[ids] = 1
                self._flags()[ids] = 0
                top = max(self._read_info(_MAX_ID_PLUS_ONE), int(ids.max()) + 1)
                self._write_info(_MAX_ID_PLUS_ONE, top)
                self._write_info(_ACTIVE_COUNT, self._read_info(_ACTIVE_COUNT) + ids.size)

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
            with self._changing():
                roi_matrix[ids] = rois

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
            with self._changing():
                occupancy[present] = 0
                self._flags()[present] = 0
                roi_matrix[present] = 0
                self._write_info(_ACTIVE_COUNT, self._read_info(_ACTIVE_COUNT) - present.size)

    def clear_beads(self) -> None:
        """Remove every bead and reset ``max_id_plus_one``."""
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            with self._changing():
                roi_matrix.fill(0)
                occupancy.fill(0)
                self._flags().fill(0)
                self._write_info(_MAX_ID_PLUS_ONE, 0)
                self._write_info(_ACTIVE_COUNT, 0)

    def reorder_beads(self) -> dict[int, int]:
        """Renumber the stored beads ``0..n-1`` in id order; return ``{old_id: new_id}``."""
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            old = np.flatnonzero(occupancy[: self._read_info(_MAX_ID_PLUS_ONE)])
            rois = roi_matrix[old].copy()
            flags = self._flags()
            refs = flags[old].copy()
            with self._changing():
                roi_matrix.fill(0)
                occupancy.fill(0)
                flags.fill(0)
                roi_matrix[: old.size] = rois
                occupancy[: old.size] = 1
                flags[: old.size] = refs
                self._write_info(_MAX_ID_PLUS_ONE, old.size)
                self._write_info(_ACTIVE_COUNT, old.size)
        return {int(o): n for n, o in enumerate(old.tolist())}

    def set_reference(self, ids: Iterable[int], flag: bool = True) -> None:
        """Mark the beads ``ids`` as reference beads (``flag=False``: unmark them).

        A reference bead's motion (drift) is subtracted from the others downstream. ``version``
        grows when a flag changes.

        Raises
        ------
        ValueError
            An id is out of range, repeated, or not a stored bead; nothing changes.
        """
        targets = self._normalize_ids(ids)
        if targets.size == 0:
            return
        with self.lock:
            _roi_matrix, occupancy = self._arrays()
            missing = occupancy[targets] == 0
            if missing.any():
                raise ValueError(f"bead ids do not exist: {targets[missing].tolist()}")
            flags = self._flags()
            value = 1 if flag else 0
            if np.all(flags[targets] == value):
                return
            with self._changing():
                flags[targets] = value

    def reference_ids(self) -> np.ndarray:
        """uint32 ids, ascending, of the stored beads marked as reference."""
        with self.lock:
            flags = self._flags()
            return np.flatnonzero(flags[: self._read_info(_MAX_ID_PLUS_ONE)]).astype(np.uint32)

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
        return self.snapshot_with_reference()[:3]

    def snapshot_with_reference(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(version, ids, rois, reference)`` taken at once.

        ``reference`` is a bool array aligned with ``ids``: True for reference beads.
        """
        with self.lock:
            roi_matrix, occupancy = self._arrays()
            ids = np.flatnonzero(occupancy[: self._read_info(_MAX_ID_PLUS_ONE)])
            return (
                self._read_info(_VERSION),
                ids.astype(np.uint32),
                roi_matrix[ids],
                self._flags()[ids] != 0,
            )

    @property
    def repairs(self) -> int:
        """Changes left half-done by a process that died, rolled back since creation."""
        with self.lock:
            return self._read_info(_REPAIRS)

    # --- changes and their recovery (lock held) ----------------------------------------
    def _flags(self) -> np.ndarray:
        if self._reference is None:
            raise ValueError(f"BeadRoiBuffer {self.name!r} is closed")
        return self._reference

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Save the table to the shadow, mark the change (odd counter), bump ``version``."""
        words = self._words()
        assert self._live is not None and self._shadow is not None
        np.copyto(self._shadow, self._live)
        words[_SHADOW_MAX_ID_PLUS_ONE] = words[_MAX_ID_PLUS_ONE]
        words[_SHADOW_ACTIVE_COUNT] = words[_ACTIVE_COUNT]
        words[_SEQ] += 1  # odd: a change is under way
        release_fence()
        try:
            yield
            if self._fault_point is not None:
                self._fault_point()
        except BaseException:
            self._rollback()
            raise
        words[_VERSION] += 1
        release_fence()
        words[_SEQ] += 1

    def _rollback(self) -> None:
        words = self._words()
        assert self._live is not None and self._shadow is not None
        np.copyto(self._live, self._shadow)
        words[_MAX_ID_PLUS_ONE] = words[_SHADOW_MAX_ID_PLUS_ONE]
        words[_ACTIVE_COUNT] = words[_SHADOW_ACTIVE_COUNT]
        words[_VERSION] += 1  # readers that cached a half-changed table refresh
        release_fence()
        words[_SEQ] += 1  # even again

    def _repair(self) -> None:
        """Run on taking the lock: undo a change whose writer died (counter left odd)."""
        words = self._info
        if words is None or not words[_SEQ] & 1:
            return
        self._rollback()
        words[_REPAIRS] += 1
        _log.warning("BeadRoiBuffer %r: undid a change left half-done by a dead process", self.name)

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
