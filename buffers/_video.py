"""VideoBuffer: a shared-memory ring of camera frames, grouped in stacks.

One :class:`~buffers._segment.Segment` holds everything: a control block (indices, counters,
waiter counts), a claim table (one row per stack), the same two for each consumer group after
the first, their journal, the groups' names, per-slot sequence counters and frame numbers,
the timestamps, and the frames, page-aligned. Each frame is stored as the camera's row-major
``(height, width)`` bytes, as the reference does; the ``(width, height)`` arrays of the API are
transposes of that.

Three ways to consume, sharing one read index:

- the reference's single-consumer calls (``read_image``, ``peak_stack``, ``read_stack_no_return``);
- ``claim_stack`` / ``release_stack``: N workers each take whole stacks exactly once and hold
  them, zero-copy, until released in any order; the producer never overwrites a held stack;
- ``peak_image``: a torn-free copy of the newest frame for live display (per-slot seqlock).

Consumer groups (opt-in): a buffer created with ``groups=("trackers", "recorder")`` keeps a
read index, unread count and claim table per group, and every group gets every stack:
``claim_stack(group="trackers")`` hands each stack to one tracker, ``claim_stack(group=
"recorder")`` hands the same stacks to the recorder. A stack's slots go back to the producer
only once every group has claimed and released it; until then the producer sees the ring full.
Claims of each group are released in any order, and :meth:`VideoBuffer.reclaim_dead_claims`
requeues a dead consumer's claim for its own group. The single-consumer calls raise
RuntimeError on such a buffer; the status queries take an optional ``group`` (without one: the
group furthest behind). Per-group wake-ups come from ``make_locks(groups=...)``. Without groups
nothing of this runs: the per-frame paths test one empty list.

Producers write with ``write_image_and_timestamp`` (one copy into the slot, streamed for large
frames, see :mod:`buffers._stream`) or zero-copy with ``begin_write`` / ``commit_write``.
Blocking waits use the semaphores that :func:`buffers.make_locks` adds to the ``locks`` dict;
without them they fall back to short sleeps.

Every critical section holds the segment lock (:mod:`buffers._lock`), which any process can take
and the kernel frees when its holder dies. A section that changes the control block first copies
it, with the claim tables, to a journal and sets a dirty word; the next process to take the lock
after a holder died mid-section restores the journal (:attr:`VideoBuffer.repairs` counts it). A
slot reserved by ``begin_write`` in a process that has died is taken back by the next
``begin_write``; stacks claimed by dead processes by :meth:`VideoBuffer.reclaim_dead_claims`.
"""

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dtypes import int_to_uint_dtype
from ._errors import BufferOverflow, BufferUnderflow
from ._groups import NAME_BYTES, check_groups, decode_groups, encode_groups, ready_key
from ._lock import BufferLock, make_buffer_lock
from ._segment import (
    HEADER_SIZE,
    Segment,
    SegmentError,
    SegmentNotReady,
    _owner_alive,
    _start_ticks,
)
from ._segment_holder import SegmentHolder
from ._stream import slots_stream, stream_copy
from ._sync import READY, SPACE

KIND = "VideoBuffer"
SCHEMA = 3  # 2: journal, pending writer's pid; 3: consumer groups

# control block words
_R, _W, _COUNT, _TOTAL, _PENDING, _READY_WAITERS, _SPACE_WAITERS, _REQUEUED, _TOKEN = range(9)
_PEND_PID, _PEND_TICKS, _DIRTY, _REPAIRS = range(9, 13)
_N_CTL = 16
# claim table columns
_STATE, _PID, _TICKS, _CTOKEN, _FIRST = range(5)
_N_CLAIM = 5
FREE, CLAIMED, REQUEUED = 0, 1, 2

_POLL_S = 0.0005  # sleep slice when the locks dict carries no semaphores
_WAKE_S = 0.05  # longest semaphore wait before re-checking (a signaller may die before posting)
_FULL = "VideoBuffer is full (unread or claimed frames fill the ring)"
_POLL_SPIN_S = 200e-6  # check_read_stack: False this long in a row, a poller then naps ...
_POLL_NAP_S = 1e-3  # ... a quarter of that time per call, at most this
_PEAK_TRIES = 1000  # peak_image: the newest slot keeps changing under us -> none complete

_log = logging.getLogger("buffers")
_me: tuple[int, int] = (0, 0)


def _identity() -> tuple[int, int]:
    """This process's (pid, start ticks), cached per process."""
    global _me
    pid = os.getpid()
    if _me[0] != pid:
        _me = (pid, _start_ticks(pid))
    return _me


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class StackClaim:
    """A stack held by one consumer until :meth:`VideoBuffer.release_stack`.

    Attributes
    ----------
    index : int
        Stack slot in the ring.
    stack : numpy.ndarray
        Zero-copy ``(width, height, n_images)`` view of the frames; valid until released.
    timestamps : numpy.ndarray
        float64 timestamps of the frames (a copy).
    frame_numbers : numpy.ndarray
        int64 sequence number of each frame since the buffer was created (a copy).
    token : int
        Identifies this claim; a requeued or dropped claim can no longer be released.
    group : str or None
        The consumer group that claimed it (None: a buffer without groups).
    """

    index: int
    stack: np.ndarray = field(repr=False)
    timestamps: np.ndarray = field(repr=False)
    frame_numbers: np.ndarray = field(repr=False)
    token: int
    group: str | None = None


class _Change:
    """A section that changes the control block: journal it first, mark it dirty meanwhile."""

    __slots__ = ("_ctl", "_journal", "_state")

    def __init__(self, state: memoryview, journal: memoryview, ctl: memoryview) -> None:
        self._state, self._journal, self._ctl = state, journal, ctl

    def __enter__(self) -> None:
        self._journal[:] = self._state
        self._ctl[_DIRTY] = 1

    def __exit__(self, *exc: object) -> None:
        # Python exceptions are raised before anything changes; only a death leaves it dirty
        self._ctl[_DIRTY] = 0


class VideoBuffer(SegmentHolder):
    """Shared memory ring buffer for video data.

    Parameters
    ----------
    create : bool
        True to allocate the shared memory; False to attach to an existing buffer.
    locks : dict or None
        Optional (the reference requires a Lock under ``"VideoBuffer"``). May hold the
        ``"VideoBuffer.ready"`` / ``"VideoBuffer.space"`` semaphores that
        :func:`buffers.make_locks` adds, for blocking waits that use no CPU (without them,
        waits poll). The buffer always takes its own segment lock (:mod:`buffers._lock`),
        which works from any process and is freed by the kernel if its holder dies; a Lock
        under ``"VideoBuffer"`` is taken first, as well, for reference-style code.
    n_stacks, width, height, n_images, bits : int, optional
        Ring geometry; required when creating. When attaching, any given must match.
    groups : sequence of str, optional
        Consumer groups (see the module's docstring), e.g. ``("trackers", "recorder")``: a
        stack is freed for the producer once every group has claimed and released it. Stored
        in the buffer: attaching learns them (any given must match). None: no groups.
    namespace : str, optional
        Segment namespace (default: ``$MAGACQ_NAMESPACE`` or ``"default"``).

    Raises
    ------
    ValueError
        Missing or invalid geometry, or invalid group names.
    FileExistsError
        Creating while a live process owns the buffer in this namespace.
    FileNotFoundError, SegmentError
        Attaching to a buffer that does not exist or is not a matching VideoBuffer.

    Notes
    -----
    Consumer groups, for trackers that share the stacks and a recorder that reads them all::

        locks = make_locks(groups=("trackers", "recorder"))
        vb = VideoBuffer(create=True, locks=locks, n_stacks=8, width=512, height=512,
                         n_images=10, bits=16, groups=("trackers", "recorder"))
        claim = vb.claim_stack(timeout=None, group="recorder")  # in the recorder
        ...                                                      # write claim.stack
        vb.release_stack(claim)  # the slots are free once the trackers released them too
    """

    name: str = "VideoBuffer"
    lock: BufferLock
    _idle_since = 0.0  # check_read_stack: when it began answering False (0: it did not)
    #: Tests only: called in commit_write with the lock held, half-way through the change.
    _fault_point: Callable[[], None] | None = None

    def __init__(
        self,
        *,
        create: bool,
        locks: dict[str, Any] | None = None,
        n_stacks: int | None = None,
        width: int | None = None,
        height: int | None = None,
        n_images: int | None = None,
        bits: int | None = None,
        groups: Sequence[str] | None = None,
        namespace: str | None = None,
    ) -> None:
        locks = {} if locks is None else locks
        self._space_sem = locks.get(self.name + SPACE)
        given = (n_stacks, width, height, n_images, bits)
        wanted = None if groups is None else check_groups(groups)
        if create:
            if any(v is None for v in given):
                raise ValueError(
                    "VideoBuffer misconfigured: creating needs all of "
                    "n_stacks, width, height, n_images and bits"
                )
            geometry = tuple(int(v) for v in given)  # type: ignore[arg-type]
            if any(v <= 0 for v in geometry):
                raise ValueError(f"VideoBuffer geometry must be positive, got {geometry}")
            int_to_uint_dtype(geometry[4])
            self.groups: tuple[str, ...] = wanted or ()
            size = self._layout(*geometry, len(self.groups))
            seg = Segment.create(
                self.name,
                kind=KIND,
                size=size,
                geometry=(*geometry, len(self.groups)),
                schema=SCHEMA,
                namespace=namespace,
                populate=True,  # the frames' pages now, not as faults in the first ring pass
            )
        else:
            seg = Segment.attach(
                self.name, kind=KIND, schema=SCHEMA, namespace=namespace, populate=True
            )
            geometry = seg.geometry[:5]
            wrong = [
                (g, v) for g, v in zip(geometry, given, strict=True) if v is not None and g != v
            ]
            if wrong:
                seg.close()
                raise SegmentError(
                    f"VideoBuffer has geometry (n_stacks, width, height, "
                    f"n_images, bits) = {geometry}, not {given}"
                )
            self._layout(*geometry, seg.geometry[5])
            start = self._off_names
            self.groups = decode_groups(bytes(seg.payload[start : start + self._names_bytes]))
            if "" in self.groups:  # the creator has not written them yet
                seg.close()
                raise SegmentNotReady("VideoBuffer is still being created (no group names yet)")
            if wanted is not None and wanted != self.groups:
                seg.close()
                raise SegmentError(f"VideoBuffer has consumer groups {self.groups}, not {wanted}")
        self._group_index = {g: i for i, g in enumerate(self.groups)}
        self._ready_sems = (
            [locks.get(ready_key(self.name, g)) for g in self.groups]
            if self.groups
            else [locks.get(self.name + READY)]
        )
        self._ready_sem = self._ready_sems[0]
        self._seg = seg
        self._deferred: list[Any] = []  # wake-ups to post once the lock is released
        self._creator_pid = os.getpid() if create else None
        try:
            if create and self.groups:
                names = encode_groups(self.groups)
                seg.payload[self._off_names : self._off_names + len(names)] = names
            self._map(seg)
            self.lock = make_buffer_lock(
                locks, self.name, seg.fileno(), self._repair, (self._ctl_mv, _DIRTY)
            )
        except BaseException:
            self._drop_views()
            self._release_segment(seg, unlink=create)
            raise

    # --- layout -------------------------------------------------------------------------
    def _layout(
        self, n_stacks: int, width: int, height: int, n_images: int, bits: int, n_groups: int
    ) -> int:
        """Set the geometry attributes and offsets; return the payload size."""
        self.n_stacks = n_stacks
        self.stack_shape = (width, height, n_images)
        self.image_shape = (width, height)
        self.dtype = np.dtype(int_to_uint_dtype(bits))
        self.itemsize = self.dtype.itemsize
        self.n_images = n_images
        self.n_total_images = n_images * n_stacks
        self.image_size = width * height * self.itemsize
        self.stack_size = self.image_size * n_images
        self.buffer_size = self.stack_size * n_stacks
        n = self.n_total_images
        self._off_claims = _N_CTL * 8
        # groups after the first: a block each, laid out as the control block + claim table
        self._group_block = _N_CTL + n_stacks * _N_CLAIM
        # control block + claim table (+ those of the groups after the first), in words
        self._n_state = self._group_block * max(n_groups, 1)
        self._off_journal = self._n_state * 8
        self._off_names = self._off_journal + self._n_state * 8
        self._names_bytes = n_groups * NAME_BYTES
        self._off_seq = _round_up(self._off_names + self._names_bytes, 64)
        self._off_fnum = self._off_seq + n * 8
        self._off_ts = self._off_fnum + n * 8
        # frames start on a page boundary of the mapping (the header comes first)
        self._off_frames = _round_up(HEADER_SIZE + self._off_ts + n * 8, 4096) - HEADER_SIZE
        return self._off_frames + self.buffer_size

    def _map(self, seg: Segment) -> None:
        p, n = seg.payload, self.n_total_images
        w, h = self.image_shape
        self._ctl = np.frombuffer(p, np.int64, _N_CTL, 0)
        self._claims = np.frombuffer(p, np.int64, self.n_stacks * _N_CLAIM, self._off_claims)
        self._claims = self._claims.reshape(self.n_stacks, _N_CLAIM)
        self._state = np.frombuffer(p, np.int64, self._n_state, 0)
        self._journal = np.frombuffer(p, np.int64, self._n_state, self._off_journal)
        self._ctl_mv = p[: _N_CTL * 8].cast("q")
        # per consumer group, its control words (of which it uses _R, _COUNT, _READY_WAITERS,
        # _REQUEUED; the first group's are the control block) and claim table
        self._gctl = [self._ctl_mv]
        self._gclaims = [self._claims]
        for g in range(1, len(self.groups)):
            off = g * self._group_block * 8
            self._gctl.append(p[off : off + _N_CTL * 8].cast("q"))
            rows = np.frombuffer(p, np.int64, self.n_stacks * _N_CLAIM, off + _N_CTL * 8)
            self._gclaims.append(rows.reshape(self.n_stacks, _N_CLAIM))
        self._others = self._gctl[1:]  # the per-frame paths test this alone without groups
        self._change = _Change(
            p[: self._n_state * 8].cast("q"),
            p[self._off_journal : self._off_journal + self._n_state * 8].cast("q"),
            self._ctl_mv,
        )
        self._seq = np.frombuffer(p, np.int64, n, self._off_seq)
        # the same words as memoryviews, for the per-frame paths (plain ints, no numpy scalars)
        self._claims_mv = p[self._off_claims : self._off_journal].cast("q")
        self._seq_mv = p[self._off_seq : self._off_seq + n * 8].cast("q")
        self._fnum_mv = p[self._off_fnum : self._off_fnum + n * 8].cast("q")
        self._ts_mv = p[self._off_ts : self._off_ts + n * 8].cast("d")
        self._fnum = np.frombuffer(p, np.int64, n, self._off_fnum)
        self._ts = np.frombuffer(p, np.float64, n, self._off_ts)
        raw = np.frombuffer(p, np.uint8, self.buffer_size, self._off_frames)
        self._frames_u8 = raw.reshape(n, self.image_size)
        self._frames = raw.view(self.dtype).reshape(n, h, w)  # row-major camera frames
        self._streams = slots_stream(self._frames_u8)
        # the reference's private names, as views into the one segment
        self._expose_segment(seg, ("_shm_info", "_shm", "_ts_shm", "_idx_shm"))
        self._buf = self._frames_u8.reshape(-1).data
        self._ts_buf = self._ts.data
        self._idx_buf = self._ctl.data

    # --- teardown -----------------------------------------------------------------------
    def _drop_views(self) -> None:
        for attr in (
            "_ctl",
            "_claims",
            "_state",
            "_journal",
            "_ctl_mv",
            "_gctl",
            "_gclaims",
            "_others",
            "_claims_mv",
            "_seq_mv",
            "_fnum_mv",
            "_ts_mv",
            "_change",
            "_seq",
            "_fnum",
            "_ts",
            "_frames_u8",
            "_frames",
            "_buf",
            "_ts_buf",
            "_idx_buf",
        ):
            self.__dict__.pop(attr, None)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"level={self._ctl[_COUNT]}/{self.n_total_images}"
        return f"VideoBuffer(stack_shape={self.stack_shape}, dtype={self.dtype}, {state})"

    # --- the reference's private index helpers --------------------------------------------
    def _get_count_index(self) -> int:
        return int(self._ctl[_COUNT])

    def _get_read_index(self) -> int:
        return int(self._ctl[_R])

    def _get_write_index(self) -> int:
        return int(self._ctl[_W])

    def _set_count_index(self, value: int) -> None:
        self._ctl[_COUNT] = value

    def _set_read_index(self, value: int) -> None:
        self._ctl[_R] = value % self.n_total_images

    def _set_write_index(self, value: int) -> None:
        self._ctl[_W] = value % self.n_total_images

    def _check_read(self, value: int) -> None:
        self._single_consumer()
        if value > self._ctl[_COUNT]:
            raise BufferUnderflow(
                f"VideoBuffer holds {self._ctl[_COUNT]} unread frames, {value} needed"
            )

    def _check_write(self, value: int) -> None:
        if not self._can_write(value):
            raise BufferOverflow(_FULL)

    def _get_timestamps(self, read: int, length: int) -> np.ndarray:
        return self._ts[read : read + length]

    def _set_timestamp(self, write: int, timestamp: float) -> None:
        self._ts[write] = timestamp

    # --- internals (call with the lock held) -------------------------------------------------
    def _can_write(self, value: int = 1) -> bool:
        c, n = self._ctl_mv, self.n_total_images
        if c[_COUNT] + value > n:
            return False
        w, claims, n_images = c[_W], self._claims_mv, self.n_images
        for k in range(value):
            if claims[((w + k) % n) // n_images * _N_CLAIM + _STATE] != FREE:
                return False
        return not self._others or self._others_can_write(w, value)

    def _others_can_write(self, w: int, value: int) -> bool:
        """Whether every group after the first has read and released the next slots."""
        n = self.n_total_images
        stacks = [((w + k) % n) // self.n_images for k in range(value)]
        return all(
            gc[_COUNT] + value <= n and not claims[stacks, _STATE].any()
            for gc, claims in zip(self._others, self._gclaims[1:], strict=True)
        )

    def _signal(self, sem: Any, waiters_word: int, ctl: memoryview | None = None) -> None:
        """Decide (lock held) to wake one waiter, if any, without piling up tokens.

        The post itself waits for :meth:`_flush`, after the lock is released: a waiter woken
        while the signaller still holds the lock would only block on it again (a convoy that
        cost the producer ~30 us a frame). Waiters re-check at least every ``_WAKE_S``, so a
        signaller that dies between its section and its post delays a waiter, never strands it.
        """
        waiting = (self._ctl_mv if ctl is None else ctl)[waiters_word]
        if sem is None or waiting <= 0:
            return
        try:
            if sem.get_value() >= waiting:
                return
        except NotImplementedError:  # macOS
            pass
        self._deferred.append(sem)

    def _flush(self) -> None:
        """Post the wake-ups that :meth:`_signal` decided on (call after releasing the lock)."""
        deferred = self._deferred
        while deferred:
            try:
                sem = deferred.pop()
            except IndexError:  # another thread flushed it
                return
            sem.release()

    def _wait(
        self, attempt: Any, sem: Any, waiters_word: int, timeout: float | None, group: int = 0
    ) -> Any:
        """Call ``attempt()`` under the lock until it returns non-None or ``timeout`` passes.

        A waiter counts itself in ``waiters_word`` of the control words of group ``group``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        registered = False
        try:
            while True:
                with self.lock, self._change:
                    ctl = self._gctl[group]  # not kept across the wait: close() may unmap
                    if registered:
                        ctl[waiters_word] -= 1
                        registered = False
                    result = attempt()
                    if result is None:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is None or remaining > 0:
                            ctl[waiters_word] += 1
                            registered = True
                if self._deferred:
                    self._flush()
                if result is not None:
                    return result
                if not registered:
                    return None
                if sem is None:
                    time.sleep(_POLL_S if remaining is None else min(_POLL_S, remaining))
                else:
                    sem.acquire(timeout=_WAKE_S if remaining is None else min(_WAKE_S, remaining))
        finally:
            if registered:
                with self.lock, self._change:
                    self._gctl[group][waiters_word] -= 1

    def _stack_view(self, start: int) -> np.ndarray:
        # (n_images, height, width) -> (width, height, n_images), as the reference
        return self._frames[start : start + self.n_images].transpose(2, 1, 0)

    # --- documented API ------------------------------------------------------------------
    def _unread(self, group: str | None = None) -> int:
        """Unread frames, without the lock: a consumer polling it never slows the producer.

        The counter is one aligned 8-byte word that each section changes with one store, so a
        plain read sees it before or after a change, never torn. Only a change left marked in
        progress (the dirty word) by a holder that died may still be rolled back: then the lock
        is free, and taking it (non-blocking; it fails at once while a live holder has it)
        rolls the change back first. With consumer groups: ``group``'s, or (None) the most any
        group has unread.
        """
        c = self._ctl_mv
        if c[_DIRTY] and self.lock.acquire(blocking=False):
            self.lock.release()
        if group is None:
            return max(gc[_COUNT] for gc in self._gctl) if self._others else c[_COUNT]
        return self._gctl[self._group(group)][_COUNT]

    # The status queries take an optional consumer group (see _unread).
    def get_level(self, group: str | None = None) -> float:
        """Return the fraction of the buffer that holds unread frames (without the lock)."""
        return self._unread(group) / self.n_total_images

    def get_unread_stack_count(self, group: str | None = None) -> int:
        """Return the number of full unread stacks currently buffered (without the lock)."""
        return self._unread(group) // self.n_images

    def check_read_stack(self, group: str | None = None) -> bool:
        """Return True when at least one full stack can be read (without the lock).

        A consumer polling this in a loop, as the reference's do, must not take the CPU from
        the producer: False yields it (``sched_yield``), and once False for longer than
        ``_POLL_SPIN_S`` in a row, first sleeps a quarter of the time it has been False, at
        most ``_POLL_NAP_S``: an idle poller uses ~2 % of a core, and a stack that comes after
        a pause is seen late by at most a quarter of the pause (and 1 ms).
        """
        if self._unread(group) >= self.n_images:
            self._idle_since = 0.0
            return True
        now = time.perf_counter()
        if not self._idle_since:
            self._idle_since = now
        if now - self._idle_since < _POLL_SPIN_S:
            os.sched_yield()
        else:
            time.sleep(min(_POLL_NAP_S, (now - self._idle_since) / 4))
        return False

    def peak_image(self) -> tuple[int, memoryview]:
        """Return the newest complete image and its slot index, without taking the lock.

        Unlike the reference, the bytes are a private copy, checked against the slot's
        sequence counter: never a torn or overwritten frame.

        Returns
        -------
        tuple of (int, memoryview)
            Slot index and the frame's row-major bytes; ``np.frombuffer(mv, vb.dtype)
            .reshape(vb.image_shape[::-1]).T`` is the ``(width, height)`` image.

        Raises
        ------
        BufferUnderflow
            No frame has been written yet, or (a one-slot ring) the only slot is being
            rewritten.
        """
        n = self.n_total_images
        for _ in range(_PEAK_TRIES):
            total = int(self._ctl[_TOTAL])
            if total == 0:
                raise BufferUnderflow("VideoBuffer: no frame has been written yet")
            slot = (total - 1) % n
            before = int(self._seq[slot])
            if before != 2 * total:  # being overwritten already: take the new newest
                continue
            data = self._frames_u8[slot].copy()
            if int(self._seq[slot]) == before:
                return slot, memoryview(data)
        # a one-slot ring whose only slot is being (or was last) rewritten, not committed
        raise BufferUnderflow("VideoBuffer: the newest frame is being overwritten")

    def peak_stack(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the next unread stack without advancing the read index.

        Returns
        -------
        tuple of numpy.ndarray
            ``(stack, timestamps)``: a ``(width, height, n_images)`` view (a copy if the
            stack wraps the ring end) and a float64 copy of the timestamps.

        Raises
        ------
        BufferUnderflow
            Fewer than ``n_images`` unread frames.
        """
        with self.lock:
            self._check_read(self.n_images)
            r = int(self._ctl[_R])
            if r + self.n_images <= self.n_total_images:
                return self._stack_view(r), self._ts[r : r + self.n_images].copy()
            idx = np.arange(r, r + self.n_images) % self.n_total_images
            return self._frames[idx].transpose(2, 1, 0), self._ts[idx]

    def read_stack_no_return(self) -> None:
        """Advance the read index by one stack, freeing its slots for the producer.

        Raises
        ------
        BufferUnderflow
            Fewer than ``n_images`` unread frames.
        """
        with self.lock, self._change:
            self._check_read(self.n_images)
            self._set_read_index(int(self._ctl[_R]) + self.n_images)
            self._ctl[_COUNT] -= self.n_images
            self._signal(self._space_sem, _SPACE_WAITERS)
        if self._deferred:
            self._flush()

    def read_image(self) -> tuple[np.ndarray, float]:
        """Return the next unread image (a copy) and its timestamp, advancing by one frame.

        Returns
        -------
        tuple of (numpy.ndarray, float)
            The ``(width, height)`` frame and its timestamp in seconds.

        Raises
        ------
        BufferUnderflow
            The buffer holds no unread frame.
        """
        with self.lock, self._change:
            self._check_read(1)
            r = int(self._ctl[_R])
            image = self._frames[r].copy()
            timestamp = float(self._ts[r])
            self._set_read_index(r + 1)
            self._ctl[_COUNT] -= 1
            self._signal(self._space_sem, _SPACE_WAITERS)
        if self._deferred:
            self._flush()
        return image.T, timestamp

    def write_timestamp(self, timestamp: float) -> None:
        """Commit the next frame slot with ``timestamp``, leaving its pixels as they are.

        Raises
        ------
        BufferOverflow
            No free slot.
        """
        self.begin_write()
        self.commit_write(timestamp)

    def write_image_and_timestamp(
        self, image: Any, timestamp: float, *, timeout: float | None = 0.0
    ) -> None:
        """Store one image and its timestamp (one copy into the slot, streamed for large frames).

        Parameters
        ----------
        image : numpy.ndarray or bytes-like
            A ``(width, height)`` array of the buffer's dtype (e.g. ``frame.T`` of a row-major
            camera frame), or exactly ``image_size`` bytes in row-major order.
        timestamp : float
            Timestamp in seconds.
        timeout : float or None
            Seconds to wait for a free slot (0: fail at once; None: forever).

        Raises
        ------
        ValueError
            Wrong shape, dtype or size; the buffer is left untouched.
        BufferOverflow
            No slot became free in time.
        """
        src = self._as_row_major(image)
        timestamp = float(timestamp)
        if self._write_now(src, timestamp):
            return
        if timeout == 0:  # the section above found no free slot
            raise BufferOverflow(_FULL)
        self.begin_write(timeout=timeout)  # full: wait for a slot, copy outside the lock
        try:
            self._copy_into(self._ctl_mv[_W], src)
        except BaseException:
            self.abandon_write()
            raise
        self.commit_write(timestamp)

    def _write_now(self, src: np.ndarray, timestamp: float) -> bool:
        """Reserve, fill and publish a slot in one section, if one is free; False if none is.

        One lock section per frame instead of two: the copy (tens of us for a large frame) holds
        the lock, which consumers take once a stack. A death mid-copy leaves the control block
        untouched (the journal covers the rest) and the slot's seq odd, which the next write of
        the slot replaces.
        """
        with self.lock, self._change:
            w = self._take_slot()
            if w is None:
                return False
            try:
                self._copy_into(w, src)
            except BaseException:
                self._seq_mv[w] = 0
                raise
            c = self._ctl_mv
            self._publish(c, w, c[_TOTAL], timestamp)
        if self._deferred:
            self._flush()
        return True

    def _copy_into(self, w: int, src: np.ndarray) -> None:
        """Copy row-major frame ``src`` (validated) into slot ``w``."""
        if self._streams and src.flags.c_contiguous:
            stream_copy(self._frames_u8[w], src.reshape(-1).view(np.uint8))
        else:
            np.copyto(self._frames[w], src, casting="no")

    def _publish(self, c: memoryview, w: int, fn: int, timestamp: float) -> None:
        """Make slot ``w`` frame ``fn`` and advance the ring (lock and change held)."""
        self._ts_mv[w] = timestamp
        self._fnum_mv[w] = fn
        self._seq_mv[w] = 2 * fn + 2  # even: complete
        c[_TOTAL] = fn + 1
        if self._fault_point is not None:
            self._fault_point()
        c[_W] = (w + 1) % self.n_total_images
        c[_COUNT] += 1
        c[_PENDING] = 0
        if c[_COUNT] >= self.n_images:
            self._signal(self._ready_sem, _READY_WAITERS)
        if self._others:
            for g, gc in enumerate(self._others, 1):
                gc[_COUNT] += 1
                if gc[_COUNT] >= self.n_images:
                    self._signal(self._ready_sems[g], _READY_WAITERS, gc)

    def _as_row_major(self, image: Any) -> np.ndarray:
        w, h = self.image_shape
        if isinstance(image, np.ndarray):
            if image.shape != (w, h) or image.dtype != self.dtype:
                raise ValueError(
                    f"VideoBuffer image must be a (width, height) = {(w, h)} "
                    f"{self.dtype} array, got {image.shape} {image.dtype}"
                )
            return image.T
        try:
            mv = memoryview(image)
        except TypeError:
            raise ValueError(
                f"VideoBuffer image must be an ndarray or bytes-like, got {type(image).__name__}"
            ) from None
        if mv.nbytes != self.image_size or not mv.c_contiguous:
            raise ValueError(
                f"VideoBuffer image must be {self.image_size} contiguous bytes, got {mv.nbytes}"
            )
        return np.frombuffer(mv.cast("B"), self.dtype).reshape(h, w)

    # --- zero-copy producer path ------------------------------------------------------------
    def begin_write(self, timeout: float | None = 0.0) -> np.ndarray:
        """Reserve the next free slot and return it as a writable ``(height, width)`` view.

        Fill it (e.g. ``camera.read_frame(slot)``), then :meth:`commit_write` or
        :meth:`abandon_write`. One write may be in progress at a time.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait for a free slot (0: fail at once; None: forever).

        Raises
        ------
        BufferOverflow
            No slot became free in time.
        RuntimeError
            A write is already in progress.
        """
        with self.lock, self._change:  # a free slot, the usual case: one section, no waiting
            w = self._reserve()
        if w is None and timeout != 0:
            w = self._wait(self._reserve, self._space_sem, _SPACE_WAITERS, timeout)
        if w is None:
            raise BufferOverflow(_FULL)
        return self._frames[w]

    def _reserve(self) -> int | None:
        """:meth:`_take_slot`, recording this process as its writer (lock and change held)."""
        w = self._take_slot()
        if w is not None:
            c = self._ctl_mv
            c[_PEND_PID], c[_PEND_TICKS] = _identity()
            c[_PENDING] = 1
        return w

    def _take_slot(self) -> int | None:
        """The next free slot, marked being written (seq odd); None if there is none.

        Lock and change held. Raises RuntimeError while another live process has a slot
        reserved; takes back the slot of a reserver that died.
        """
        c, seq = self._ctl_mv, self._seq_mv  # memoryviews: plain ints, no numpy scalars
        if c[_PENDING]:
            if _owner_alive(c[_PEND_PID], c[_PEND_TICKS]):
                raise RuntimeError(
                    f"VideoBuffer: a write is already in progress (pid {c[_PEND_PID]})"
                )
            seq[c[_W]] = 0  # its writer died: take the slot back
            c[_PENDING] = 0
        if not self._can_write():
            return None
        w = c[_W]
        seq[w] = 2 * c[_TOTAL] + 1  # odd: slot being written
        return w

    def commit_write(self, timestamp: float) -> int:
        """Publish the slot reserved by :meth:`begin_write`; return its frame number."""
        timestamp = float(timestamp)
        with self.lock, self._change:
            c = self._ctl_mv
            if not c[_PENDING] or c[_PEND_PID] != os.getpid():
                raise RuntimeError("VideoBuffer: commit_write without begin_write")
            fn = c[_TOTAL]
            self._publish(c, c[_W], fn, timestamp)
        if self._deferred:
            self._flush()
        return fn

    def abandon_write(self) -> None:
        """Give back the slot reserved by :meth:`begin_write` without publishing it."""
        with self.lock, self._change:
            if self._ctl[_PENDING] and self._ctl[_PEND_PID] == os.getpid():
                self._seq[int(self._ctl[_W])] = 0
                self._ctl[_PENDING] = 0

    @property
    def repairs(self) -> int:
        """Sections left half-done by a process that died, rolled back since creation."""
        return int(self._ctl[_REPAIRS])

    def _repair(self) -> None:
        """Run on taking the lock: restore the journal if a holder died mid-section."""
        ctl = self.__dict__.get("_ctl")
        if ctl is None or not ctl[_DIRTY]:
            return
        np.copyto(self._state, self._journal)  # clears _DIRTY too
        ctl[_REPAIRS] += 1
        _log.warning("VideoBuffer: rolled back a section left half-done by a dead process")

    @property
    def frames_written(self) -> int:
        """Frames committed since the buffer was created."""
        return int(self._ctl[_TOTAL])

    # --- blocking and parallel consumers ----------------------------------------------------
    def wait_for_stack(self, timeout: float | None = None) -> bool:
        """Block until a full unread stack is buffered; False on timeout.

        For the single-consumer calls (``peak_stack``); workers use :meth:`claim_stack`.
        """
        self._single_consumer()
        if self._ctl_mv[_COUNT] >= self.n_images:  # one aligned word: no lock needed to look
            return True

        def attempt() -> bool | None:
            return True if self._ctl[_COUNT] >= self.n_images else None

        return bool(self._wait(attempt, self._ready_sem, _READY_WAITERS, timeout))

    def claim_stack(
        self, timeout: float | None = 0.0, *, group: str | None = None
    ) -> StackClaim | None:
        """Take the next full stack for this process, exactly once across all consumers.

        Requeued stacks (see :meth:`reclaim_dead_claims`) come first, then unread ones in
        order. The stack stays in the ring, untouched by the producer, until released. With
        consumer groups, "all consumers" are those of ``group``: every group gets every stack.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait for a stack (0: don't wait; None: forever).
        group : str, optional
            The consumer group to claim for: required when the buffer has groups, and only then.

        Returns
        -------
        StackClaim or None
            None when no stack became available in time.

        Raises
        ------
        ValueError
            ``group`` missing, unknown, or given to a buffer without groups.
        RuntimeError
            The read index is mid-stack (``read_image`` was mixed with claims).
        """
        g = self._group(group)
        sem = self._ready_sems[g]
        pid, ticks = _identity()  # cached: _start_ticks reads /proc on every call

        def attempt() -> StackClaim | None:
            c, top, claims = self._gctl[g], self._ctl_mv, self._gclaims[g]
            if c[_REQUEUED] > 0:
                held = np.flatnonzero(claims[:, _STATE] == REQUEUED)
                index = int(held[np.argmin(claims[held, _FIRST])])
                c[_REQUEUED] -= 1
            elif c[_COUNT] >= self.n_images:
                r = c[_R]
                if r % self.n_images:
                    raise RuntimeError(
                        "VideoBuffer: read index is mid-stack; "
                        "don't mix read_image with claim_stack"
                    )
                index = r // self.n_images
                claims[index, _FIRST] = self._fnum[r]
                c[_R] = (r + self.n_images) % self.n_total_images
                c[_COUNT] -= self.n_images
            else:
                return None
            top[_TOKEN] += 1
            claims[index] = (CLAIMED, pid, ticks, top[_TOKEN], claims[index, _FIRST])
            if c[_REQUEUED] > 0 or c[_COUNT] >= self.n_images:
                self._signal(sem, _READY_WAITERS, c)  # pass the baton
            start = index * self.n_images
            sl = slice(start, start + self.n_images)
            return StackClaim(
                index,
                self._stack_view(start),
                self._ts[sl].copy(),
                self._fnum[sl].copy(),
                top[_TOKEN],
                group,
            )

        return self._wait(attempt, sem, _READY_WAITERS, timeout, g)

    def release_stack(self, claim: StackClaim) -> None:
        """Give a claimed stack back (any order); with groups, its slots are free for the
        producer once every group has released the stack.

        Raises
        ------
        ValueError
            The claim was already released, or was requeued or dropped by the supervisor.
        """
        claims = self._gclaims[self._group(claim.group)]
        with self.lock, self._change:
            row = claims[claim.index]
            if row[_STATE] != CLAIMED or row[_CTOKEN] != claim.token:
                raise ValueError(
                    f"stack {claim.index} is not held by this claim "
                    "(released twice, or requeued/dropped)"
                )
            row[_STATE] = FREE
            row[_PID] = 0
            self._signal(self._space_sem, _SPACE_WAITERS)
        if self._deferred:
            self._flush()

    def list_claims(self, group: str | None = None) -> list[tuple[int, int, int]]:
        """Held stacks as ``(stack index, claimer pid, first frame number)``.

        With consumer groups: those of ``group``, or of every group if None.
        """
        tables = self._gclaims if group is None else [self._gclaims[self._group(group)]]
        with self.lock:
            return [
                (int(i), int(claims[i, _PID]), int(claims[i, _FIRST]))
                for claims in tables
                for i in np.flatnonzero(claims[:, _STATE] == CLAIMED)
            ]

    def reclaim_dead_claims(self, *, requeue: bool = True) -> list[int]:
        """Find stacks held by processes that have died; requeue them or drop them.

        Parameters
        ----------
        requeue : bool
            True: the next :meth:`claim_stack` (of the same group) hands them out again.
            False: release them.

        Returns
        -------
        list of int
            The stack indices recovered (with groups, one entry per group's claim).
        """
        recovered = []
        with self.lock, self._change:
            for g, claims in enumerate(self._gclaims):
                for i in np.flatnonzero(claims[:, _STATE] == CLAIMED):
                    row = claims[i]
                    if _owner_alive(int(row[_PID]), int(row[_TICKS])):
                        continue
                    recovered.append(int(i))
                    row[_PID] = 0
                    if requeue:
                        row[_STATE] = REQUEUED
                        self._gctl[g][_REQUEUED] += 1
                        self._signal(self._ready_sems[g], _READY_WAITERS, self._gctl[g])
                    else:
                        row[_STATE] = FREE
                        self._signal(self._space_sem, _SPACE_WAITERS)
        if self._deferred:
            self._flush()
        return recovered

    def _single_consumer(self) -> None:
        """Raise RuntimeError if the buffer has consumer groups (each reads through claims)."""
        if self.groups:
            raise RuntimeError(
                f"VideoBuffer has consumer groups {self.groups}: "
                "read with claim_stack(group=...) / release_stack"
            )

    def _group(self, group: str | None) -> int:
        """Index of consumer group ``group``; 0 for None on a buffer without groups."""
        if group is None and not self.groups:
            return 0
        try:
            return self._group_index[group]  # type: ignore[index]
        except KeyError:
            if not self.groups:
                raise ValueError(
                    f"VideoBuffer has no consumer groups; claim without group={group!r}"
                ) from None
            raise ValueError(
                f"VideoBuffer consumer groups are {self.groups}: name one (group={group!r})"
            ) from None
