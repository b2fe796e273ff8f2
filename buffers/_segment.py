"""One named shared-memory block with a checked header.

Every buffer lives in one ``Segment``: a 320-byte header followed by the payload. The header
holds a magic, the kind of buffer and its schema version, the geometry the creator chose, and the
creator's pid and start token (:func:`buffers._platform.process_token`), so that:

- attaching to a segment of another kind, version or geometry is a clear error, never garbage;
- a segment whose creator died without unlinking (SIGKILL) is recognised as stale and reclaimed.

A segment is named by a hash of its namespace and buffer name (:func:`segment_name`: 27
characters, within macOS's limit of 30) and listed in the per-user registry
(:mod:`buffers._platform._registry`), which says which namespace and buffer each is. The
namespace defaults to the environment variable ``MAGACQ_NAMESPACE`` or ``default``, so two runs
(or two test sessions) on one host never collide. Segments are created with mode 0600 (owner
only) and are not registered with ``multiprocessing``'s resource tracker: their owner unlinks
them, explicitly or at reclaim. The platform's ways (:mod:`buffers._platform`) do the rest.
"""

import hashlib
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._platform import (
    Block,
    attach_block,
    create_block,
    list_blocks,
    owner_alive,
    process_token,
    read_block,
    registry,
    unlink_block,
)

PREFIX = "magacq"
MAGIC = b"MAGACQ\x00\x01"
HEADER_SIZE = 320  # a multiple of 64: the payload starts cache-line aligned
N_GEOMETRY = 16
N_WORDS = 8

# magic, kind, schema, state, pid, start token, payload size, geometry[16], words[8]
_HEADER = struct.Struct(f"<8s32sIIqqq{N_GEOMETRY}q{N_WORDS}q")
_STATE_OFFSET = 8 + 32 + 4
_WORDS_OFFSET = _HEADER.size - 8 * N_WORDS
assert _HEADER.size <= HEADER_SIZE

STATE_CREATING = 1
STATE_READY = 2
_CREATING_GRACE_S = 10.0  # a segment without a header younger than this may be being created


class SegmentError(ValueError):
    """A segment exists but is not what the caller expected (kind, version, geometry)."""


class SegmentNotReady(SegmentError):
    """A segment exists but its creator has not finished writing its header yet."""


def default_namespace() -> str:
    """The namespace used when a buffer is given none."""
    return os.environ.get("MAGACQ_NAMESPACE", "default")


def _check_part(part: str, what: str) -> None:
    if not part or "/" in part or "." in part or len(part) > 100:
        raise ValueError(f"invalid buffer {what} {part!r}: non-empty, no '/' or '.'")


def segment_name(name: str, namespace: str | None = None) -> str:
    """The shared-memory name of buffer ``name`` in ``namespace``: ``magacq.`` and 20 hex
    digits of a hash of the two and the registry directory (another registry, another name)."""
    ns = default_namespace() if namespace is None else namespace
    _check_part(ns, "namespace")
    _check_part(name, "name")
    key = f"{registry.registry_dir()}\x00{ns}\x00{name}".encode()
    return f"{PREFIX}.{hashlib.blake2b(key, digest_size=10).hexdigest()}"


@dataclass(frozen=True)
class SegmentInfo:
    """What the header of an existing segment says."""

    name: str
    kind: str
    owner_pid: int
    owner_alive: bool
    size: int
    #: The namespace and buffer name its registry record gives ("" without one).
    namespace: str = ""
    buffer: str = ""


class Segment:
    """A mapped shared-memory segment. Use :meth:`create` or :meth:`attach`."""

    def __init__(self, name: str, block: Block, owner: bool) -> None:
        self.name = name
        self.owner = owner
        self._block: Block | None = block
        self._view = block.buf
        self.header = self._view[:HEADER_SIZE]
        self.payload = self._view[HEADER_SIZE:]
        fields = _HEADER.unpack_from(self._view)
        self.kind = fields[1].rstrip(b"\x00").decode()
        self.schema = fields[2]
        self.geometry: tuple[int, ...] = tuple(fields[7 : 7 + N_GEOMETRY])

    # --- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        *,
        kind: str,
        size: int,
        geometry: Sequence[int] = (),
        schema: int = 1,
        namespace: str | None = None,
        populate: bool = False,
    ) -> "Segment":
        """Create and map a new segment with a ``size``-byte zeroed payload.

        A segment of the same name left by a dead process is reclaimed; one owned by a live
        process raises FileExistsError. On any failure nothing is left behind. ``populate``
        faults every page in now (MAP_POPULATE), sparing the first writes a fault per page.
        """
        ns = default_namespace() if namespace is None else namespace
        full = segment_name(name, ns)
        if size < 0 or len(geometry) > N_GEOMETRY:
            raise ValueError(f"bad segment size {size} or geometry {geometry}")
        total = HEADER_SIZE + size
        try:
            block = create_block(full, total, populate)
        except FileExistsError:
            info = inspect_segment(full)
            if info is not None and info.owner_alive:
                raise FileExistsError(
                    f"shared memory {full!r} ({ns}/{name}) is in use by live process "
                    f"{info.owner_pid}; use another namespace"
                ) from None
            remove_segment(full)
            block = create_block(full, total, populate)
        try:
            pid = os.getpid()
            token = process_token(pid)
            registry.add(full, ns, name, pid, token)
            geo = list(geometry) + [0] * (N_GEOMETRY - len(geometry))
            _HEADER.pack_into(
                block.buf,
                0,
                MAGIC,
                kind.encode()[:32],
                schema,
                STATE_CREATING,
                pid,
                token,
                size,
                *geo,
                *([0] * N_WORDS),
            )
            seg = cls(full, block, owner=True)
        except BaseException:
            block.close()
            remove_segment(full)
            raise
        seg.state = STATE_READY
        return seg

    @classmethod
    def attach(
        cls,
        name: str,
        *,
        kind: str,
        schema: int = 1,
        namespace: str | None = None,
        geometry: Sequence[int] | None = None,
        populate: bool = False,
    ) -> "Segment":
        """Map an existing segment, checking its magic, kind, schema and (if given) geometry.

        ``populate`` maps every page now (MAP_POPULATE) rather than on first touch.

        Raises
        ------
        FileNotFoundError
            No such segment.
        SegmentError
            The segment is of another kind, version or geometry, or still being created.
        """
        full = segment_name(name, namespace)
        try:
            block = attach_block(full, populate)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no shared buffer {name!r} in namespace "
                f"{namespace or default_namespace()!r} (was it created?)"
            ) from None
        try:
            if len(block.buf) < HEADER_SIZE:
                raise SegmentNotReady(f"{full!r} is still being created (no header yet)")
            magic, raw_kind, got_schema, state, *_ = _HEADER.unpack_from(block.buf)
            if magic != MAGIC:
                if magic == bytes(len(MAGIC)):  # sized, header not written yet
                    raise SegmentNotReady(f"{full!r} is still being created (no header yet)")
                raise SegmentError(f"{full!r} is not a magacq buffer (bad magic)")
            seg = cls(full, block, owner=False)
        except BaseException:
            block.close()
            raise
        problem, error = None, SegmentError
        if seg.kind != kind:
            problem = f"is a {seg.kind}, not a {kind}"
        elif got_schema != schema:
            problem = f"has schema version {got_schema}, this software reads {schema}"
        elif state == STATE_CREATING:
            problem, error = "is still being created", SegmentNotReady
        elif geometry is not None and seg.geometry[: len(geometry)] != tuple(geometry):
            problem = f"has geometry {seg.geometry[: len(geometry)]}, expected {tuple(geometry)}"
        if problem:
            seg.close()
            raise error(f"shared buffer {full!r} {problem}")
        return seg

    @property
    def lock_path(self) -> Path:
        """The file its buffer's lock locks (:mod:`buffers._lock`)."""
        return registry.lock_path(self.name)

    # --- header words -------------------------------------------------------------------
    @property
    def state(self) -> int:
        return struct.unpack_from("<I", self.header, _STATE_OFFSET)[0]

    @state.setter
    def state(self, value: int) -> None:
        struct.pack_into("<I", self.header, _STATE_OFFSET, value)

    def words(self) -> memoryview:
        """Eight spare int64 header words a buffer may use for its own small state."""
        return self.header[_WORDS_OFFSET : _WORDS_OFFSET + 8 * N_WORDS].cast("q")

    # --- teardown -----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._block is None

    def close(self) -> None:
        """Unmap; views handed out must be dropped first (else BufferError names them)."""
        if self._block is None:
            return
        self.header.release()
        self.payload.release()
        self._block.close()
        self._block = None

    def unlink(self) -> None:
        """Remove the name from the system; mapped views stay valid until closed."""
        remove_segment(self.name)

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, kind={self.kind!r}, owner={self.owner})"


def remove_segment(full: str) -> None:
    """Remove segment ``full`` (a full name) and its registry record; nothing if gone. Processes
    that have it mapped keep it until they close it."""
    unlink_block(full)
    registry.remove(full)


def inspect_segment(full: str) -> SegmentInfo | None:
    """Read the header of segment ``full`` (a full name); None if it is gone or not ours."""
    raw = read_block(full, _HEADER.size)
    if raw is None:
        return None
    record = registry.read(full)
    ns, buffer = (record.namespace, record.buffer) if record else ("", "")
    if len(raw) < _HEADER.size or raw[: len(MAGIC)] != MAGIC:
        # no header (yet): its creator may be writing it now, so it counts as live until old
        young = record is None or time.time() - record.created < _CREATING_GRACE_S
        return SegmentInfo(full, "", 0, young, len(raw), ns, buffer)
    magic, kind, _schema, _state, pid, token, size, *_ = _HEADER.unpack(raw)
    alive = owner_alive(pid, token)
    return SegmentInfo(full, kind.rstrip(b"\x00").decode(), pid, alive, size, ns, buffer)


def list_segments(namespace: str | None = None) -> list[SegmentInfo]:
    """Every magacq segment of this user's registry (in ``namespace`` if given)."""
    found = (
        inspect_segment(r.name)
        for r in registry.records()
        if namespace is None or r.namespace == namespace
    )
    return [info for info in found if info is not None]


def orphan_segments(min_age_s: float = 0.0) -> list[SegmentInfo] | None:
    """magacq segments of this user that no record of this registry names (its registry was
    deleted, or is another's) and whose creator is gone, unmodified for ``min_age_s`` seconds
    (one without a header counts as its creator's once that old); None where the platform
    cannot list its shared memory (only Linux can)."""
    blocks = list_blocks(f"{PREFIX}.")
    if blocks is None:
        return None
    known = {record.name for record in registry.records()}
    found = []
    for name, age in blocks:
        if name in known or age < min_age_s:
            continue
        info = inspect_segment(name)
        if info is not None and not (info.kind and info.owner_alive):
            found.append(info)
    return found


def remove_orphan_segments(min_age_s: float = 0.0) -> list[SegmentInfo] | None:
    """Unlink the segments :func:`orphan_segments` finds (no record, creator gone, at least
    ``min_age_s`` old); return them, or None where the platform cannot list shared memory."""
    orphans = orphan_segments(min_age_s)
    for info in orphans or ():
        remove_segment(info.name)
    return orphans


def remove_stale_segments(namespace: str | None = None, *, min_age_s: float = 0.0) -> list[str]:
    """Unlink every magacq segment whose creator is gone (in every namespace unless
    ``namespace`` is given) and that was created at least ``min_age_s`` seconds ago (a sweep of
    every namespace leaves alone what another program has only just seen die); return their
    names. Records of segments already gone whose creators died are dropped too."""
    removed = []
    now = time.time()
    for record in registry.records():
        if namespace is not None and record.namespace != namespace:
            continue
        if now - record.created < min_age_s:
            continue
        info = inspect_segment(record.name)
        if info is None:
            if not owner_alive(record.pid, record.token):
                registry.remove(record.name)
            continue
        if info.owner_alive:
            continue
        remove_segment(info.name)
        removed.append(info.name)
    return removed
