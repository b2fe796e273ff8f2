"""`magacq analyze`: forces, extensions and curves of every tethered bead on every plateau of a run.

For each tethered bead (reference beads are used for drift) and each plateau (a protocol step
between its ``start`` and ``end`` events; a run without events is one plateau):

1. x, y, z minus the reference beads' mean motion (:func:`magacq.analysis.correct_drift`);
2. the extension ``l``. A Z-LUT gives each bead's z relative to its own height when the LUT was
   recorded, so the surface must come from the run: either the bead's height on the step
   labelled ``zero_step`` (the bead pulled down onto the surface: l = z - z there), or a known
   ``extension_nm`` on the first plateau (l = extension_nm + z - z on the first plateau; without
   z, that extension on every plateau);
3. the force from the fluctuations along ``axis``, the one perpendicular to the magnets' field
   (see :mod:`magacq.analysis`): spectral ML fit, Allan variance, equipartition;
4. per bead, a WLC fit when its plateaus span forces (x2 or more), with the extensions' errors
   and that of the zero they share (:func:`magacq.analysis.fit_wlc`; plateaus whose force fit
   warns are left out of it), and a rotation-curve fit when they span turns.

A bead or a plateau that cannot be analysed (too short, too many lost frames, a fit that fails)
is recorded as a problem and skipped; the others are analysed.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from magacq.analysis import (
    ForceCalibration,
    RotationFit,
    WLCFit,
    calibrate_force,
    correct_drift,
    correlated_mean,
    fill_gaps,
    fit_rotation_curve,
    fit_wlc,
)
from magacq.errors import ConfigError
from magacq.runfile import Plateau, RunTracks, plateaus

__all__ = ["AnalysisSettings", "BeadAnalysis", "PlateauResult", "RunAnalysis", "analyze_tracks"]

KB_PN_NM_PER_K = 1.380649e-2
#: a plateau with more lost frames than this is skipped; fewer are filled in linearly
MAX_LOST = 0.05
#: fewest frames a plateau needs
MIN_FRAMES = 256
#: a force above this (pN) is no tether's: a stuck bead not marked as a reference
STUCK_PN = 200.0
AXES = {"x": 0, "y": 1}


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
        The beads' extension on the first plateau, when no step gives the surface.
    reference : tuple of int, optional
        Bead ids of the stuck reference beads, instead of the run's ``rois.reference``.
    """

    axis: str = "y"
    bead_radius_nm: float | None = None
    temperature_k: float = 296.0
    exposure_s: float | None = None
    zero_step: str | None = None
    extension_nm: float | None = None
    reference: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PlateauResult:
    """One bead on one plateau: extension (mean, standard error) and the force calibration."""

    plateau: Plateau
    extension_nm: float
    extension_err_nm: float
    calibration: ForceCalibration
    lost_frames: int


@dataclass
class BeadAnalysis:
    """A tethered bead's plateaus, and its WLC and rotation fits where it has the data."""

    bead_id: int
    plateaus: list[PlateauResult] = field(default_factory=list)
    zero_err_nm: float = math.nan  # standard error of the z its extensions are measured from
    wlc: WLCFit | None = None
    rotation: RotationFit | None = None


@dataclass
class RunAnalysis:
    """The analysis of one run; ``problems`` holds (bead_id, plateau index, message), -1 for all;
    ``reference`` the ids of the reference beads used."""

    run: RunTracks
    plateaus: list[Plateau]
    beads: list[BeadAnalysis]
    problems: list[tuple[int, int, str]]
    reference: tuple[int, ...]
    axis: str
    bead_radius_nm: float
    temperature_k: float
    exposure_s: float


def _zero(
    z: np.ndarray, plates: list[Plateau], s: AnalysisSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Each tethered bead's z (rows of ``z``, drift-corrected) at zero extension, and its
    standard error (the mean of a correlated trace); NaN where the bead has no z there (the
    fixed ``extension_nm`` is used then)."""
    if s.zero_step is not None:
        steps = [p for p in plates if p.label == s.zero_step]
        if not steps:
            raise ConfigError(f"no plateau labelled {s.zero_step!r} for --zero-step "
                              f"(labels: {sorted({p.label for p in plates})})")  # fmt: skip
        p, offset = steps[0], 0.0
    elif s.extension_nm is not None:
        p, offset = plates[0], s.extension_nm
    else:
        raise ConfigError(
            "the extension needs the surface: give --zero-step LABEL (a step with "
            "the beads on the surface) or --extension NM (on the first plateau)"
        )
    zero = np.full(len(z), np.nan)
    err = np.full(len(z), np.nan)
    for row, trace in enumerate(z[:, p.start : p.stop]):
        try:
            mean, err[row], _ = correlated_mean(fill_gaps(trace, MAX_LOST)[0])
        except ValueError:  # no z there (no Z-LUT), or too many frames lost
            continue
        zero[row] = mean - offset
    return zero, err


def analyze_tracks(
    run: RunTracks,
    settings: AnalysisSettings | None = None,
    *,
    on_bead: Callable[[BeadAnalysis], None] | None = None,
) -> RunAnalysis:
    """Analyse every tethered bead on every plateau of ``run`` (default settings if None);
    ``on_bead`` is called with each bead's analysis as soon as it is done (its figure).

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
    refs = run.reference.copy()
    if s.reference is not None:
        unknown = sorted(set(s.reference) - set(run.bead_ids.tolist()))
        if unknown:
            raise ConfigError(f"--reference: no beads {unknown} in {run.path}")
        refs = np.isin(run.bead_ids, s.reference)
    tethered = np.flatnonzero(~refs)
    if len(tethered) == 0:
        raise ConfigError(f"{run.path}: no tethered beads (all {len(refs)} are reference beads)"
                          if len(refs) else f"{run.path}: no beads")  # fmt: skip
    kt = KB_PN_NM_PER_K * s.temperature_k
    plates = plateaus(run)
    problems: list[tuple[int, int, str]] = []
    if not refs.any():
        problems.append((-1, -1, "no reference beads: positions not drift-corrected"))
    ref_xyz = run.xyz_nm[refs]
    xyz = np.stack([correct_drift(run.xyz_nm[tethered, :, a], ref_xyz[:, :, a])
                    for a in range(3)], axis=-1)  # fmt: skip
    zero, zero_err = _zero(xyz[:, :, 2], plates, s)
    beads = []
    for row, bead in enumerate(run.bead_ids[tethered]):
        result = BeadAnalysis(int(bead), zero_err_nm=float(zero_err[row]))
        for p in plates:
            if p.label == s.zero_step:  # the bead on the surface: no tether to calibrate
                continue
            try:
                result.plateaus.append(_plateau(xyz[row], zero[row], s.extension_nm, p,
                                                run.frame_rate, AXES[s.axis], radius,
                                                exposure_s, kt))  # fmt: skip
            except ValueError as exc:
                problems.append((int(bead), p.index, f"bead {bead}, plateau {p.index} "
                                                     f"({p.label}): {exc}"))  # fmt: skip
        _curves(result, kt, problems, s.extension_nm if s.zero_step is None else None)
        beads.append(result)
        if on_bead is not None:
            on_bead(result)
    return RunAnalysis(run, plates, beads, problems, tuple(run.bead_ids[refs].tolist()), s.axis,
                       float(radius), s.temperature_k, exposure_s)  # fmt: skip


def _plateau(xyz: np.ndarray, zero: float, fixed: float | None, p: Plateau, frame_rate: float,
             axis: int, radius: float, exposure_s: float, kt: float) -> PlateauResult:  # fmt: skip
    n = p.stop - p.start
    if n < MIN_FRAMES:
        raise ValueError(f"{n} frames, too short for a fit (at least {MIN_FRAMES})")
    lateral, lost = fill_gaps(xyz[p.start : p.stop, axis], MAX_LOST)
    z = xyz[p.start : p.stop, 2]
    if np.isfinite(zero):
        ext, ext_err, _ = correlated_mean(fill_gaps(z, MAX_LOST)[0] - zero)
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


def _curves(bead: BeadAnalysis, kt: float, problems: list[tuple[int, int, str]],
            fixed: float | None) -> None:  # fmt: skip
    """The bead's WLC fit (plateaus spanning forces) and rotation fit (spanning turns).

    The WLC takes the plateaus whose spectral fit has no warning (one too short for its
    correlation time gives a force whose error is not to be trusted), with each extension's
    error and the error of the zero they share (``fixed``: the first plateau's extension is the
    one given, the zero of the others)."""
    res = bead.plateaus
    fit = [r for r in res if not r.calibration.spectrum.warnings]
    force = np.array([r.calibration.spectrum.force_pn for r in fit])
    if len(fit) >= 3 and force.max() >= 2 * force.min():
        zero_err = bead.zero_err_nm if math.isfinite(bead.zero_err_nm) else 0.0
        given = 0 if fixed is not None and fit[0].plateau.index == 0 else None
        try:
            bead.wlc = fit_wlc([r.extension_nm for r in fit], force,
                               [r.calibration.spectrum.force_err_pn for r in fit],
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
