"""A control channel's buffers, attached from any process: all of them, or none."""

from collections.abc import Iterable

from buffers import MatrixBuffer, SegmentError

#: What attaching a run's buffer raises when the run (or that buffer) is not there.
MISSING = (SegmentError, FileNotFoundError, OSError)


def attach_channel(names: Iterable[str], namespace: str) -> dict[str, MatrixBuffer]:
    """The MatrixBuffers ``names`` of the run in ``namespace``; on an error (one of
    :data:`MISSING`) those already attached are closed again before it is raised."""
    bufs: dict[str, MatrixBuffer] = {}
    try:
        for name in names:
            bufs[name] = MatrixBuffer(create=False, name=name, namespace=namespace)
    except BaseException:
        close_channel(bufs)
        raise
    return bufs


def close_channel(bufs: dict[str, MatrixBuffer]) -> None:
    """Close (detach) every buffer of ``bufs`` and forget them."""
    for buf in bufs.values():
        buf.close()
    bufs.clear()
