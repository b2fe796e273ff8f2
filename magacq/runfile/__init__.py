"""The HDF5 files magacq writes and reads: the run file (``magacq.run``) and the Z-LUT file
(``magacq.zlut``), their layouts, versions, writers and readers. Every other part of magacq
(the writer process, calibration, the viewer, analysis) goes through this package.
"""

from ._recorded import RecordedRun, open_recorded, read_attrs, read_frames, read_table
from ._run import (
    DROPPED_DTYPE,
    FLUSH_S,
    FRAMES_DTYPE,
    RETRACKED_DTYPE,
    ROIS_DTYPE,
    SCHEMA,
    SCHEMA_VERSION,
    TRACKS_DTYPE,
    TRUTH_DTYPE,
    RunFile,
    run_attrs,
    software_versions,
    to_records,
)
from ._video import (
    VIDEO_SCHEMA,
    VIDEO_SEQ_DTYPE,
    VideoFile,
    dataset_name,
    video_path,
)
from ._zlut import (
    QUALITY_DTYPE,
    ROI_TOLERANCE_PX,
    ZLUT_BUFFER,
    ZLutFile,
    load_zlut,
    read_zlut_file,
    rois_for_run,
    save_zlut_file,
    zlut_of_bead,
    zlut_rows,
)
from ._zlut import SCHEMA as ZLUT_SCHEMA
from ._zlut import SCHEMA_VERSION as ZLUT_SCHEMA_VERSION

__all__ = [
    "DROPPED_DTYPE",
    "FLUSH_S",
    "FRAMES_DTYPE",
    "QUALITY_DTYPE",
    "RETRACKED_DTYPE",
    "ROIS_DTYPE",
    "ROI_TOLERANCE_PX",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TRACKS_DTYPE",
    "TRUTH_DTYPE",
    "VIDEO_SCHEMA",
    "VIDEO_SEQ_DTYPE",
    "ZLUT_BUFFER",
    "ZLUT_SCHEMA",
    "ZLUT_SCHEMA_VERSION",
    "RecordedRun",
    "RunFile",
    "VideoFile",
    "ZLutFile",
    "dataset_name",
    "load_zlut",
    "open_recorded",
    "read_attrs",
    "read_frames",
    "read_table",
    "read_zlut_file",
    "rois_for_run",
    "run_attrs",
    "save_zlut_file",
    "software_versions",
    "to_records",
    "video_path",
    "zlut_of_bead",
    "zlut_rows",
]
