"""Errors raised by the shared-memory buffers."""


class BufferUnderflow(Exception):
    """Raised when attempting to read from a buffer that contains no data."""


class BufferOverflow(Exception):
    """Raised when attempting to write to a buffer that has no free slots."""


class DatasetNotReadyError(Exception):
    """Raised when a shared-memory dataset exists but is not attachable yet."""
