"""The analysis file (HDF5, schema ``magacq.analysis`` v4) that `magacq analyze` writes.

Layout (1-D compound datasets):

- ``forces`` (:data:`FORCES_DTYPE`): one row per bead per plateau: the plateau (index, label,
  first frame, frames, turns, magnet height), the bead's extension, the force to quote with
  its error and its 68 % interval ``[force_lo_pn, force_hi_pn]`` and ``force_method`` (v4:
  ``likelihood`` on a plateau of few correlation times, whose interval is asymmetric, else
  ``spectrum``), the spectral force with its error and corner frequency, the Allan and
  equipartition forces, the drag, the frames left out for their tracking flags, and the
  warnings;
- ``beads`` (:data:`BEADS_DTYPE`): one row per bead: reference or tethered (and whether the
  tracks showed it stuck), and for a tethered bead where its extension's zero comes from;
- ``wlc`` (:data:`WLC_DTYPE`): one row per bead with a force-extension curve;
- ``rotation`` (:data:`ROTATION_DTYPE`): one row per bead and side of a rotation curve: what
  the side does (buckling, denaturing, neither) and, when it buckles, where and how steeply;
- ``ramps`` (:data:`RAMP_DTYPE`, v3): one row per bead per stretch of a force ramp: the
  ramp (index, label), the stretch's frames, its time since the ramp began, the magnet height
  and the force there (from the run's force table; NaN without one), the bead's mean
  extension and its error;
- ``problems`` (:data:`PROBLEMS_DTYPE`): why a bead or plateau was not analysed;
- root attributes: schema, schema_version, run (the run file's path), run_schema_version, and
  the analysis settings (axis, bead radius, temperature, exposure).
"""

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from magacq.errors import ConfigError

__all__ = [
    "ANALYSIS_SCHEMA",
    "ANALYSIS_SCHEMA_VERSION",
    "BEADS_DTYPE",
    "FORCES_DTYPE",
    "PROBLEMS_DTYPE",
    "RAMP_DTYPE",
    "ROTATION_DTYPE",
    "WLC_DTYPE",
    "read_analysis_file",
    "write_analysis_file",
]

ANALYSIS_SCHEMA = "magacq.analysis"
ANALYSIS_SCHEMA_VERSION = 4
#: versions this magacq reads (tables a version lacks read as empty; columns as written)
_READS = (2, 3, 4)
FORCES_DTYPE = np.dtype(
    [
        ("bead_id", "i4"),
        ("plateau", "i4"),
        ("label", "S64"),
        ("first_frame", "i8"),
        ("n_frames", "i8"),
        ("turns", "f8"),
        ("magnet_mm", "f8"),
        ("extension_nm", "f8"),
        ("extension_err_nm", "f8"),
        ("force_pn", "f8"),
        ("force_err_pn", "f8"),
        ("force_lo_pn", "f8"),
        ("force_hi_pn", "f8"),
        ("force_method", "S16"),
        ("force_spectrum_pn", "f8"),
        ("force_spectrum_err_pn", "f8"),
        ("corner_hz", "f8"),
        ("corner_err_hz", "f8"),
        ("force_allan_pn", "f8"),
        ("force_allan_err_pn", "f8"),
        ("force_equipartition_pn", "f8"),
        ("force_equipartition_err_pn", "f8"),
        ("drag_pn_s_nm", "f8"),
        ("flagged_frames", "i8"),
        ("warnings", "S512"),
    ]
)
WLC_DTYPE = np.dtype(
    [
        ("bead_id", "i4"),
        ("contour_nm", "f8"),
        ("contour_err_nm", "f8"),
        ("persistence_nm", "f8"),
        ("persistence_err_nm", "f8"),
        ("chi2", "f8"),
        ("dof", "i4"),
    ]
)
ROTATION_DTYPE = np.dtype(
    [
        ("bead_id", "i4"),
        ("side", "S8"),
        ("kind", "S12"),
        ("buckling_turns", "f8"),
        ("buckling_err_turns", "f8"),
        ("slope_nm_per_turn", "f8"),
        ("slope_err_nm_per_turn", "f8"),
        ("plateau_nm", "f8"),
    ]
)
RAMP_DTYPE = np.dtype(
    [
        ("bead_id", "i4"),
        ("ramp", "i4"),
        ("label", "S64"),
        ("first_frame", "i8"),
        ("n_frames", "i4"),
        ("time_s", "f8"),
        ("magnet_mm", "f8"),
        ("force_pn", "f8"),
        ("extension_nm", "f8"),
        ("extension_err_nm", "f8"),
    ]
)
PROBLEMS_DTYPE = np.dtype([("bead_id", "i4"), ("plateau", "i4"), ("message", "S512")])
BEADS_DTYPE = np.dtype(
    [
        ("bead_id", "i4"),
        ("reference", "?"),
        ("found_stuck", "?"),
        ("zero", "S128"),
        ("zero_err_nm", "f8"),
    ]
)
_TABLES = {"forces": FORCES_DTYPE, "wlc": WLC_DTYPE, "rotation": ROTATION_DTYPE,
           "ramps": RAMP_DTYPE, "problems": PROBLEMS_DTYPE, "beads": BEADS_DTYPE}  # fmt: skip


def write_analysis_file(path: Path, tables: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Write the analysis file: every table of the layout (empty where absent), and ``attrs``."""
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = ANALYSIS_SCHEMA
        f.attrs["schema_version"] = ANALYSIS_SCHEMA_VERSION
        for key, value in attrs.items():
            f.attrs[key] = value
        for name, dtype in _TABLES.items():
            f.create_dataset(name, data=np.asarray(tables.get(name, np.empty(0, dtype)), dtype))


def read_analysis_file(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tables and attributes of an analysis file.

    Raises
    ------
    ConfigError
        Not an analysis file, or a schema version this magacq cannot read.
    """
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("schema") != ANALYSIS_SCHEMA:
                raise ConfigError(f"{path} is not a magacq analysis file")
            version = int(f.attrs.get("schema_version", 0))
            if version not in _READS:
                raise ConfigError(f"{path} has analysis schema version {version}; this magacq "
                                  f"reads version {ANALYSIS_SCHEMA_VERSION}")  # fmt: skip
            return {name: f[name][:] if name in f else np.empty(0, dtype)
                    for name, dtype in _TABLES.items()}, dict(f.attrs)  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
