"""VideoBuffer: a shared-memory ring of camera frames, grouped in stacks.

One :class:`~buffers._segment.Segment` holds everything: the producer's words (frames written,
the lease, a row per writing process), a control block (frames read, waiter counts), a claim
table (one row per stack), the same two for each consumer group after the first, their journal,
the groups' names, per-slot sequence counters and frame numbers, the timestamps, and the
frames, page-aligned. Each frame is stored as the camera's row-major ``(height, width)`` bytes,
as the reference does; the ``(width, height)`` arrays of the API are transposes of that.

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

The producer publishes without the lock. Its words (the frame total, the lease: which process
writes, and each writing process's own row saying whether it is copying) sit outside
everything the consumers change. A frame is published by one store of the frame total after
its slot, timestamp and frame number; the unread count of a consumer group is that total less
the group's own read total, so nothing is counted twice. The producer learns which slots are
free from the consumers' state read under a sequence counter (``_CSEQ``, odd during a
consumer's section), and caches how far they reach: a consumer's section can only free more.
Another process that wants to write takes the lease under the lock: a live writer's copy in
progress is waited for, its ``begin_write`` reservation refused (RuntimeError), a dead one's
slot taken back. The hand-offs between a lock-free side and the other (lease and writer rows;
frame total and waiter counts) each store, fence (:mod:`buffers._ordering`) and load, so that
one of the two always sees the other.

Every consumer-side critical section holds the segment lock (:mod:`buffers._lock`), which any
process can take and the kernel frees when its holder dies. A section that changes more than
one word first copies the consumers' state (control words and claim tables) to a journal and
makes the sequence counter odd; the next process to take the lock after a holder died
mid-section restores the journal (:attr:`VideoBuffer.repairs` counts it, and dead writers' slots
taken back). Stacks claimed by dead processes are recovered by
:meth:`VideoBuffer.reclaim_dead_claims`.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dtypes import int_to_uint_dtype
from ._errors import BufferOverflow, BufferUnderflow
from ._groups import NAME_BYTES, check_groups, decode_groups, encode_groups, ready_key
from ._lock import BufferLock, make_buffer_lock
from ._ordering import acquire_fence, full_fence, release_fence
from ._platform import after_fork_in_child, owner_alive, process_token, yield_cpu
from ._segment import HEADER_SIZE, Segment, SegmentError, SegmentNotReady
from ._segment_holder import SegmentHolder
from ._seqlock import consistent_copy
from ._stream import CopyChooser, slots_stream
from ._sync import READY, SPACE

KIND = "VideoBuffer"
SCHEMA = 4  # 2: journal, pending writer's pid; 3: consumer groups; 4: lock-free producer

# the producer's words (first cache line), the consumers' sequence counter (the second), then
# the writer rows: (pid, start token, state) of each process that writes, its state its own
_WT, _LEASE_PID, _LEASE_TICKS = range(3)
_CSEQ = 8
_WRITERS, _N_WRITERS = 16, 8
_N_HEAD = _WRITERS + 3 * _N_WRITERS
# a writer row's state: idle, copying (or about to check the lease), a begin_write reservation
_IDLE, _COPYING, _RESERVED = 0, 1, 2
# control words of a consumer group (journaled); the first group's hold the shared ones too
_RT, _READY_WAITERS, _REQUEUED, _SPACE_WAITERS, _TOKEN, _REPAIRS = range(6)
_N_CTL = 8
# claim table columns
_STATE, _PID, _TICKS, _CTOKEN, _FIRST = range(5)
_N_CLAIM = 5
FREE, CLAIMED, REQUEUED = 0, 1, 2

_POLL_S = 0.0005  # sleep slice when the locks dict carries no semaphores
_WAKE_S = 0.05  # longest semaphore wait before re-checking (a signaller may die before posting)
_FULL = "VideoBuffer is full (unread or claimed frames fill the ring)"
_POLL_SPIN_S = 200e-6  # check_read_stack: False this long in a row, a poller then naps ...
_POLL_NAP_S = 1e-3  # ... a quarter of that time per call, at most this
_SPIN_S = 200e-6  # claim_stack, wait_for_stack: look this long (yielding) before sleeping
_PEAK_TRIES = 1000  # peak_image: the newest slot keeps changing under us -> none complete
_SEQ_TRIES = 3  # the producer's lock-free reads of the consumers' state, before the lock

_log = logging.getLogger("buffers")
_me: tuple[int, int] = (0, 0)


def _identity() -> tuple[int, int]:
    """This process's (pid, start token), cached per process (forgotten in a forked child)."""
    global _me
    if not _me[0]:
        pid = os.getpid()
        _me = (pid, process_token(pid))
    return _me


# The threads of one process write one at a time (across processes: the lease). Taken before
# the buffer's lock, never after it.
_producing = threading.Lock()


def _after_fork_in_child() -> None:
    global _producing, _me
    _producing = threading.Lock()
    _me = (0, 0)


after_fork_in_child(_after_fork_in_child)


def _look_before_sleeping(ready: Callable[[], bool], timeout: float | None) -> bool:
    """Whether ``ready()``, looking (yielding the CPU) for up to ``_SPIN_S`` of ``timeout``
    first: a stack due within microseconds then costs no sleep and wake-up on either side."""
    if ready():
        return True
    if timeout == 0:
        return False
    spin_until = time.perf_counter() + (_SPIN_S if timeout is None else min(_SPIN_S, timeout))
    while time.perf_counter() < spin_until:
        yield_cpu()
        if ready():
            return True
    return False


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
    """A consumer section that changes several words: journal them first, and keep the
    sequence counter odd meanwhile (lock-free readers retry; see ``VideoBuffer._repair``)."""

    __slots__ = ("_head", "_journal", "_state")

    def __init__(self, state: memoryview, journal: memoryview, head: memoryview) -> None:
        self._state, self._journal, self._head = state, journal, head

    def __enter__(self) -> None:
        self._journal[:] = self._state
        self._head[_CSEQ] += 1
        release_fence()  # odd before any change (and a released stack's reads before it)

    def __exit__(self, *exc: object) -> None:
        # Python exceptions are raised before anything changes; only a death leaves it odd
        release_fence()
        self._head[_CSEQ] += 1


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
        waits poll). The buffer's consumer-side calls take its own segment lock
        (:mod:`buffers._lock`), which works from any process and is freed by the kernel if its
        holder dies; a Lock under ``"VideoBuffer"`` is taken first, as well, for
        reference-style code. The producer's writes take neither (see the module's docstring):
        holding ``lock`` does not stop them, and they never touch an unread or claimed slot.
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
    #: Tests only: called half-way through publishing a frame (its slot complete, the frame
    #: total not yet advanced).
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
            size = self._layout(geometry, len(self.groups))
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
            self._layout(geometry, seg.geometry[5])
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
        self._free_until = 0  # the producer's: frames below this total have free slots
        self._reserved: tuple[int, int] | None = None  # (slot, pid) of this begin_write
        self._writer: tuple[int, int] | None = None  # (pid, its row's state word), once it wrote
        self._creator_pid = os.getpid() if create else None
        _identity()  # asked of the OS now (milliseconds), not at the first write or claim
        try:
            if create and self.groups:
                names = encode_groups(self.groups)
                seg.payload[self._off_names : self._off_names + len(names)] = names
            self._map(seg)
            self.lock = make_buffer_lock(
                locks, self.name, seg.lock_path, self._repair, (self._head, _CSEQ)
            )
        except BaseException:
            self._drop_views()
            self._release_segment(seg, unlink=create)
            raise

    # --- layout -------------------------------------------------------------------------
    def _layout(self, geometry: Sequence[int], n_groups: int) -> int:
        """Set the geometry attributes (n_stacks, width, height, n_images, bits) and offsets;
        return the payload size."""
        n_stacks, width, height, n_images, bits = geometry
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
        # the producer's words and the consumers' sequence counter, then the consumers' state
        self._off_state = _N_HEAD * 8
        self._off_claims = self._off_state + _N_CTL * 8
        # groups after the first: a block each, laid out as the control block + claim table
        self._group_block = _N_CTL + n_stacks * _N_CLAIM
        # control block + claim table (+ those of the groups after the first), in words
        self._n_state = self._group_block * max(n_groups, 1)
        self._off_journal = self._off_state + self._n_state * 8
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
        words = self.n_stacks * _N_CLAIM
        self._head = p[: _N_HEAD * 8].cast("q")
        self._ctl = np.frombuffer(p, np.int64, _N_CTL, self._off_state)
        self._claims = np.frombuffer(p, np.int64, words, self._off_claims)
        self._claims = self._claims.reshape(self.n_stacks, _N_CLAIM)
        self._state = np.frombuffer(p, np.int64, self._n_state, self._off_state)
        self._journal = np.frombuffer(p, np.int64, self._n_state, self._off_journal)
        # per consumer group, its control words (of which it uses _RT, _READY_WAITERS and
        # _REQUEUED; the first group's are the control block) and claim table; memoryviews
        # for the per-frame paths (plain ints, no numpy scalars)
        self._gctl: list[memoryview] = []
        self._gclaims: list[np.ndarray] = []
        self._gclaims_mv: list[memoryview] = []
        for g in range(max(len(self.groups), 1)):
            off = self._off_state + g * self._group_block * 8
            self._gctl.append(p[off : off + _N_CTL * 8].cast("q"))
            rows = np.frombuffer(p, np.int64, words, off + _N_CTL * 8)
            self._gclaims.append(rows.reshape(self.n_stacks, _N_CLAIM))
            self._gclaims_mv.append(p[off + _N_CTL * 8 : off + (_N_CTL + words) * 8].cast("q"))
        self._ctl_mv = self._gctl[0]
        self._change = _Change(
            p[self._off_state : self._off_journal].cast("q"),
            p[self._off_journal : self._off_journal + self._n_state * 8].cast("q"),
            self._head,
        )
        self._seq = np.frombuffer(p, np.int64, n, self._off_seq)
        self._seq_mv = p[self._off_seq : self._off_seq + n * 8].cast("q")
        self._fnum_mv = p[self._off_fnum : self._off_fnum + n * 8].cast("q")
        self._ts_mv = p[self._off_ts : self._off_ts + n * 8].cast("d")
        self._fnum = np.frombuffer(p, np.int64, n, self._off_fnum)
        self._ts = np.frombuffer(p, np.float64, n, self._off_ts)
        raw = np.frombuffer(p, np.uint8, self.buffer_size, self._off_frames)
        self._frames_u8 = raw.reshape(n, self.image_size)
        self._frames = raw.view(self.dtype).reshape(n, h, w)  # row-major camera frames
        self._streams = slots_stream(self._frames_u8)
        self._chooser = CopyChooser()  # for the frames that stream: streamed or plain
        # the reference's private names, as views into the one segment
        self._expose_segment(seg, ("_shm_info", "_shm", "_ts_shm", "_idx_shm"))
        self._buf = self._frames_u8.reshape(-1).data
        self._ts_buf = self._ts.data
        self._idx_buf = p[: self._off_journal]  # the producer's words and the consumers' state

    # --- teardown -----------------------------------------------------------------------
    def _drop_views(self) -> None:
        for attr in (
            "_head",
            "_ctl",
            "_claims",
            "_state",
            "_journal",
            "_ctl_mv",
            "_gctl",
            "_gclaims",
            "_gclaims_mv",
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
        state = "closed" if self.closed else f"level={self._unread()}/{self.n_total_images}"
        return f"VideoBuffer(stack_shape={self.stack_shape}, dtype={self.dtype}, {state})"

    # --- the reference's private index helpers --------------------------------------------
    # Positions and counts derive from two running totals: frames written (the producer's) and
    # frames read (the consumers'). The setters move the read total (count, read index) or the
    # written total (write index); they are for inspecting the reference's internals, not for
    # use while another process writes or reads.
    def _get_count_index(self) -> int:
        rt = self._ctl_mv[_RT]
        return self._head[_WT] - rt

    def _get_read_index(self) -> int:
        return self._ctl_mv[_RT] % self.n_total_images

    def _get_write_index(self) -> int:
        return self._head[_WT] % self.n_total_images

    def _set_count_index(self, value: int) -> None:
        self._ctl_mv[_RT] = self._head[_WT] - value
        self._free_until = 0

    def _set_read_index(self, value: int) -> None:
        rt = self._ctl_mv[_RT]
        self._ctl_mv[_RT] = rt + (value - rt) % self.n_total_images
        self._free_until = 0

    def _set_write_index(self, value: int) -> None:
        wt = self._head[_WT]
        self._head[_WT] = wt + (value - wt) % self.n_total_images
        self._free_until = 0

    def _check_read(self, value: int) -> None:
        self._single_consumer()
        unread = self._unread()
        if value > unread:
            raise BufferUnderflow(f"VideoBuffer holds {unread} unread frames, {value} needed")
        acquire_fence()  # the frames counted, then their slots

    def _check_write(self, value: int) -> None:
        if not self._can_write(value):
            raise BufferOverflow(_FULL)

    def _get_timestamps(self, read: int, length: int) -> np.ndarray:
        return self._ts[read : read + length]

    def _set_timestamp(self, write: int, timestamp: float) -> None:
        self._ts[write] = timestamp

    # --- internals ----------------------------------------------------------------------------
    def _can_write(self, value: int = 1) -> bool:
        """Whether the next ``value`` slots are free (lock held)."""
        return self._head[_WT] + value <= self._free_limit()

    def _free_limit(self) -> int:
        """The frame total below which every slot is free for the producer.

        From the consumers' state as it is: call with the lock held, or inside a sequence
        counter read (:meth:`_refresh_free`). Frame ``t`` goes where frame ``t - n`` was: free
        once every group has read it and no stack at or after it is held.
        """
        n, n_stacks = self.n_total_images, self.n_stacks
        limit = None
        for gc, claims in zip(self._gctl, self._gclaims_mv, strict=True):
            rt = gc[_RT]
            lim = rt + n
            for row in range(0, n_stacks * _N_CLAIM, _N_CLAIM):
                if claims[row + _STATE] != FREE and claims[row + _FIRST] + n < lim:
                    lim = claims[row + _FIRST] + n
            limit = lim if limit is None or lim < limit else limit
        return limit  # type: ignore[return-value]

    def _refresh_free(self) -> bool:
        """Update ``_free_until`` from the consumers' state, without the lock; False when a
        consumer's section kept changing it (the caller takes the lock instead)."""
        head = self._head
        for _ in range(_SEQ_TRIES):
            before = head[_CSEQ]
            if before & 1:
                yield_cpu()  # a section in progress: microseconds
                continue
            acquire_fence()
            limit = self._free_limit()
            acquire_fence()
            if head[_CSEQ] == before:
                self._free_until = limit
                return True
        return False

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
        self,
        attempt: Any,
        sem: Any,
        waiters_word: int,
        timeout: float | None,
        group: int = 0,
        ready: Callable[[], bool] | None = None,
    ) -> Any:
        """Call ``attempt()`` under the lock until it returns non-None or ``timeout`` passes.

        A waiter counts itself in ``waiters_word`` of the control words of group ``group``.
        ``ready`` is for waits on the producer, who signals without the lock: once registered
        (and fenced), the waiter looks again before it sleeps, as the producer looks for
        waiters after it publishes, so that one of the two sees the other.
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
                if ready is not None:
                    full_fence()
                    if ready():
                        continue
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

        The frames written less the group's frames read: two aligned 8-byte words, each changed
        by one store, read in that order (a count that is never too high for the reader
        itself). Only a section left in progress (an odd sequence counter) by a holder that
        died may still be rolled back: then the lock is free, and taking it (non-blocking; it
        fails at once while a live holder has it) rolls the section back first. With consumer
        groups: ``group``'s, or (None) the most any group has unread.
        """
        head = self._head
        if head[_CSEQ] & 1 and self.lock.acquire(blocking=False):
            self.lock.release()
        if group is None:
            rt = min(gc[_RT] for gc in self._gctl) if self.groups else self._ctl_mv[_RT]
        else:
            rt = self._gctl[self._group(group)][_RT]
        return head[_WT] - rt

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
            yield_cpu()
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
            total = self._head[_WT]
            if total == 0:
                raise BufferUnderflow("VideoBuffer: no frame has been written yet")
            slot = (total - 1) % n
            acquire_fence()
            before = int(self._seq[slot])
            if before != 2 * total:  # being overwritten already: take the new newest
                continue
            acquire_fence()
            data = self._frames_u8[slot].copy()
            acquire_fence()
            if int(self._seq[slot]) == before:
                return slot, memoryview(data)
        # a one-slot ring whose only slot is being (or was last) rewritten, not committed
        raise BufferUnderflow("VideoBuffer: the newest frame is being overwritten")

    def peak_stack(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the next unread stack without advancing the read index.

        Without the lock: the read total is read under the consumers' sequence counter (with
        the lock only if a section keeps it odd); the producer leaves unread slots alone.

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
        return consistent_copy(self._head, _CSEQ, self._peak_stack, self.lock)

    def _peak_stack(self) -> tuple[np.ndarray, np.ndarray]:
        self._check_read(self.n_images)
        r = self._ctl_mv[_RT] % self.n_total_images
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
        with self.lock:  # one store: nothing to journal
            self._check_read(self.n_images)
            self._ctl_mv[_RT] += self.n_images
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
        with self.lock:  # one store: nothing to journal
            self._check_read(1)
            r = self._ctl_mv[_RT] % self.n_total_images
            image = self._frames[r].copy()
            timestamp = self._ts_mv[r]
            self._ctl_mv[_RT] += 1
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
            No slot became free in time. A full ring yields the CPU before it raises, as
            ``check_read_stack`` does before it returns False: a producer retrying at once
            (the reference's pattern) leaves the CPU to the consumers it waits for.
        RuntimeError
            Another live process has a slot reserved (``begin_write``).
        """
        src = self._source(image)
        timestamp = float(timestamp)
        with _producing:
            self._copy_and_publish(self._take_slot(_COPYING, timeout), src, timestamp)
        self._wake()

    def _copy_and_publish(self, w: int, src: np.ndarray | memoryview, timestamp: float) -> None:
        """Copy ``src`` into slot ``w`` (reserved, ``_producing`` held) and publish it.

        A death mid-copy leaves the slot's seq odd and the writer's row not idle: the next
        process to take the lease takes the slot back.
        """
        try:
            self._copy_into(w, src)
        except BaseException:
            self._seq_mv[w] = 0
            self._head[self._writer[1]] = _IDLE  # type: ignore[index]
            raise
        self._publish(w, timestamp)

    def _copy_into(self, w: int, src: np.ndarray | memoryview) -> None:
        """Copy a frame validated by :meth:`_source` into slot ``w``: its bytes with a plain
        memoryview copy (a memcpy, as the reference does), or streamed (the chooser's way)."""
        if isinstance(src, memoryview):
            if not self._streams or self._chooser.untimed():
                at = w * self.image_size
                self._buf[at : at + self.image_size] = src
            else:
                self._chooser.copy(self._frames_u8[w], np.frombuffer(src, np.uint8))
        else:
            np.copyto(self._frames[w], src, casting="no")

    def _publish(self, w: int, timestamp: float) -> None:
        """Make slot ``w`` the next frame (``_producing`` held, the slot reserved).

        The slot's pixels, timestamp and frame number, a release fence, then its seq and the
        frame total: a consumer that sees the total (and fences, :mod:`buffers._ordering`) sees
        them. The caller then looks for waiters (:meth:`_wake`) after releasing ``_producing``,
        which fences the total's store before those loads.
        """
        head = self._head
        fn = head[_WT]
        self._ts_mv[w] = timestamp
        self._fnum_mv[w] = fn
        release_fence()
        self._seq_mv[w] = 2 * fn + 2  # even: complete
        if self._fault_point is not None:
            self._fault_point()
        head[_WT] = fn + 1
        head[self._writer[1]] = _IDLE  # type: ignore[index]

    def _wake(self) -> None:
        """Wake a waiter of each group that now has a full stack (after :meth:`_publish`)."""
        wt = self._head[_WT]
        for g, gc in enumerate(self._gctl):
            if gc[_READY_WAITERS] > 0 and wt - gc[_RT] >= self.n_images:
                self._signal(self._ready_sems[g], _READY_WAITERS, gc)
        if self._deferred:
            self._flush()

    def _source(self, image: Any) -> np.ndarray | memoryview:
        """``image`` checked: its row-major bytes (a 1-D "B" memoryview) where they are
        contiguous, else the ``(height, width)`` array (a transposed view) to copy from."""
        w, h = self.image_shape
        if isinstance(image, np.ndarray):
            if image.shape != (w, h) or image.dtype != self.dtype:
                raise ValueError(
                    f"VideoBuffer image must be a (width, height) = {(w, h)} "
                    f"{self.dtype} array, got {image.shape} {image.dtype}"
                )
            src = image.T
            return src.data.cast("B") if src.flags.c_contiguous else src
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
        return mv if mv.ndim == 1 and mv.format == "B" else mv.cast("B")

    # --- the producer's lease and slots ----------------------------------------------------
    def _take_slot(self, kind: int, timeout: float | None) -> int:
        """The next slot, marked being written (``kind``); ``_producing`` held. Without the lock
        when this process holds the lease and the ring has room; BufferOverflow after
        ``timeout``."""
        w = self._reserve_now(kind)
        if w is not None and w >= 0:
            return w
        if w is not None and timeout == 0:  # full, and no time to wait
            yield_cpu()  # a producer retrying at once leaves the CPU to the consumers
            raise BufferOverflow(_FULL)
        return self._reserve_waiting(kind, timeout)

    def _reserve_now(self, kind: int) -> int | None:
        """Without the lock: mark the next slot being written (``kind``) and return it; -1 if
        the ring is full; None if this process does not hold the lease, or cannot tell now
        (the caller takes the lock: :meth:`_reserve`). ``_producing`` held.

        A lease taker stores its identity, fences and then looks at every other writer's row;
        this stores "copying" in its own row, fences and then looks at the lease: one of the
        two sees the other. Only then does a reservation say so (a taker refuses to take it).
        """
        head = self._head
        pid, ticks = _identity()
        writer = self._writer
        if writer is None or writer[0] != pid:
            return None
        state = writer[1]
        if head[state] or head[_LEASE_PID] != pid or head[_LEASE_TICKS] != ticks:
            return None
        wt = head[_WT]
        if wt >= self._free_until:
            if not self._refresh_free():
                return None
            if wt >= self._free_until:
                return -1
        head[state] = _COPYING
        full_fence()
        if head[_LEASE_PID] != pid or head[_LEASE_TICKS] != ticks:  # taken meanwhile
            head[state] = _IDLE
            return None
        head[state] = kind
        w = wt % self.n_total_images
        self._seq_mv[w] = 2 * wt + 1  # odd: slot being written
        release_fence()  # odd before the pixels change
        return w

    def _reserve(self, kind: int) -> int | None:
        """:meth:`_reserve_now` with the lock held: take the lease if needed; None if full.

        Raises RuntimeError while another live process, or this one, has a slot reserved.
        """
        self._take_lease()
        state = self._writer_row()
        head = self._head
        if head[state]:
            raise RuntimeError(
                f"VideoBuffer: a write is already in progress (pid {head[_LEASE_PID]})"
            )
        self._free_until = self._free_limit()
        wt = head[_WT]
        if wt >= self._free_until:
            return None
        head[state] = kind  # no fence: lease takers hold the lock, as we do
        w = wt % self.n_total_images
        self._seq_mv[w] = 2 * wt + 1
        release_fence()
        return w

    def _reserve_waiting(self, kind: int, timeout: float | None) -> int:
        """:meth:`_reserve` under the lock, waiting up to ``timeout`` for a free slot
        (``_producing`` held: it comes before the lock)."""

        def attempt() -> int | None:
            return self._reserve(kind)

        w = self._wait(attempt, self._space_sem, _SPACE_WAITERS, timeout)
        if w is None:
            raise BufferOverflow(_FULL)
        return w

    def _take_lease(self) -> None:
        """Make this process the writer (lock and ``_producing`` held).

        Every other writer's copy in progress is waited for (microseconds: the old holder's,
        or one that is backing off, having seen the lease move); a live reservation
        (``begin_write``) is not taken: RuntimeError. Dead writers' rows are taken back.
        """
        head = self._head
        me = _identity()
        old = head[_LEASE_PID], head[_LEASE_TICKS]
        if old != me:
            head[_LEASE_PID], head[_LEASE_TICKS] = me
            full_fence()
        for row in range(_WRITERS, _N_HEAD, 3):
            who = head[row], head[row + 1]
            if who == me:
                continue
            while head[row + 2]:
                if not owner_alive(*who):
                    self._take_back(row, who == old)
                elif head[row + 2] == _RESERVED:
                    head[_LEASE_PID], head[_LEASE_TICKS] = old
                    raise RuntimeError(
                        f"VideoBuffer: a write is already in progress (pid {who[0]})"
                    )
                else:
                    yield_cpu()

    def _writer_row(self) -> int:
        """The state word of this process's writer row, taken if it has none (lock held)."""
        pid, ticks = me = _identity()
        if self._writer is not None and self._writer[0] == pid:
            return self._writer[1]
        head, row = self._head, None
        for r in range(_WRITERS, _N_HEAD, 3):
            who = head[r], head[r + 1]
            if who == me:
                row = r
                break
            if row is None and not head[r + 2] and (who[0] == 0 or not owner_alive(*who)):
                row = r  # unused, or its writer died idle
        else:
            if row is None:
                raise RuntimeError(f"VideoBuffer: {_N_WRITERS} live processes write to it")
            head[row], head[row + 1] = pid, ticks
        self._writer = (pid, row + 2)
        return row + 2

    def _take_back(self, row: int, holder: bool) -> None:
        """Clear the row of a writer that died mid-write and, if it held the lease, take back
        its slot (lock held)."""
        head = self._head
        if holder:
            w = head[_WT] % self.n_total_images
            if self._seq_mv[w] > 2 * head[_WT]:  # marked, not published: not a frame
                self._seq_mv[w] = 0
            self._ctl_mv[_REPAIRS] += 1
            _log.warning("VideoBuffer: took back the slot of a writer that died mid-write")
        head[row + 2] = _IDLE

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
        with _producing:
            w = self._take_slot(_RESERVED, timeout)
            self._reserved = (w, _identity()[0])  # the row is ours: _take_slot took it
        return self._frames[w]

    def commit_write(self, timestamp: float) -> int:
        """Publish the slot reserved by :meth:`begin_write`; return its frame number."""
        timestamp = float(timestamp)
        with _producing:
            if not self._holds_reservation():
                raise RuntimeError("VideoBuffer: commit_write without begin_write")
            reserved = self._reserved
            assert reserved is not None  # _holds_reservation
            self._reserved = None
            fn = self._head[_WT]
            self._publish(reserved[0], timestamp)
        self._wake()
        return fn

    def abandon_write(self) -> None:
        """Give back the slot reserved by :meth:`begin_write` without publishing it."""
        with _producing:
            if self._holds_reservation():
                self._seq_mv[self._reserved[0]] = 0  # type: ignore[index]
                self._head[self._writer[1]] = _IDLE  # type: ignore[index]
            self._reserved = None

    def _holds_reservation(self) -> bool:
        """Whether this process's :meth:`begin_write` slot is still reserved."""
        pid = _identity()[0]
        reserved, writer = self._reserved, self._writer
        return (
            reserved is not None
            and reserved[1] == pid
            and writer is not None
            and self._head[writer[1]] == _RESERVED
        )

    @property
    def repairs(self) -> int:
        """Sections left half-done by a process that died, rolled back since creation, and
        slots taken back from writers that died (noticed here too)."""
        with _producing, self.lock:
            head = self._head
            lease = head[_LEASE_PID], head[_LEASE_TICKS]
            for row in range(_WRITERS, _N_HEAD, 3):
                who = head[row], head[row + 1]
                if head[row + 2] and not owner_alive(*who):
                    self._take_back(row, who == lease)
            return self._ctl_mv[_REPAIRS]

    def _repair(self) -> None:
        """Run on taking the lock: restore the journal if a holder died mid-section."""
        head = self.__dict__.get("_head")
        if head is None or not head[_CSEQ] & 1:
            return
        np.copyto(self._state, self._journal)
        self._ctl_mv[_REPAIRS] += 1
        head[_CSEQ] += 1  # even again, and changed: lock-free readers of the section retry
        _log.warning("VideoBuffer: rolled back a section left half-done by a dead process")

    @property
    def frames_written(self) -> int:
        """Frames committed since the buffer was created."""
        return self._head[_WT]

    # --- blocking and parallel consumers ----------------------------------------------------
    def wait_for_stack(self, timeout: float | None = None) -> bool:
        """Block until a full unread stack is buffered; False on timeout.

        For the single-consumer calls (``peak_stack``); workers use :meth:`claim_stack`.
        """
        self._single_consumer()

        def ready() -> bool:
            return self._unread() >= self.n_images

        if _look_before_sleeping(ready, timeout):  # no lock needed to look
            return True

        def attempt() -> bool | None:
            return True if ready() else None

        return bool(self._wait(attempt, self._ready_sem, _READY_WAITERS, timeout, ready=ready))

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
            Seconds to wait for a stack (0: don't wait; None: forever). A waiter first looks,
            yielding the CPU, for ``_SPIN_S`` (a stack about to complete costs no sleep and
            wake-up), then sleeps on the group's semaphore.
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
        pid, ticks = _identity()  # cached: process_token asks the OS on every call

        def attempt() -> StackClaim | None:
            c, top, claims = self._gctl[g], self._ctl_mv, self._gclaims_mv[g]
            if c[_REQUEUED] > 0:
                table = self._gclaims[g]
                held = np.flatnonzero(table[:, _STATE] == REQUEUED)
                index = int(held[np.argmin(table[held, _FIRST])])
                first = int(table[index, _FIRST])
                c[_REQUEUED] -= 1
            elif self._head[_WT] - c[_RT] >= self.n_images:
                first = c[_RT]
                if first % self.n_images:
                    raise RuntimeError(
                        "VideoBuffer: read index is mid-stack; "
                        "don't mix read_image with claim_stack"
                    )
                index = first % self.n_total_images // self.n_images
                c[_RT] = first + self.n_images
            else:
                return None
            token = top[_TOKEN] + 1
            top[_TOKEN] = token
            row = index * _N_CLAIM
            claims[row + _PID], claims[row + _TICKS] = pid, ticks
            claims[row + _CTOKEN], claims[row + _FIRST] = token, first
            claims[row + _STATE] = CLAIMED
            if ready():
                self._signal(sem, _READY_WAITERS, c)  # pass the baton
            start = index * self.n_images
            sl = slice(start, start + self.n_images)
            acquire_fence()  # the frame total read, then the stack's slots
            return StackClaim(
                index,
                self._stack_view(start),
                self._ts[sl].copy(),
                self._fnum[sl].copy(),
                token,
                group,
            )

        def ready() -> bool:
            c = self._gctl[g]
            rt = c[_RT]
            return c[_REQUEUED] > 0 or self._head[_WT] - rt >= self.n_images

        _look_before_sleeping(ready, timeout)
        return self._wait(attempt, sem, _READY_WAITERS, timeout, g, ready)

    def release_stack(self, claim: StackClaim) -> None:
        """Give a claimed stack back (any order); with groups, its slots are free for the
        producer once every group has released the stack.

        Raises
        ------
        ValueError
            The claim was already released, or was requeued or dropped by the supervisor.
        """
        claims = self._gclaims_mv[self._group(claim.group)]
        row = claim.index * _N_CLAIM
        with self.lock:  # one store frees the stack: nothing to journal
            if claims[row + _STATE] != CLAIMED or claims[row + _CTOKEN] != claim.token:
                raise ValueError(
                    f"stack {claim.index} is not held by this claim "
                    "(released twice, or requeued/dropped)"
                )
            claims[row + _STATE] = FREE
            claims[row + _PID] = 0  # (read only while the stack is held)
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
                    if owner_alive(int(row[_PID]), int(row[_TICKS])):
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
