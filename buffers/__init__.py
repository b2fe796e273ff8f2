"""Shared-memory buffers that carry frames and results between magacq's processes."""

from ._dtypes import bit_to_dtype, int_to_uint_dtype
from ._errors import BufferOverflow, BufferUnderflow, DatasetNotReadyError
from ._segment import SegmentError, list_segments, remove_stale_segments
from ._sync import make_locks
from ._video import StackClaim, VideoBuffer

__all__ = [
    "BufferOverflow",
    "BufferUnderflow",
    "DatasetNotReadyError",
    "SegmentError",
    "StackClaim",
    "VideoBuffer",
    "bit_to_dtype",
    "int_to_uint_dtype",
    "list_segments",
    "make_locks",
    "remove_stale_segments",
]
