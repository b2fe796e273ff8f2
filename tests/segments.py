"""Whether a segment exists, asked of the platform's shared memory (``buffers``' own way, on
every platform), not of Linux's /dev/shm listing."""

from pathlib import Path

from buffers import inspect_segment

#: Linux's shared-memory file system: only for what is Linux's alone (a segment's file mode).
SHM = Path("/dev/shm")


def segment_exists(full: str) -> bool:
    """Whether shared-memory segment ``full`` (a full name) is there to attach."""
    return inspect_segment(full) is not None
