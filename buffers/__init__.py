"""Shared-memory buffers that carry frames and results between magacq's processes."""

from ._bead_roi import BeadRoiBuffer
from ._dtypes import bit_to_dtype, int_to_uint_dtype
from ._errors import BufferOverflow, BufferUnderflow, DatasetNotReadyError
from ._live_profile import LiveProfileBuffer
from ._matrix import MatrixBuffer
from ._platform import PORTABLE_ENV
from ._platform import choose as choose_fast_path
from ._platform._registry import ENV as REGISTRY_ENV
from ._platform._registry import registry_dir
from ._segment import (
    SegmentError,
    SegmentInfo,
    default_namespace,
    inspect_segment,
    list_segments,
    orphan_segments,
    remove_orphan_segments,
    remove_segment,
    remove_stale_segments,
    segment_name,
)
from ._sync import make_locks
from ._video import StackClaim, VideoBuffer
from ._zlut_sweep import DatasetAbsentError, ZLUTSweepDataset

__all__ = [
    "BeadRoiBuffer",
    "BufferOverflow",
    "BufferUnderflow",
    "DatasetAbsentError",
    "DatasetNotReadyError",
    "LiveProfileBuffer",
    "MatrixBuffer",
    "PORTABLE_ENV",
    "REGISTRY_ENV",
    "SegmentError",
    "SegmentInfo",
    "StackClaim",
    "VideoBuffer",
    "ZLUTSweepDataset",
    "bit_to_dtype",
    "choose_fast_path",
    "default_namespace",
    "inspect_segment",
    "int_to_uint_dtype",
    "list_segments",
    "make_locks",
    "orphan_segments",
    "registry_dir",
    "remove_orphan_segments",
    "remove_segment",
    "remove_stale_segments",
    "segment_name",
]
