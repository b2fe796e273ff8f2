"""Closing the run file of a writer that died (SIGKILL, a crash) from another process.

A SWMR writer that dies leaves the superblock's consistency flags set ("open for write"), and
HDF5 then refuses to open the file for writing; only ``h5clear`` (HDF5's tool) clears them.
:func:`close_abandoned` does what ``h5clear`` does to a version 2 or 3 superblock (the ones
``libver="latest"`` writes): it zeroes the flags and rewrites the superblock's checksum
(Jenkins' lookup3, as HDF5 computes it), then writes the final attributes. What the writer
flushed is already consistent on disk (SWMR), so nothing else needs repair.
"""

import struct
from pathlib import Path
from typing import Any

import h5py

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_M = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data``: HDF5's metadata checksum."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M
        for x, y, z, r in ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8),
                           (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4)):  # fmt: skip
            v = [a, b, c]  # mix(): v[x] -= v[y]; v[x] ^= rot(v[y], r); v[y] += v[z]
            v[x] = ((v[x] - v[y]) & _M) ^ _rot(v[y], r)
            v[y] = (v[y] + v[z]) & _M
            a, b, c = v
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i : i + n].ljust(12, b"\0")
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    for x, y, r in ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14),
                    (2, 1, 24)):  # fmt: skip
        v = [a, b, c]  # final(): v[x] ^= v[y]; v[x] -= rot(v[y], r)
        v[x] = ((v[x] ^ v[y]) - _rot(v[y], r)) & _M
        a, b, c = v
    return c


def clear_write_flags(path: Path) -> bool:
    """Zero the superblock's consistency flags of ``path`` (``h5clear``); True if any were set.

    Only a version 2 or 3 superblock at the start of the file with 8-byte offsets is handled
    (what magacq writes); anything else is left as it is (False).
    """
    with open(path, "r+b") as fh:
        head = bytearray(fh.read(48))
        if len(head) < 48 or head[:8] != _SIGNATURE or head[8] not in (2, 3) or head[9] != 8:
            return False
        if head[11] == 0:
            return False
        head[11] = 0
        head[44:48] = struct.pack("<I", lookup3(bytes(head[:44])))
        fh.seek(0)
        fh.write(head)
    return True


def close_abandoned(path: str | Path, attrs: dict[str, Any]) -> bool:
    """Write ``attrs`` (the final state, the error) into a run file whose writer died; True if
    the file was still open for writing (False: it was closed properly, or never written:
    left untouched)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:  # the writer died before making it
        return False
    with h5py.File(path, "r", swmr=True) as f:
        if f.attrs.get("state") != "running":
            return False
    clear_write_flags(path)
    with h5py.File(path, "r+") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
    return True
