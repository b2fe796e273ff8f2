"""The Z-LUT file that `magacq calibrate` writes and `magacq run` reads (schema ``magacq.zlut``).

One HDF5 file, schema version 1:

- attrs: ``schema`` ("magacq.zlut"), ``schema_version``, ``roi_size``, ``z0_nm``, ``dz_nm``,
  ``n_radii``, ``radial_step``, ``arc_step``, ``home_z_nm`` (stage position the sweep started
  from and returned to), ``stage_moves``, ``settings`` (the calibration section, JSON),
  ``config`` (the whole config, JSON), ``camera`` (geometry, JSON), ``created``, ``software``.
- ``planes`` (n_beads, n_planes, n_radii) float64: normalised profiles, NaN for a dropped bead.
- ``z_nm`` (n_planes,): bead height of each plane; ``stage_z_nm`` (n_planes,): the stage position
  it was recorded at.
- ``rois``: bead_id, x0, x1, y0, y1 (pixels) and reference, in bead-id order.
- ``quality``: per bead good, valid_fraction, saturated_fraction, distinct_fraction, reason.
- ``mean_profiles`` (n_beads, n_planes, n_radii): the raw averaged profiles, for inspection.
"""

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from magacq.errors import ConfigError

SCHEMA = "magacq.zlut"
SCHEMA_VERSION = 1

QUALITY_DTYPE = np.dtype(
    [
        ("bead_id", "<i8"),
        ("good", "?"),
        ("valid_fraction", "<f8"),
        ("saturated_fraction", "<f8"),
        ("distinct_fraction", "<f8"),
        ("reason", "S64"),
    ]
)
#: Tolerance, in pixels, between a run's ROI corner and the file's for the same bead.
ROI_TOLERANCE_PX = 2
#: The MatrixBuffer in which a run publishes the Z-LUT it tracks with (for `magacq view`): one
#: row per bead and plane, ``(bead_id, z_nm, profile...)``; written once, when the run starts.
ZLUT_BUFFER = "zlut"


@dataclass
class ZLutFile:
    """The contents of a Z-LUT file.

    Attributes
    ----------
    zlut : magacq.tracking.ZLut
        One LUT per bead, in bead-id order (a dropped bead's planes are NaN).
    rois : ndarray (n_beads, 5) int64
        Bead id, x0, x1, y0, y1.
    roi_size : int
    quality : ndarray of QUALITY_DTYPE
    attrs : dict
    """

    zlut: Any
    rois: np.ndarray
    roi_size: int
    quality: np.ndarray
    attrs: dict[str, Any]


def save_zlut_file(
    path: Path,
    *,
    zlut: Any,
    stage_z_nm: np.ndarray,
    rois: np.ndarray,
    reference: np.ndarray,
    roi_size: int,
    quality: np.ndarray,
    mean_profiles: np.ndarray,
    attrs: dict[str, Any],
) -> Path:
    """Write a Z-LUT file (to a temporary name, renamed when complete); return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    roi_table = np.zeros(
        len(rois),
        dtype=[("bead_id", "<i8"), ("x0", "<i8"), ("x1", "<i8"), ("y0", "<i8"), ("y1", "<i8"),
               ("reference", "?")],
    )  # fmt: skip
    for name, col in zip(("bead_id", "x0", "x1", "y0", "y1"), np.asarray(rois).T, strict=True):
        roi_table[name] = col
    roi_table["reference"] = reference
    with h5py.File(tmp, "w") as f:
        f.attrs.update(
            {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "roi_size": int(roi_size),
                "z0_nm": float(zlut.z0_nm),
                "dz_nm": float(zlut.dz_nm),
                "n_radii": int(zlut.spec.n_radii),
                "radial_step": float(zlut.spec.radial_step),
                "arc_step": float(zlut.spec.arc_step),
                "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                **{k: v if not isinstance(v, dict) else json.dumps(v) for k, v in attrs.items()},
            }
        )
        f["planes"] = zlut.planes
        f["z_nm"] = zlut.z_nm
        f["stage_z_nm"] = np.asarray(stage_z_nm, dtype=np.float64)
        f["rois"] = roi_table
        f["quality"] = quality
        f["mean_profiles"] = mean_profiles
    tmp.replace(path)
    return path


def read_zlut_file(path: str | Path) -> ZLutFile:
    """Read and check a Z-LUT file.

    Raises
    ------
    ConfigError
        No such file, not a Z-LUT file, or a schema version this magacq cannot read.
    """
    from magacq.tracking import ProfileSpec, ZLut

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"tracking.zlut: no such Z-LUT file: {path}")
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            if attrs.get("schema") != SCHEMA:
                raise ConfigError(f"tracking.zlut: {path} is not a magacq Z-LUT file")
            version = int(attrs.get("schema_version", 0))
            if version != SCHEMA_VERSION:
                raise ConfigError(
                    f"tracking.zlut: {path} has Z-LUT schema version {version}; "
                    f"this magacq reads version {SCHEMA_VERSION}"
                )
            planes = f["planes"][:]
            roi_table = f["rois"][:]
            quality = f["quality"][:]
    except OSError as exc:
        raise ConfigError(f"tracking.zlut: cannot read {path}: {exc}") from None
    except KeyError as exc:  # a dataset missing
        raise ConfigError(f"tracking.zlut: {path} is damaged: no {exc} dataset") from None
    try:
        spec = ProfileSpec(
            int(attrs["n_radii"]), float(attrs["radial_step"]), float(attrs["arc_step"])
        )
        zlut = ZLut(planes, float(attrs["z0_nm"]), float(attrs["dz_nm"]), spec)
        rois = np.column_stack([roi_table[k] for k in ("bead_id", "x0", "x1", "y0", "y1")])
        roi_size = int(attrs["roi_size"])
    except KeyError as exc:
        raise ConfigError(
            f"tracking.zlut: {path} is damaged: no {exc} attribute or field"
        ) from None
    except (TypeError, ValueError) as exc:  # e.g. planes of the wrong shape
        raise ConfigError(f"tracking.zlut: {path} is damaged: {exc}") from None
    return ZLutFile(zlut, rois.astype(np.int64), roi_size, quality, attrs)


def load_zlut(path: str | Path | None) -> Any:
    """The :class:`~magacq.tracking.ZLut` of a Z-LUT file, one LUT per bead in bead-id order
    (None without a file: a run that tracks no z)."""
    return read_zlut_file(path).zlut if path else None


def zlut_rows(zlut: Any) -> np.ndarray:
    """A :class:`~magacq.tracking.ZLut` as :data:`ZLUT_BUFFER` rows ``(bead_id, z_nm, profile...)``.

    LUT ``i`` is bead ``i``'s (the trackers use them in bead-id order). Every plane is kept, so
    each bead's z grid stays regular; a plane with no data is NaN.
    """
    n_luts, n_planes, n_radii = zlut.planes.shape
    rows = np.empty((n_luts, n_planes, 2 + n_radii))
    rows[:, :, 0] = np.arange(n_luts)[:, None]
    rows[:, :, 1] = zlut.z_nm[None, :]
    rows[:, :, 2:] = zlut.planes
    return rows.reshape(-1, 2 + n_radii)


def zlut_of_bead(rows: np.ndarray, bead_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Bead ``bead_id``'s ``(z_nm, profiles)`` from :data:`ZLUT_BUFFER` rows, by z.

    None when the rows hold no data for that bead (none at all, or only NaN planes).
    """
    mine = rows[rows[:, 0] == bead_id]
    if np.isnan(mine[:, 2:]).all():
        return None
    mine = mine[np.argsort(mine[:, 1], kind="stable")]
    return mine[:, 1].copy(), mine[:, 2:].copy()


def check_zlut_file(path: str | Path, roi_size: int, *, n_beads: int | None) -> ZLutFile:
    """Read a Z-LUT file and check it fits a run of ``roi_size`` px ROIs and, unless None,
    ``n_beads`` beads (what `validate` can check without the camera).

    Raises
    ------
    ConfigError
        The file is missing, damaged, of another schema, ROI size or bead count.
    """
    lut = read_zlut_file(path)
    if lut.roi_size != roi_size:
        raise ConfigError(
            f"tracking.zlut: {path} was calibrated with {lut.roi_size} px ROIs, "
            f"this run uses tracking.roi_size {roi_size}: recalibrate (magacq calibrate)"
        )
    if n_beads is not None and n_beads != len(lut.rois):
        raise ConfigError(
            f"tracking.zlut: {path} holds Z-LUTs for {len(lut.rois)} beads, this run tracks "
            f"{n_beads}: the bead set differs, recalibrate or use the beads.rois it was made with"
        )
    return lut


def rois_for_run(
    path: str | Path, rois: list[tuple[int, int, int, int, int]], roi_size: int, *, explicit: bool
) -> list[tuple[int, int, int, int, int]]:
    """The run's bead ROIs checked against (or, when detected, taken from) a Z-LUT file.

    Parameters
    ----------
    path : path of the Z-LUT file
    rois : the run's ROIs ``(id, x0, x1, y0, y1)``
    roi_size : the run's ``tracking.roi_size``
    explicit : True when the ROIs come from ``beads.rois`` (they must then match the file's,
        bead for bead, within ``ROI_TOLERANCE_PX``); False when detected (the same beads must
        be found, within ``ROI_TOLERANCE_PX``, and the file's ROIs are used).

    Raises
    ------
    ConfigError
        The file was made with another ROI size or for another set of beads.
    """
    lut = check_zlut_file(path, roi_size, n_beads=len(rois) if explicit else None)
    file_rois = [tuple(int(v) for v in r) for r in lut.rois]
    if not explicit:
        from magacq.tracking import bead_set_difference

        corners = np.array([[r[1], r[3]] for r in rois]).reshape(-1, 2)
        diff = bead_set_difference(corners, lut.rois[:, [1, 3]], ROI_TOLERANCE_PX)
        if diff:
            raise ConfigError(f"tracking.zlut: the beads detected are not those of {path}: "
                              f"{diff}: recalibrate, or give beads.rois")  # fmt: skip
        return file_rois  # type: ignore[return-value]
    for run_roi, file_roi in zip(rois, file_rois, strict=True):
        dx, dy = run_roi[1] - file_roi[1], run_roi[3] - file_roi[3]
        if max(abs(dx), abs(dy)) > ROI_TOLERANCE_PX:
            raise ConfigError(
                f"tracking.zlut: bead {run_roi[0]} of this run (ROI corner {run_roi[1]}, "
                f"{run_roi[3]}) is not bead {file_roi[0]} of {path} (corner {file_roi[1]}, "
                f"{file_roi[3]}): the bead set differs, recalibrate"
            )
    return rois
