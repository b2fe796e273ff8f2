"""One named POSIX shared-memory block with a checked header.

Every buffer lives in one ``Segment``: a 320-byte header followed by the payload. The header
holds a magic, the kind of buffer and its schema version, the geometry the creator chose, and the
creator's pid and process start time, so that:

- attaching to a segment of another kind, version or geometry is a clear error, never garbage;
- a segment whose creator died without unlinking (SIGKILL) is recognised as stale and reclaimed.

Segments are named ``magacq.<namespace>.<name>``; the namespace defaults to the environment
variable ``MAGACQ_NAMESPACE`` or ``default``, so two runs (or two test sessions) on one host
never collide. Segments are created with mode 0600 (owner only) and are not registered with
``multiprocessing``'s resource tracker: their owner unlinks them, explicitly or at reclaim.
"""

import _posixshmem
import mmap
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PREFIX = "magacq"
MAGIC = b"MAGACQ\x00\x01"
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux


def _map(fd: int, size: int, populate: bool) -> mmap.mmap:
    """Map ``fd``; ``populate``: fault all its pages in now, not one by one on first write."""
    return mmap.mmap(fd, size, flags=mmap.MAP_SHARED | (_POPULATE if populate else 0))


HEADER_SIZE = 320  # a multiple of 64: the payload starts cache-line aligned
N_GEOMETRY = 16
N_WORDS = 8
SHM_DIR = Path("/dev/shm")

# magic, kind, schema, state, pid, start ticks, payload size, geometry[16], words[8]
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


def segment_name(name: str, namespace: str | None = None) -> str:
    """The shared-memory name of buffer ``name`` in ``namespace``."""
    ns = default_namespace() if namespace is None else namespace
    for part, what in ((ns, "namespace"), (name, "name")):
        if not part or "/" in part or "." in part or len(part) > 100:
            raise ValueError(f"invalid buffer {what} {part!r}: non-empty, no '/' or '.'")
    return f"{PREFIX}.{ns}.{name}"


def _start_ticks(pid: int) -> int:
    """Start time of process ``pid`` in clock ticks since boot, or -1 when it does not exist
    or has ended (a zombie not yet reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return -1
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = stat.rsplit(")", 1)[1].split()
    return -1 if fields[0] in ("Z", "X") else int(fields[19])


def _owner_alive(pid: int, ticks: int) -> bool:
    return pid > 0 and _start_ticks(pid) == ticks


@dataclass(frozen=True)
class SegmentInfo:
    """What the header of an existing segment says."""

    name: str
    kind: str
    owner_pid: int
    owner_alive: bool
    size: int


class Segment:
    """A mapped shared-memory segment. Use :meth:`create` or :meth:`attach`."""

    def __init__(self, name: str, fd: int, mm: mmap.mmap, owner: bool) -> None:
        self.name = name
        self.owner = owner
        self._fd = fd
        self._mmap: mmap.mmap | None = mm
        self._view = memoryview(mm)
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
        full = segment_name(name, namespace)
        if size < 0 or len(geometry) > N_GEOMETRY:
            raise ValueError(f"bad segment size {size} or geometry {geometry}")
        flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
        try:
            fd = _posixshmem.shm_open("/" + full, flags, mode=0o600)
        except FileExistsError:
            info = inspect_segment(full)
            if info is not None and info.owner_alive:
                raise FileExistsError(
                    f"shared memory {full!r} is in use by live process {info.owner_pid}; "
                    "use another namespace"
                ) from None
            _unlink(full)
            fd = _posixshmem.shm_open("/" + full, flags, mode=0o600)
        try:
            total = HEADER_SIZE + size
            os.ftruncate(fd, total)
            mm = _map(fd, total, populate)
            pid = os.getpid()
            geo = list(geometry) + [0] * (N_GEOMETRY - len(geometry))
            _HEADER.pack_into(
                mm,
                0,
                MAGIC,
                kind.encode()[:32],
                schema,
                STATE_CREATING,
                pid,
                _start_ticks(pid),
                size,
                *geo,
                *([0] * N_WORDS),
            )
            seg = cls(full, fd, mm, owner=True)
        except BaseException:
            os.close(fd)
            _unlink(full)
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
            fd = _posixshmem.shm_open("/" + full, os.O_RDWR, mode=0o600)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no shared buffer {name!r} in namespace "
                f"{namespace or default_namespace()!r} (was it created?)"
            ) from None
        try:
            total = os.fstat(fd).st_size
            if total < HEADER_SIZE:
                raise SegmentNotReady(f"{full!r} is still being created (no header yet)")
            mm = _map(fd, total, populate)
            magic, raw_kind, got_schema, state, *_ = _HEADER.unpack_from(mm)
            if magic != MAGIC:
                mm.close()
                if magic == bytes(len(MAGIC)):  # ftruncate'd, header not written yet
                    raise SegmentNotReady(f"{full!r} is still being created (no header yet)")
                raise SegmentError(f"{full!r} is not a magacq buffer (bad magic)")
            seg = cls(full, fd, mm, owner=False)
        except BaseException:
            os.close(fd)
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

    def fileno(self) -> int:
        """This attachment's own descriptor of the segment (its lock locks a reopening of it)."""
        if self._mmap is None:
            raise ValueError(f"segment {self.name!r} is closed")
        return self._fd

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
        return self._mmap is None

    def close(self) -> None:
        """Unmap; views handed out must be dropped first (else BufferError names them)."""
        if self._mmap is None:
            return
        self.header.release()
        self.payload.release()
        self._view.release()
        self._mmap.close()
        os.close(self._fd)
        self._mmap = None

    def unlink(self) -> None:
        """Remove the name from the system; mapped views stay valid until closed."""
        _unlink(self.name)

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, kind={self.kind!r}, owner={self.owner})"


def _unlink(full: str) -> None:
    try:
        _posixshmem.shm_unlink("/" + full)
    except FileNotFoundError:
        pass


def inspect_segment(full: str) -> SegmentInfo | None:
    """Read the header of segment ``full`` (a full name); None if it is gone or not ours."""
    try:
        fd = _posixshmem.shm_open("/" + full, os.O_RDONLY, mode=0o600)
    except (FileNotFoundError, PermissionError):
        return None
    try:
        st = os.fstat(fd)
        raw = os.pread(fd, _HEADER.size, 0) if st.st_size >= HEADER_SIZE else b""
    finally:
        os.close(fd)
    if len(raw) < _HEADER.size or raw[: len(MAGIC)] != MAGIC:
        # no header (yet): its creator may be writing it now, so it counts as live until old
        young = time.time() - st.st_mtime < _CREATING_GRACE_S
        return SegmentInfo(full, "", 0, young, st.st_size)
    magic, kind, _schema, _state, pid, ticks, size, *_ = _HEADER.unpack(raw)
    return SegmentInfo(full, kind.rstrip(b"\x00").decode(), pid, _owner_alive(pid, ticks), size)


def list_segments(namespace: str | None = None) -> list[SegmentInfo]:
    """Every magacq segment on this host (in ``namespace`` if given)."""
    head = f"{PREFIX}." if namespace is None else f"{PREFIX}.{namespace}."
    if not SHM_DIR.is_dir():
        return []
    found = (inspect_segment(p.name) for p in sorted(SHM_DIR.iterdir()) if p.name.startswith(head))
    return [info for info in found if info is not None]


def remove_stale_segments(namespace: str | None = None, *, min_age_s: float = 0.0) -> list[str]:
    """Unlink every magacq segment whose creator is gone (in every namespace unless
    ``namespace`` is given) and that was created at least ``min_age_s`` seconds ago (a sweep of
    every namespace leaves alone what another program has only just seen die); return their
    names."""
    removed = []
    now = time.time()
    for info in list_segments(namespace):
        if info.owner_alive:
            continue
        try:
            if now - (SHM_DIR / info.name).stat().st_mtime < min_age_s:
                continue
        except FileNotFoundError:
            continue
        _unlink(info.name)
        removed.append(info.name)
    return removed
