"""Names of a VideoBuffer's consumer groups: checked, stored in the segment, and their semaphores.

A VideoBuffer created with ``groups=("trackers", "recorder")`` keeps one read position and one
claim table per group (see :mod:`buffers._video`). The names live in the segment, in fixed
slots of :data:`NAME_BYTES` UTF-8 bytes, so a process that attaches learns them.
"""

from collections.abc import Iterable

NAME_BYTES = 32
MAX_GROUPS = 16


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` as a tuple, checked: 1 to 16 distinct non-empty names of up to 32 bytes.

    Raises
    ------
    ValueError
        A name that is not a string, is empty, too long, holds a NUL, or appears twice.
    """
    if isinstance(groups, str):
        raise ValueError(f"consumer groups must be a sequence of names, not the string {groups!r}")
    names = tuple(groups)
    if not 1 <= len(names) <= MAX_GROUPS:
        raise ValueError(f"a VideoBuffer takes 1 to {MAX_GROUPS} consumer groups, got {names}")
    for name in names:
        if not isinstance(name, str) or not name or "\x00" in name:
            raise ValueError(f"consumer group names are non-empty strings, got {name!r}")
        if len(name.encode()) > NAME_BYTES:
            raise ValueError(f"consumer group name {name!r} is longer than {NAME_BYTES} bytes")
    if len(set(names)) != len(names):
        raise ValueError(f"consumer group names must differ, got {names}")
    return names


def encode_groups(names: tuple[str, ...]) -> bytes:
    """The names in their fixed slots."""
    return b"".join(name.encode().ljust(NAME_BYTES, b"\x00") for name in names)


def decode_groups(raw: bytes) -> tuple[str, ...]:
    """Inverse of :func:`encode_groups`."""
    return tuple(
        raw[i : i + NAME_BYTES].rstrip(b"\x00").decode() for i in range(0, len(raw), NAME_BYTES)
    )


def ready_key(buffer_name: str, group: str) -> str:
    """The ``locks`` key of the semaphore that wakes ``group``'s waiters of ``buffer_name``."""
    return f"{buffer_name}.ready.{group}"
