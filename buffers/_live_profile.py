"""LiveProfileBuffer: the latest radial profile of one bead, for live display.

A one-row :class:`~buffers._matrix.MatrixBuffer` (its own segment kind, overwrite-oldest) holds
``timestamp, bead_id, profile_length, samples...``, NaN-padded to ``profile_capacity``. Writes
and reads both hold the segment lock, so a reader never sees half of one profile and half of
another. A spare header word holds :attr:`LiveProfileBuffer.selected_bead_id`: the bead a viewer
wants to see, which the workers read.
"""

from typing import Any

import numpy as np

from ._matrix import _SPARE, MatrixBuffer

_HEAD = 3  # timestamp, bead_id, profile_length


class _ProfileRow(MatrixBuffer):
    """The one-row store behind a LiveProfileBuffer; a segment kind of its own."""

    _KIND = "LiveProfileBuffer"


class LiveProfileBuffer:
    """Shared buffer that stores the latest radial profile for live display.

    Parameters
    ----------
    create : bool
        True to allocate the shared memory; False to attach to an existing buffer.
    locks : dict or None
        Optional; see :class:`~buffers.MatrixBuffer` (a lock under ``name`` is also taken).
    profile_capacity : int, optional
        Most samples a profile may have; required when creating, checked when attaching.
    name : str
        Identifier of the shared-memory segment.
    namespace : str, optional
        Segment namespace; defaults to ``$MAGACQ_NAMESPACE`` or ``default``.
    """

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Any] | None = None,
        profile_capacity: int | None = None,
        name: str = "LiveProfileBuffer",
        namespace: str | None = None,
    ) -> None:
        if create and profile_capacity is None:
            raise ValueError("profile_capacity must be provided when creating LiveProfileBuffer")
        if profile_capacity is not None and int(profile_capacity) <= 0:
            raise ValueError(f"profile_capacity must be positive, got {profile_capacity}")
        shape = None if profile_capacity is None else (1, _HEAD + int(profile_capacity))
        self._buffer = _ProfileRow(
            create=create, locks=locks, name=name, shape=shape, overwrite=True, namespace=namespace
        )
        self.name: str = name
        self.profile_capacity: int = self._buffer.shape[1] - _HEAD
        if create:
            self._buffer._words()[_SPARE] = -1  # no bead selected

    @property
    def selected_bead_id(self) -> int | None:
        """The bead whose profile a viewer wants (None: no preference); any process may set it.

        One header word, read and written without the lock: a worker can check it per frame.

        Raises
        ------
        ValueError
            Setting a negative or non-integer id.
        """
        value = int(self._buffer._words()[_SPARE])
        return None if value < 0 else value

    @selected_bead_id.setter
    def selected_bead_id(self, bead_id: int | None) -> None:
        if bead_id is None:
            value = -1
        else:
            if isinstance(bead_id, bool) or not isinstance(bead_id, int | np.integer):
                raise ValueError(f"selected_bead_id must be an int or None, got {bead_id!r}")
            value = int(bead_id)
            if value < 0:
                raise ValueError(f"selected_bead_id must be >= 0, got {bead_id}")
        self._buffer._words()[_SPARE] = value

    @property
    def lock(self) -> Any:
        """The buffer's lock (see :mod:`buffers._lock`)."""
        return self._buffer.lock

    @property
    def shape(self) -> tuple[int, int]:
        """``(1, 3 + profile_capacity)``."""
        return self._buffer.shape

    def clear(self) -> None:
        """Reset the buffer contents to NaN."""
        self._buffer.write(np.full(self.shape, np.nan))

    def write_profile(self, timestamp: float, bead_id: int, profile: np.ndarray) -> None:
        """Store the latest profile for a bead, replacing the previous one.

        Parameters
        ----------
        timestamp : float
            Timestamp associated with the profile, in seconds.
        bead_id : int
            Bead identifier for the profile.
        profile : numpy.ndarray
            One-dimensional profile samples; at most ``profile_capacity`` of them.

        Raises
        ------
        ValueError
            ``profile`` is not 1-D, not numeric, or longer than ``profile_capacity``.
        """
        samples = np.asarray(profile)
        if samples.ndim != 1:
            raise ValueError(f"profile must be 1-D, got shape {samples.shape}")
        if samples.shape[0] > self.profile_capacity:
            raise ValueError(
                f"profile length {samples.shape[0]} exceeds live buffer capacity "
                f"{self.profile_capacity}"
            )
        if not np.can_cast(samples.dtype, np.float64, casting="same_kind"):
            raise ValueError(f"profile samples must be real numbers, got dtype {samples.dtype}")
        row = np.full(self.shape, np.nan)
        row[0, :_HEAD] = (float(timestamp), int(bead_id), samples.shape[0])
        row[0, _HEAD : _HEAD + samples.shape[0]] = samples
        self._buffer.write(row)

    def peak_unsorted(self) -> np.ndarray:
        """Return the stored row, ``(1, 3 + profile_capacity)``, as a consistent copy."""
        return self._buffer.peak_unsorted()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._buffer.closed

    def close(self) -> None:
        """Unmap the buffer; the creating process also unlinks it. Idempotent."""
        self._buffer.close()

    def __enter__(self) -> "LiveProfileBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LiveProfileBuffer(name={self.name!r}, profile_capacity={self.profile_capacity})"
