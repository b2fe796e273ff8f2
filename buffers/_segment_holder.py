"""SegmentHolder: what every buffer class does with the one segment it holds.

A buffer maps one :class:`~buffers._segment.Segment` and takes a
:class:`~buffers._lock.BufferLock` on it. The process that created the segment unlinks it when
the buffer closes; every process detaches the lock and unmaps. A buffer closes at
context-manager exit and when it is collected.

The reference keeps each part of a buffer in a ``SharedMemory`` of its own (``_shm``,
``_ts_shm``, ``_idx_shm``, ``_shm_info``, ...) and code written for it tears a buffer down by
calling ``close()`` and ``unlink()`` on those attributes. Here they are :class:`SegmentHandle`
objects onto the one segment, which do that to the buffer.
"""

import os
import weakref
from typing import Self

from ._segment import Segment, remove_segment


class SegmentHandle:
    """What a reference-style segment attribute (``vb._shm``, ``vb._ts_shm``, ...) holds.

    Attributes
    ----------
    name : str
        The shared-memory name of the buffer's one segment.
    size : int
        Its size in bytes.
    """

    __slots__ = ("_holder", "name", "size")

    def __init__(self, holder: "SegmentHolder", seg: Segment) -> None:
        self._holder = weakref.ref(holder)  # weak: the buffer holds its handles
        self.name = seg.name
        self.size = len(seg.payload) + len(seg.header)

    def close(self) -> None:
        """Close the buffer in this process (its ``close()``: the creator also unlinks)."""
        holder = self._holder()
        if holder is not None:
            holder.close()

    def unlink(self) -> None:
        """Remove the segment's name (idempotent); attached processes keep their mapping."""
        remove_segment(self.name)

    def __repr__(self) -> str:
        return f"SegmentHandle({self.name!r})"


class SegmentHolder:
    """Base of the buffer classes: lifecycle around one segment.

    A subclass sets ``_seg`` to the segment it maps, ``_creator_pid`` to ``os.getpid()`` when
    it created it, and defines :meth:`_drop_views`.
    """

    #: The mapped segment; None until mapped and once closed.
    _seg: Segment | None = None
    #: The process that created the segment (None: attached); only it unlinks the segment.
    _creator_pid: int | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._seg is None

    def close(self) -> None:
        """Unmap; the creating process also unlinks the segment. Idempotent.

        Views a caller still holds (``VideoBuffer.peak_stack``, claims) keep the mapping alive
        until they are dropped; the name is gone at once.
        """
        seg = self._seg
        if seg is None:
            return
        self._seg = None
        self._drop_views()
        try:
            self._release_segment(seg, unlink=self._created_here())
        except BufferError:
            pass  # a caller still holds a view; the mapping goes when the view does

    def _drop_views(self) -> None:
        """Drop this object's views into the segment, before it is unmapped."""
        raise NotImplementedError

    def _expose_segment(self, seg: Segment, attrs: tuple[str, ...]) -> None:
        """Set each of the reference's segment attributes ``attrs`` to a handle on ``seg``.

        They stay set once the buffer is closed: closing one of them again does nothing.
        """
        handle = SegmentHandle(self, seg)
        for attr in attrs:
            setattr(self, attr, handle)

    def _created_here(self) -> bool:
        """True in the process that created the segment (not in a forked child, nor a peer)."""
        return self._creator_pid == os.getpid()

    def _release_segment(self, seg: Segment, *, unlink: bool) -> None:
        """Detach the lock (if taken), unlink ``seg`` if asked, and unmap it.

        The caller has dropped its views into ``seg`` first; one still held elsewhere makes the
        unmap raise BufferError.
        """
        lock = self.__dict__.get("lock")
        if lock is not None:
            lock.detach()
        if unlink:
            seg.unlink()
        seg.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful left to do
            pass
