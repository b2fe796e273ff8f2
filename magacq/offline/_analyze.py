"""`magacq analyze`: forces, extensions and curves of every tethered bead on every plateau of a run.

For each tethered bead (reference beads are used for drift) and each plateau (a protocol step
between its ``start`` and ``end`` events; a run without events is one plateau):

1. x, y, z minus the reference beads' mean motion (:func:`magacq.analysis.correct_drift`);
2. the extension ``l``. A Z-LUT gives each bead's z relative to its own height when the LUT was
   recorded, so the surface comes, per bead, from (first that applies): a known
   ``extension_nm`` on the first plateau (l = extension_nm + z - z there; without z, that
   extension on every plateau); the bead's height on the step labelled ``zero_step``, or on a
   step labelled ``surface`` (the bead down on the surface: l = z - z there); the stuck beads'
   Z-LUTs (:func:`magacq.analysis.lut_offset`: how far above them the bead sat when the LUTs
   were recorded). Stuck beads are the run's reference beads, and any the tracks show
   (:func:`magacq.analysis.find_stuck_beads`); they are also the drift reference;
3. the force from the fluctuations along ``axis``, the one perpendicular to the magnets' field
   (see :mod:`magacq.analysis`): spectral ML fit, Allan variance, equipartition;
4. per bead, a WLC fit when its plateaus span forces (x2 or more), with the extensions' errors
   and that of the zero they share (:func:`magacq.analysis.fit_wlc`; plateaus whose force fit
   warns are left out of it), and a rotation-curve fit when they span turns.

A force ramp (a ``ramp`` action) gives each bead's extension against the force along it
(:mod:`~magacq.offline._ramps`: the magnets' height through the run's force table).

Frames whose tracking flags spoil a coordinate (``SPOIL_XY``, ``SPOIL_Z``) are left out of it
and counted (a problem above ``FLAGGED_REPORT`` of a plateau). Plateaus are checked against the
magnets first (:func:`~magacq.offline._plateaus.check_plateaus`). A bead or a plateau that
cannot be analysed (too short, too many lost frames, a fit that fails) is recorded as a problem
and skipped; the others are analysed.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from magacq.analysis import (
    ForceCalibration,
    RotationFit,
    WLCFit,
    calibrate_force,
    correct_drift,
    correlated_mean,
    fill_gaps,
    find_stuck_beads,
    fit_rotation_curve,
    fit_wlc,
    lut_offset,
)
from magacq.errors import ConfigError
from magacq.offline._plateaus import check_plateaus
from magacq.offline._ramps import Ramp, RampPoint, find_ramps, ramp_points, ramp_segments
from magacq.protocol import ForceCurve
from magacq.runfile import Plateau, RunTracks, plateaus
from magacq.tracking import TrackFlag

__all__ = [
    "AnalysisSettings",
    "BeadAnalysis",
    "PlateauResult",
    "RunAnalysis",
    "SurfaceLuts",
    "analyze_tracks",
]

KB_PN_NM_PER_K = 1.380649e-2
#: a plateau with more lost frames than this is skipped; fewer are filled in linearly
MAX_LOST = 0.05
#: fewest frames a plateau needs
MIN_FRAMES = 256
#: a force above this (pN) is no tether's: a stuck bead not marked as a reference
STUCK_PN = 200.0
AXES = {"x": 0, "y": 1}
#: flags that leave a frame's x, y (``SPOIL_XY``) or z (``SPOIL_Z``) out of the fits
SPOIL_XY = TrackFlag.XY_NOT_CONVERGED
SPOIL_Z = TrackFlag.PROFILE_CLIPPED
#: flagged frames above this fraction of a plateau are reported
FLAGGED_REPORT = 0.03
#: the fraction of a plateau's frames with a z that its mean extension needs
MIN_Z = 0.25
#: the label of a step on which the beads sit on the surface, used without flags
SURFACE_LABEL = "surface"


@dataclass(frozen=True)
class AnalysisSettings:
    """What the analysis assumes.

    Attributes
    ----------
    axis : {"x", "y"}
        The camera axis perpendicular to the magnets' field (it calibrates the force).
    bead_radius_nm : float, optional
        Bead radius; default the run's (:attr:`magacq.runfile.RunTracks.bead_radius_nm`).
    temperature_k : float
    exposure_s : float, optional
        Camera exposure; default the run's (:attr:`~magacq.runfile.RunTracks.exposure_s`),
        else 0.
    zero_step : str, optional
        Label of the plateau on which every bead is on the surface (its height there is l = 0).
    extension_nm : float, optional
        The beads' extension on the first plateau, instead of the surface.
    reference : tuple of int, optional
        Bead ids of the stuck reference beads, instead of the run's and those found.
    """

    axis: str = "y"
    bead_radius_nm: float | None = None
    temperature_k: float = 296.0
    exposure_s: float | None = None
    zero_step: str | None = None
    extension_nm: float | None = None
    reference: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SurfaceLuts:
    """The Z-LUTs the run tracked with: ``planes[i]`` is bead ``bead_ids[i]``'s, on ``z_nm``."""

    bead_ids: np.ndarray
    planes: np.ndarray
    z_nm: np.ndarray


@dataclass(frozen=True)
class PlateauResult:
    """One bead on one plateau: extension (mean, standard error), the force calibration, the
    frames lost (untracked or flagged) and those of them left out for their flags."""

    plateau: Plateau
    extension_nm: float
    extension_err_nm: float
    calibration: ForceCalibration
    lost_frames: int
    flagged_frames: int = 0


@dataclass
class BeadAnalysis:
    """A tethered bead's plateaus, and its WLC and rotation fits where it has the data;
    ``zero`` says where its extension is measured from."""

    bead_id: int
    plateaus: list[PlateauResult] = field(default_factory=list)
    zero_err_nm: float = math.nan  # standard error of the z its extensions are measured from
    wlc: WLCFit | None = None
    rotation: RotationFit | None = None
    zero: str = ""
    ramp: list[RampPoint] = field(default_factory=list)


@dataclass
class RunAnalysis:
    """The analysis of one run; ``problems`` holds (bead_id, plateau index, message), -1 for all;
    ``reference`` the ids of the reference beads used, ``found`` those of them the tracks
    showed stuck (not marked in the run)."""

    run: RunTracks
    plateaus: list[Plateau]
    beads: list[BeadAnalysis]
    problems: list[tuple[int, int, str]]
    reference: tuple[int, ...]
    axis: str
    bead_radius_nm: float
    temperature_k: float
    exposure_s: float
    found: tuple[int, ...] = ()
    ramps: list[Ramp] = field(default_factory=list)


def _zero_from_step(z: np.ndarray, p: Plateau, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Each bead's (rows of ``z``) mean z on plateau ``p`` minus ``offset``, and its error."""
    zero = np.full(len(z), np.nan)
    err = np.full(len(z), np.nan)
    for row, trace in enumerate(z[:, p.start : p.stop]):
        try:
            mean, err[row] = _mean_z(trace)
        except ValueError:  # no z there (no Z-LUT), or too many frames lost
            continue
        zero[row] = mean - offset
    return zero, err


def _mean_z(z: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the frames of ``z`` that have one (a mean needs no regular
    sampling: frames left out for their flags are dropped, not filled in)."""
    ok = z[np.isfinite(z)]
    if len(ok) < MIN_Z * len(z):
        raise ValueError(f"{1 - len(ok) / len(z):.0%} of its frames have no z")
    mean, err, _ = correlated_mean(ok)
    return mean, err


def _zero_from_luts(tethered: np.ndarray, refs: np.ndarray, ref_z: np.ndarray, luts: SurfaceLuts,
                    tracked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each tethered bead's drift-corrected z at the surface, from the stuck beads' Z-LUTs:
    the references' mean z (their height in their own LUT; :func:`correct_drift` takes it out)
    less how far above them the bead sat during the sweep; NaN where no LUT overlaps. A
    reference needs a z on most of the frames ``tracked``."""
    row = {int(b): i for i, b in enumerate(luts.bead_ids)}
    zero = np.full(len(tethered), np.nan)
    err = np.full(len(tethered), np.nan)
    usable = [(r, z) for r, z in zip(refs, ref_z, strict=True)
              if int(r) in row and np.isfinite(z[tracked]).mean() > 1 - MAX_LOST]  # fmt: skip
    if not usable:
        return zero, err
    for i, bead in enumerate(tethered):
        if int(bead) not in row:
            continue
        found = [(lut_offset(luts.planes[row[int(bead)]], luts.planes[row[int(r)]],
                             luts.z_nm), z) for r, z in usable]  # fmt: skip
        ok = [(o, z) for o, z in found if np.isfinite(o[0])]
        if ok:
            zero[i] = np.mean([np.nanmean(z) - o[0] for o, z in ok])
            err[i] = math.sqrt(np.mean([o[1] ** 2 for o, _ in ok]) / len(ok))
    return zero, err


def _zero(z: np.ndarray, tethered: np.ndarray, refs: np.ndarray, ref_z: np.ndarray,
          plates: list[Plateau], s: AnalysisSettings, luts: SurfaceLuts | None,
          tracked: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """Each tethered bead's (rows of ``z``, drift-corrected) z at zero extension, its standard
    error and where it comes from; NaN where the bead has none (the fixed ``extension_nm`` is
    used then, or the bead is not analysed)."""
    labels = {p.label for p in plates}
    step = s.zero_step or (SURFACE_LABEL if SURFACE_LABEL in labels and s.extension_nm is None
                           else None)  # fmt: skip
    if s.extension_nm is not None and s.zero_step is None:
        if not plates:
            raise ConfigError("--extension is the beads' extension on the first plateau, and "
                              "the run has none: give --zero-step LABEL")  # fmt: skip
        zero, err = _zero_from_step(z, plates[0], s.extension_nm)
        return zero, err, [f"extension {s.extension_nm:g} nm given on plateau 0"] * len(z)
    if step is not None:
        steps = [p for p in plates if p.label == step]
        if not steps:
            raise ConfigError(f"no plateau labelled {step!r} for --zero-step "
                              f"(labels: {sorted(labels)})")  # fmt: skip
        zero, err = _zero_from_step(z, steps[0], 0.0)
        return zero, err, [f"the {step!r} step"] * len(z)
    if luts is None or not len(refs):
        raise ConfigError(
            "the extension needs the surface: no 'surface' step, and "
            + ("no Z-LUT" if luts is None else "no stuck beads")
            + ": give --zero-step LABEL (a step with the beads on the surface) or --extension "
            "NM (on the first plateau)"
        )
    zero, err = _zero_from_luts(tethered, refs, ref_z, luts, tracked)
    ids = ", ".join(str(int(r)) for r in refs)
    return zero, err, [f"the Z-LUTs of stuck beads {ids}"] * len(z)


def _references(run: RunTracks, xyz: np.ndarray, segments: list[tuple[int, int]],
                s: AnalysisSettings) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The reference beads (mask) and those of them found stuck in the tracks (``segments``:
    frame ranges at different forces)."""
    if s.reference is not None:
        unknown = sorted(set(s.reference) - set(run.bead_ids.tolist()))
        if unknown:
            raise ConfigError(f"--reference: no beads {unknown} in {run.path}")
        return np.isin(run.bead_ids, s.reference), np.zeros(len(run.bead_ids), dtype=bool)
    stuck = find_stuck_beads(xyz, segments)
    return run.reference | stuck, stuck & ~run.reference


def _spoiled(run: RunTracks) -> tuple[np.ndarray, np.ndarray]:
    """The run's positions with flag-spoiled coordinates NaN, and which frames were flagged."""
    xyz = run.xyz_nm
    if run.flags is None:
        return xyz, np.zeros(xyz.shape[:2], dtype=bool)
    bad_xy = (run.flags & SPOIL_XY) != 0
    bad_z = (run.flags & SPOIL_Z) != 0
    xyz = xyz.copy()
    xyz[bad_xy, :2] = np.nan
    xyz[bad_z, 2] = np.nan
    return xyz, (bad_xy | bad_z) & np.isfinite(run.xyz_nm).any(axis=2)


def analyze_tracks(
    run: RunTracks,
    settings: AnalysisSettings | None = None,
    *,
    luts: SurfaceLuts | None = None,
    force_curve: ForceCurve | None = None,
    on_bead: Callable[[BeadAnalysis], None] | None = None,
) -> RunAnalysis:
    """Analyse every tethered bead on every plateau and every force ramp of ``run`` (default
    settings if None); ``luts``: the Z-LUTs it tracked with (the surface from its stuck beads);
    ``force_curve``: the force table its protocol used (a ramp's force); ``on_bead`` is
    called with each bead's analysis as soon as it is done (its figure, a progress bar).

    Raises
    ------
    ConfigError
        No tethered bead, no way to the extension or the bead radius, a bad axis.
    """
    s = settings or AnalysisSettings()
    if s.axis not in AXES:
        raise ConfigError(f"axis {s.axis!r}: x or y")
    radius = s.bead_radius_nm if s.bead_radius_nm is not None else run.bead_radius_nm
    if radius is None:
        raise ConfigError(f"{run.path}: the run does not say the bead radius: give --bead-radius")
    exposure_s = next(e for e in (s.exposure_s, run.exposure_s, 0.0) if e is not None)
    exposure_s = min(exposure_s, 1.0 / run.frame_rate)
    plates, problems = check_plateaus(run, plateaus(run))
    ramps = find_ramps(run)
    if ramps and force_curve is None:
        problems.append((-1, -1, "no force table in the run's protocol: the ramps' forces are "
                                 "not known (their magnet heights are)"))  # fmt: skip
    xyz_all, flagged = _spoiled(run)
    segments = [(p.start, p.stop) for p in plates] or ramp_segments(ramps)
    refs, found = _references(run, xyz_all, segments, s)
    tethered = np.flatnonzero(~refs)
    if len(tethered) == 0:
        raise ConfigError(f"{run.path}: no tethered beads (all {len(refs)} are reference beads)"
                          if len(refs) else f"{run.path}: no beads")  # fmt: skip
    kt = KB_PN_NM_PER_K * s.temperature_k
    if not refs.any():
        problems.append((-1, -1, "no reference beads: positions not drift-corrected"))
    ref_xyz = xyz_all[refs]
    xyz = np.stack([correct_drift(xyz_all[tethered, :, a], ref_xyz[:, :, a])
                    for a in range(3)], axis=-1)  # fmt: skip
    zero, zero_err, source = _zero(xyz[:, :, 2], run.bead_ids[tethered], run.bead_ids[refs],
                                   ref_xyz[:, :, 2], plates, s, luts,
                                   np.isfinite(run.time_s))  # fmt: skip
    fixed = s.extension_nm if s.zero_step is None else None
    surface = s.zero_step or SURFACE_LABEL
    beads = []
    for row, bead in enumerate(run.bead_ids[tethered]):
        result = BeadAnalysis(int(bead), zero_err_nm=float(zero_err[row]), zero=source[row])
        if not np.isfinite(zero[row]) and fixed is None:
            problems.append((int(bead), -1, f"bead {bead}: no zero for its extension from "
                             f"{source[row]} (no z there, or no overlap of the Z-LUTs): "
                             "not analysed"))  # fmt: skip
            plates_of_bead: list[Plateau] = []
        else:
            plates_of_bead = [p for p in plates if p.label != surface]
        for p in plates_of_bead:
            try:
                res = _plateau(xyz[row], zero[row], fixed, p, run.frame_rate, AXES[s.axis],
                               radius, exposure_s, kt)  # fmt: skip
            except ValueError as exc:
                problems.append((int(bead), p.index, f"bead {bead}, plateau {p.index} "
                                                     f"({p.label}): {exc}"))  # fmt: skip
                continue
            n_flag = int(flagged[tethered[row], p.start : p.stop].sum())
            result.plateaus.append(replace(res, flagged_frames=n_flag))
            n, fitted = p.stop - p.start, res.calibration.spectrum.n_frames
            if fitted < n:
                problems.append((int(bead), p.index, f"bead {bead}, plateau {p.index} "
                                 f"({p.label}): {res.lost_frames / n:.0%} of its frames were not "
                                 f"tracked: fitted on its longest tracked stretch, {fitted} of "
                                 f"{n} frames"))  # fmt: skip
            if n_flag > FLAGGED_REPORT * n:
                problems.append((int(bead), p.index, f"bead {bead}, plateau {p.index} "
                                 f"({p.label}): {n_flag / n:.0%} of its frames "
                                 "flagged (tracking), left out"))  # fmt: skip
        if np.isfinite(zero[row]):
            result.ramp = [
                pt
                for r in ramps
                for pt in ramp_points(xyz[row, :, 2], zero[row], run, r, force_curve)
            ]
        _curves(result, kt, problems, fixed)
        beads.append(result)
        if on_bead is not None:
            on_bead(result)
    return RunAnalysis(run, plates, beads, problems, tuple(run.bead_ids[refs].tolist()), s.axis,
                       float(radius), s.temperature_k, exposure_s,
                       tuple(run.bead_ids[found].tolist()), ramps)  # fmt: skip


def _plateau(xyz: np.ndarray, zero: float, fixed: float | None, p: Plateau, frame_rate: float,
             axis: int, radius: float, exposure_s: float, kt: float) -> PlateauResult:  # fmt: skip
    n = p.stop - p.start
    if n < MIN_FRAMES:
        raise ValueError(f"{n} frames, too short for a fit (at least {MIN_FRAMES})")
    lateral, lost = _lateral(xyz[p.start : p.stop, axis])
    z = xyz[p.start : p.stop, 2]
    if np.isfinite(zero):
        ext, ext_err = _mean_z(z - zero)
    elif fixed is not None:  # no z at the bead's zero (no Z-LUT): the extension given
        ext, ext_err = fixed, 0.0
    else:
        raise ValueError("no z on the zero step")
    if not np.isfinite(ext) or ext + radius <= 0:
        raise ValueError(f"extension {ext:.0f} nm: the bead is not above the surface")
    cal = calibrate_force(lateral, frame_rate, ext + radius, exposure_s=exposure_s, kt=kt)
    if cal.spectrum.force_pn > STUCK_PN:
        raise ValueError(f"force {cal.spectrum.force_pn:.3g} pN: a stuck bead? "
                         "(--reference marks reference beads)")  # fmt: skip
    return PlateauResult(p, ext, ext_err, cal, lost)


def _lateral(trace: np.ndarray) -> tuple[np.ndarray, int]:
    """A plateau's lateral trace to fit, and how many of its frames were not tracked: the
    whole trace, its few gaps filled in; with more lost (frames a loaded PC dropped in bursts),
    its longest tracked stretch if that is long enough for a fit."""
    try:
        return fill_gaps(trace, MAX_LOST)
    except ValueError:
        tracked = np.concatenate(([0], np.isfinite(trace).astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(tracked))  # starts and stops of the tracked stretches
        starts, stops = edges[::2], edges[1::2]
        k = int(np.argmax(stops - starts)) if len(starts) else -1
        if k < 0 or stops[k] - starts[k] < MIN_FRAMES:
            raise
        return trace[starts[k] : stops[k]], int((~np.isfinite(trace)).sum())


def _curves(bead: BeadAnalysis, kt: float, problems: list[tuple[int, int, str]],
            fixed: float | None) -> None:  # fmt: skip
    """The bead's WLC fit (plateaus spanning forces) and rotation fit (spanning turns).

    The WLC takes the plateaus whose spectral fit has no warning (one too short for its
    correlation time gives a force whose error is not to be trusted), with each extension's
    error and the error of the zero they share (``fixed``: the first plateau's extension is the
    one given, the zero of the others)."""
    res = bead.plateaus
    fit = [r for r in res if not r.calibration.spectrum.warnings]
    force = np.array([r.calibration.force.force_pn for r in fit])
    if len(fit) >= 3 and force.max() >= 2 * force.min():
        zero_err = bead.zero_err_nm if math.isfinite(bead.zero_err_nm) else 0.0
        given = 0 if fixed is not None and fit[0].plateau.index == 0 else None
        try:
            bead.wlc = fit_wlc([r.extension_nm for r in fit], force,
                               [r.calibration.force.force_err_pn for r in fit],
                               extension_err_nm=[0.0 if i == given else r.extension_err_nm
                                                 for i, r in enumerate(fit)],
                               zero_err_nm=zero_err, zero_plateau=given, kt=kt)  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            problems.append((bead.bead_id, -1, f"bead {bead.bead_id}: WLC fit failed: {exc}"))
    turns = np.array([r.plateau.turns for r in res])
    if np.isfinite(turns).sum() >= 4 and len(np.unique(turns[np.isfinite(turns)])) >= 4:
        try:
            bead.rotation = fit_rotation_curve(turns, [r.extension_nm for r in res])
        except ValueError as exc:
            problems.append((bead.bead_id, -1, f"bead {bead.bead_id}: rotation fit: {exc}"))
