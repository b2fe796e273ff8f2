"""ZLUTSweepDataset: the radial profiles captured while the focus stage sweeps, for the Z-LUT.

One :class:`~buffers._segment.Segment` holds six aligned column arrays (bead id, step index,
timestamp, motor Z, validity, profile), each starting on a 64-byte boundary; the eight info
fields of the reference (schema version, state, geometry, count) are the segment's eight spare
header words. The dataset only appends: it never wraps, and a batch that does not fit raises
:class:`BufferOverflow` with nothing written. Rows are complete before ``count`` covers them and
never change afterwards, so a reader's copy of the first ``count`` rows is never torn.
"""

import os
from typing import Any

import numpy as np

from ._errors import BufferOverflow, DatasetNotReadyError
from ._lock import BufferLock, make_buffer_lock
from ._segment import Segment, SegmentNotReady, default_namespace
from ._segment_holder import SegmentHolder

_ALIGN = 64


class DatasetAbsentError(DatasetNotReadyError, FileNotFoundError):
    """No dataset of that name exists (not created yet, or already destroyed).

    A DatasetNotReadyError, as the reference raises, and a FileNotFoundError.
    """


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _integers(values: Any, field: str, high: int) -> np.ndarray:
    """``values`` as a 1-D int64 array of integers in ``0..high``; ValueError otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{field} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise ValueError(f"{field} must hold integers")
    elif arr.dtype.kind not in "biu" and arr.size:
        raise ValueError(f"{field} must hold integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() > high):
        raise ValueError(f"{field} must lie in 0..{high}")
    return out


def _reals(values: Any, field: str, ndim: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != ndim:
        raise ValueError(f"{field} must be {ndim}-D, got shape {arr.shape}")
    if arr.size and not np.can_cast(arr.dtype, np.float64, casting="same_kind"):
        raise ValueError(f"{field} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


class ZLUTSweepDataset(SegmentHolder):
    """Temporary shared-memory dataset used for Z-LUT sweep capture.

    Create it with :meth:`create` (the workflow owner) and open it elsewhere with
    :meth:`attach`. One row per captured profile: bead id, step index, timestamp, motor Z,
    validity and the radial profile. The owner's :meth:`destroy` (also :meth:`close` and
    context-manager exit, for the owner) marks it DESTROYED and unlinks it; a peer's
    :meth:`close` only detaches.

    Parameters
    ----------
    create : bool
        True to allocate the dataset; False to attach to an existing one.
    locks : dict or None
        Optional (the reference requires it): every dataset takes its own segment lock
        (:mod:`buffers._lock`), which works from any process and is freed by the kernel when
        its holder dies; a lock under ``name`` in this dict is taken first, as well.
    capacity, profile_length, n_steps, n_beads, profiles_per_bead : int, optional
        Geometry; all required (positive) when creating. ``capacity`` and ``profile_length``
        are checked when attaching if given.
    name : str
        Identifier of the shared-memory segment.
    namespace : str, optional
        Segment namespace; defaults to ``$MAGACQ_NAMESPACE`` or ``default``.
    """

    NAME = "ZLUTSweepDataset"
    STATE_ABSENT = 0
    STATE_CREATING = 1
    STATE_READY = 2
    STATE_CAPTURING = 3
    STATE_COMPLETE = 4
    STATE_DETACHING = 5
    STATE_FAILED = 6
    STATE_DESTROYED = 7

    _INFO_FIELDS = {
        "schema_version": 0,
        "state": 1,
        "capacity": 2,
        "profile_length": 3,
        "n_steps": 4,
        "n_beads": 5,
        "profiles_per_bead": 6,
        "count": 7,
    }
    _INFO_SIZE = 8 * len(_INFO_FIELDS)
    _SCHEMA_VERSION = 1
    _UINT64_DTYPE = np.dtype(np.uint64)
    _BEAD_ID_DTYPE = np.dtype(np.uint32)
    _STEP_INDEX_DTYPE = np.dtype(np.uint32)
    _TIMESTAMP_DTYPE = np.dtype(np.float64)
    _MOTOR_Z_DTYPE = np.dtype(np.float64)
    _VALID_DTYPE = np.dtype(np.uint8)
    _PROFILE_DTYPE = np.dtype(np.float64)
    # The reference's per-array segments are regions of one segment here; the names stay.
    _SEGMENT_SUFFIXES = {
        "info": " Info",
        "bead_ids": " BeadIds",
        "step_indices": " StepIndices",
        "timestamps": " Timestamps",
        "motor_z": " MotorZ",
        "valid": " Valid",
        "profiles": " Profiles",
    }
    _SHM_ATTRS = (
        "_shm_profiles",
        "_shm_valid",
        "_shm_motor_z",
        "_shm_timestamps",
        "_shm_step_indices",
        "_shm_bead_ids",
        "_shm_info",
    )
    _ARRAYS = ("_bead_ids", "_step_indices", "_timestamps", "_motor_z", "_valid", "_profiles")
    _KIND = "ZLUTSweepDataset"
    _ATTACHABLE = (STATE_READY, STATE_CAPTURING, STATE_COMPLETE, STATE_FAILED)

    name = NAME
    _closed = False
    # views into the one segment, set by _map (None once closed; methods check _closed first)
    _bead_ids: np.ndarray
    _step_indices: np.ndarray
    _timestamps: np.ndarray
    _motor_z: np.ndarray
    _valid: np.ndarray
    _profiles: np.ndarray

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Any] | None = None,
        capacity: int | None = None,
        profile_length: int | None = None,
        n_steps: int | None = None,
        n_beads: int | None = None,
        profiles_per_bead: int | None = None,
        name: str = NAME,
        namespace: str | None = None,
    ) -> None:
        self.name = name
        self._locks = locks
        self._owns_shared_memory = create
        self._creator_pid = os.getpid() if create else None
        self._closed = True  # until mapped
        self._seg: Segment | None = None
        self._info: memoryview | None = None
        for attr in self._SHM_ATTRS + self._ARRAYS:
            setattr(self, attr, None)
        if create:
            geometry = self._validate_create_parameters(
                capacity=capacity,
                profile_length=profile_length,
                n_steps=n_steps,
                n_beads=n_beads,
                profiles_per_bead=profiles_per_bead,
            )
            seg = Segment.create(
                name,
                kind=self._KIND,
                schema=self._SCHEMA_VERSION,
                size=self._layout(geometry["capacity"], geometry["profile_length"])[1],
                geometry=tuple(geometry.values()),
                namespace=namespace,
            )
        else:
            seg = self._attach_segment(name, namespace)
        try:
            self._map(seg)
            self._closed = False
            if create:
                self._write_info("schema_version", self._SCHEMA_VERSION)
                self._write_info("state", self.STATE_CREATING)
                for field, value in geometry.items():
                    self._write_info(field, value)
                self._write_info("count", 0)
                self._timestamps.fill(np.nan)
                self._motor_z.fill(np.nan)
                self._profiles.fill(np.nan)
                self._write_info("state", self.STATE_READY)
            else:
                self._validate_attach_ready_state()
                self._validate_schema_version()
                for field, given in (("capacity", capacity), ("profile_length", profile_length)):
                    if given is not None and int(given) != getattr(self, field):
                        raise ValueError(f"{field} does not match existing ZLUTSweepDataset")
        except BaseException:
            self._cleanup_shared_memory_segments(unlink=create)
            self._closed = True
            raise

    @classmethod
    def create(
        cls,
        *,
        locks: dict[str, Any] | None = None,
        capacity: int,
        profile_length: int,
        n_steps: int,
        n_beads: int,
        profiles_per_bead: int,
        name: str = NAME,
        namespace: str | None = None,
    ) -> "ZLUTSweepDataset":
        """Allocate a new dataset in state READY; this process owns (and must destroy) it."""
        return cls(
            create=True,
            locks=locks,
            capacity=capacity,
            profile_length=profile_length,
            n_steps=n_steps,
            n_beads=n_beads,
            profiles_per_bead=profiles_per_bead,
            name=name,
            namespace=namespace,
        )

    @classmethod
    def attach(
        cls, *, locks: dict[str, Any] | None = None, name: str = NAME, namespace: str | None = None
    ) -> "ZLUTSweepDataset":
        """Open an existing dataset.

        Raises
        ------
        DatasetNotReadyError
            The dataset is being created, detaching or destroyed; or it does not exist (then a
            ``DatasetAbsentError``, also a FileNotFoundError).
        SegmentError
            The segment is of another kind or schema version (a ValueError).
        """
        return cls(create=False, locks=locks, name=name, namespace=namespace)

    # --- mapping ------------------------------------------------------------------------
    @classmethod
    def _layout(cls, capacity: int, profile_length: int) -> tuple[dict[str, int], int]:
        """Byte offset of each array in the payload, and the payload size."""
        sizes = {
            "_bead_ids": capacity * cls._BEAD_ID_DTYPE.itemsize,
            "_step_indices": capacity * cls._STEP_INDEX_DTYPE.itemsize,
            "_timestamps": capacity * cls._TIMESTAMP_DTYPE.itemsize,
            "_motor_z": capacity * cls._MOTOR_Z_DTYPE.itemsize,
            "_valid": capacity * cls._VALID_DTYPE.itemsize,
            "_profiles": capacity * profile_length * cls._PROFILE_DTYPE.itemsize,
        }
        offsets, end = {}, 0
        for attr, size in sizes.items():
            offsets[attr] = end
            end += _aligned(size)
        return offsets, end

    def _attach_segment(self, name: str, namespace: str | None) -> Segment:
        try:
            return Segment.attach(
                name, kind=self._KIND, schema=self._SCHEMA_VERSION, namespace=namespace
            )
        except FileNotFoundError:
            raise DatasetAbsentError(
                f"no ZLUTSweepDataset {name!r} in namespace "
                f"{namespace or default_namespace()!r} (not created yet, or destroyed)"
            ) from None
        except SegmentNotReady as exc:
            raise DatasetNotReadyError(str(exc)) from None

    def _map(self, seg: Segment) -> None:
        self._seg = seg
        # rows are complete before ``count`` covers them: a writer that dies mid-write leaves
        # nothing to repair
        self.lock: BufferLock = make_buffer_lock(self._locks, self.name, seg.lock_path)
        self._expose_segment(seg, self._SHM_ATTRS)
        self._info = seg.words()
        capacity, profile_length, n_steps, n_beads, per_bead = seg.geometry[:5]
        self.capacity: int = capacity
        self.profile_length: int = profile_length
        self.n_steps: int = n_steps
        self.n_beads: int = n_beads
        self.profiles_per_bead: int = per_bead
        offsets, _ = self._layout(capacity, profile_length)
        dtypes: tuple[np.dtype, ...] = (
            self._BEAD_ID_DTYPE,
            self._STEP_INDEX_DTYPE,
            self._TIMESTAMP_DTYPE,
            self._MOTOR_Z_DTYPE,
            self._VALID_DTYPE,
            self._PROFILE_DTYPE,
        )
        for attr, dtype in zip(self._ARRAYS, dtypes, strict=True):
            shape = (capacity, profile_length) if attr == "_profiles" else (capacity,)
            array = np.ndarray(shape, dtype, buffer=seg.payload, offset=offsets[attr])
            setattr(self, attr, array)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"ZLUTSweepDataset {self.name!r} is closed")

    # --- state --------------------------------------------------------------------------
    @property
    def state(self) -> int:
        """One of the ``STATE_*`` constants."""
        self._check_open()
        return self._read_info("state")

    def set_state(self, value: int) -> None:
        """Set the workflow state (a ``STATE_*`` constant); ValueError for anything else."""
        value = int(value)
        if not self.STATE_ABSENT <= value <= self.STATE_DESTROYED:
            raise ValueError(f"unknown ZLUTSweepDataset state {value}")
        self._check_open()
        with self.lock:
            self._write_info("state", value)

    # --- data ---------------------------------------------------------------------------
    def write(
        self,
        *,
        bead_ids: np.ndarray,
        step_indices: np.ndarray,
        timestamps: np.ndarray,
        motor_z_values: np.ndarray,
        valid_flags: np.ndarray,
        profiles: np.ndarray,
    ) -> None:
        """Append a batch of aligned rows.

        Raises
        ------
        ValueError
            Misaligned lengths, wrong profile length, or values of the wrong kind or range.
        BufferOverflow
            The batch does not fit in the remaining capacity. Nothing is written either way.
        RuntimeError
            The dataset is closed.
        """
        self._check_open()
        ids = _integers(bead_ids, "bead_ids", np.iinfo(self._BEAD_ID_DTYPE).max)
        steps = _integers(step_indices, "step_indices", np.iinfo(self._STEP_INDEX_DTYPE).max)
        valid = _integers(valid_flags, "valid_flags", 1)
        ts = _reals(timestamps, "timestamps", 1)
        z = _reals(motor_z_values, "motor_z_values", 1)
        prof = _reals(profiles, "profiles", 2)
        n = ids.shape[0]
        for field, arr in (
            ("step_indices", steps),
            ("timestamps", ts),
            ("motor_z_values", z),
            ("valid_flags", valid),
        ):
            if arr.shape != (n,):
                raise ValueError(f"{field} must have shape ({n},), got {arr.shape}")
        if prof.shape != (n, self.profile_length):
            raise ValueError(f"profiles must have shape ({n}, {self.profile_length})")
        with self.lock:
            self._check_open()
            count = self._read_info("count")
            end = count + n
            if end > self.capacity:
                raise BufferOverflow(
                    f"ZLUTSweepDataset {self.name!r}: {n} rows do not fit "
                    f"({self.capacity - count} of {self.capacity} free)"
                )
            self._bead_ids[count:end] = ids
            self._step_indices[count:end] = steps
            self._timestamps[count:end] = ts
            self._motor_z[count:end] = z
            self._valid[count:end] = valid
            self._profiles[count:end] = prof
            self._write_info("count", end)

    def peak(self) -> dict[str, np.ndarray]:
        """Copies of every written row: bead_ids, step_indices, timestamps, motor_z_values,
        valid_flags, profiles."""
        self._check_open()
        with self.lock:
            n = self._read_info("count")
            return {
                "bead_ids": self._bead_ids[:n].copy(),
                "step_indices": self._step_indices[:n].copy(),
                "timestamps": self._timestamps[:n].copy(),
                "motor_z_values": self._motor_z[:n].copy(),
                "valid_flags": self._valid[:n].copy(),
                "profiles": self._profiles[:n].copy(),
            }

    def read_preview(self, selected_bead_id: int | None = None) -> dict[str, object]:
        """A summary for live display, and the rows of one bead.

        The bead is ``selected_bead_id`` if it has rows, else the lowest bead id that has.
        Keys: state, count, capacity, n_steps, n_beads, profiles_per_bead, profile_length,
        available_bead_ids, selected_bead_id, motor_z_min, motor_z_max, step_indices,
        motor_z_values, profiles.
        """
        self._check_open()
        with self.lock:
            n = self._read_info("count")
            state = self._read_info("state")
            bead_ids = self._bead_ids[:n]
            motor_z = self._motor_z[:n]
            available = [int(b) for b in np.unique(bead_ids)]
            selected = None
            if available:
                wanted = None if selected_bead_id is None else int(selected_bead_id)
                selected = wanted if wanted in available else available[0]
            finite = motor_z[np.isfinite(motor_z)]
            rows = bead_ids == selected if selected is not None else np.zeros(n, bool)
            preview: dict[str, object] = {
                "state": state,
                "count": n,
                "capacity": self.capacity,
                "n_steps": self.n_steps,
                "n_beads": self.n_beads,
                "profiles_per_bead": self.profiles_per_bead,
                "profile_length": self.profile_length,
                "available_bead_ids": available,
                "selected_bead_id": selected,
                "motor_z_min": float(finite.min()) if finite.size else None,
                "motor_z_max": float(finite.max()) if finite.size else None,
                "step_indices": self._step_indices[:n][rows],
                "motor_z_values": motor_z[rows],
                "profiles": self._profiles[:n][rows],
            }
        return preview

    def get_count(self) -> int:
        """Number of rows written."""
        self._check_open()
        with self.lock:
            return self._read_info("count")

    def get_capacity(self) -> int:
        """Most rows the dataset can hold."""
        return self.capacity

    # --- teardown -----------------------------------------------------------------------
    def close(self) -> None:
        """Detach; in the creating process this is :meth:`destroy`. Idempotent."""
        if self._closed:
            return
        if self._owns_shared_memory and self._created_here():
            self.destroy()
        else:
            self._cleanup_shared_memory_segments(unlink=False)
            self._closed = True

    def destroy(self) -> None:
        """Mark the dataset DESTROYED, unlink it and detach (creating process only)."""
        if not self._owns_shared_memory or not self._created_here():
            raise RuntimeError("only the creating process may destroy a ZLUTSweepDataset")
        if self._closed:
            return
        self.set_state(self.STATE_DESTROYED)
        self._cleanup_shared_memory_segments(unlink=True)
        self._closed = True

    # --- helpers of the reference -------------------------------------------------------
    def _validate_schema_version(self) -> None:
        version = self._read_info("schema_version")
        if version == 0:
            raise DatasetNotReadyError("ZLUTSweepDataset schema metadata is not initialized yet")
        if version != self._SCHEMA_VERSION:
            raise ValueError(f"unsupported ZLUTSweepDataset schema version: {version}")

    def _validate_attach_ready_state(self) -> None:
        state = self._read_info("state")
        if state not in self._ATTACHABLE:
            raise DatasetNotReadyError(f"ZLUTSweepDataset is not attachable in state {state}")

    def _read_info(self, field: str) -> int:
        if self._info is None:
            raise RuntimeError(f"ZLUTSweepDataset {self.name!r} is closed")
        return int(self._info[self._INFO_FIELDS[field]])

    def _write_info(self, field: str, value: int) -> None:
        if self._info is None:
            raise RuntimeError(f"ZLUTSweepDataset {self.name!r} is closed")
        self._info[self._INFO_FIELDS[field]] = int(value)

    @classmethod
    def _validate_create_parameters(
        cls,
        *,
        capacity: int | None,
        profile_length: int | None,
        n_steps: int | None,
        n_beads: int | None,
        profiles_per_bead: int | None,
    ) -> dict[str, int]:
        required = {
            "capacity": capacity,
            "profile_length": profile_length,
            "n_steps": n_steps,
            "n_beads": n_beads,
            "profiles_per_bead": profiles_per_bead,
        }
        missing = [field for field, value in required.items() if value is None]
        if missing:
            raise ValueError(
                f"missing required ZLUTSweepDataset creation parameters: {', '.join(missing)}"
            )
        validated: dict[str, int] = {}
        for field, value in required.items():
            if value is None or int(value) != value or value <= 0:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
            validated[field] = int(value)
        return validated

    def _cleanup_shared_memory_segments(self, *, unlink: bool) -> None:
        seg = self._seg
        for attr in self._ARRAYS:
            setattr(self, attr, None)
        if self._info is not None:
            self._info.release()
            self._info = None
        self._seg = None
        if seg is not None:
            self._release_segment(seg, unlink=unlink)

    def __repr__(self) -> str:
        return (
            f"ZLUTSweepDataset(name={self.name!r}, capacity={getattr(self, 'capacity', None)}, "
            f"profile_length={getattr(self, 'profile_length', None)})"
        )
