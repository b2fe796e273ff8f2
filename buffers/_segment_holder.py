"""SegmentHolder: what every buffer class does with the one segment it holds.

A buffer maps one :class:`~buffers._segment.Segment` and takes a
:class:`~buffers._lock.BufferLock` on it. The process that created the segment unlinks it when
the buffer closes; every process detaches the lock and unmaps. A buffer closes at
context-manager exit and when it is collected.
"""

import os
from typing import Self

from ._segment import Segment


class SegmentHolder:
    """Base of the buffer classes: lifecycle around one segment. Subclasses define :meth:`close`.

    A subclass sets ``_creator_pid`` to ``os.getpid()`` when it creates the segment; its
    :meth:`close` drops its own views into the segment, then calls :meth:`_release_segment`.
    """

    #: The process that created the segment (None: attached); only it unlinks the segment.
    _creator_pid: int | None = None

    def close(self) -> None:
        raise NotImplementedError

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
