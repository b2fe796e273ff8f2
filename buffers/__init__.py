"""Shared-memory buffers that carry frames and results between magacq's processes."""

from ._bead_roi import BeadRoiBuffer
from ._dtypes import bit_to_dtype, int_to_uint_dtype
from ._errors import BufferOverflow, BufferUnderflow, DatasetNotReadyError
from ._live_profile import LiveProfileBuffer
from ._matrix import MatrixBuffer
from ._segment import (
    PREFIX as SEGMENT_PREFIX,
)
from ._segment import (
    SegmentError,
    SegmentInfo,
    default_namespace,
    inspect_segment,
    list_segments,
    remove_stale_segments,
    segment_name,
)
from ._sync import make_locks
from ._video import StackClaim, VideoBuffer
from ._zlut_sweep import DatasetAbsentError, ZLUTSweepDataset

__all__ = [
    "SEGMENT_PREFIX",
    "BeadRoiBuffer",
    "BufferOverflow",
    "BufferUnderflow",
    "DatasetAbsentError",
    "DatasetNotReadyError",
    "LiveProfileBuffer",
    "MatrixBuffer",
    "SegmentError",
    "SegmentInfo",
    "StackClaim",
    "VideoBuffer",
    "ZLUTSweepDataset",
    "bit_to_dtype",
    "default_namespace",
    "inspect_segment",
    "int_to_uint_dtype",
    "list_segments",
    "make_locks",
    "remove_stale_segments",
    "segment_name",
]
