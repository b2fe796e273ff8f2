"""Force calibration and tether mechanics from tracked bead positions: pure functions on arrays.

Geometry (short and long pendulum). The magnets pull the bead up (z) with a force ``F`` and hold
its magnetic moment along their field, horizontal in the sample plane. A bead on a tether of
extension ``l`` with radius ``R`` is a pendulum in the two lateral directions, but not the same
one: **perpendicular to the field** the bead rolls freely about the field axis, the pivot is the
anchor and the lever the whole ``l + R`` (long pendulum), ``k = F / (l + R)``; **along the
field** the moment stops the bead rolling, it swings as a pendulum of length ``l`` coupled to its
rotation (short pendulum, a stiffer, two-mode spectrum). So the axis that calibrates is the one
*perpendicular to the field*, with ``length_nm = l + R``: ``F = kT (l + R) / <dx^2>`` there
(te Velthuis et al. 2010; Lipfert et al. 2009). Magnets whose field runs along the camera's x
calibrate on y (``magacq analyze --axis y``, the default).

Public API
----------
- :func:`fit_spectrum` (:class:`SpectrumFit`): maximum-likelihood fit of the power spectrum with
  aliasing and motion blur (Lansdorp & Saleh 2012); :func:`camera_psd`, :func:`periodogram`.
- :func:`fit_allan` (:class:`AllanFit`): the same from the Allan variance;
  :func:`allan_variance`, :func:`camera_allan_variance`, :func:`allan_covariance`.
- :func:`fit_likelihood` (:class:`LikelihoodFit`): the exact likelihood of the trace itself,
  with its likelihood interval (asymmetric): for traces of few correlation times.
- :func:`equipartition_force` (:class:`EquipartitionForce`): ``kT (l + R) / <dx^2>``.
- :func:`calibrate_force` (:class:`ForceCalibration`): all of them on one trace, and the force
  to quote (:class:`ForceEstimate`: the likelihood's on a trace of few correlation times).
- :func:`correct_drift`: subtract the reference beads' mean motion (:func:`reference_drift`);
  :func:`correlated_mean`; :func:`fill_gaps` (frames a tracker lost).
- :func:`find_stuck_beads` (:func:`lateral_jitter`): beads that neither fluctuate nor respond
  to force; :func:`lut_offset`: a bead's height above a stuck one from their Z-LUTs.
- :func:`fit_wlc` (:class:`WLCFit`), :func:`wlc_force`: worm-like chain.
- :func:`fit_rotation_curve` (:class:`RotationFit`, :class:`BucklingFit`): hat curves.
- :func:`fit_force_law` (:class:`ForceLaw`): the magnets' force against their height.
- Figures (matplotlib): :func:`plot_spectrum`, :func:`plot_allan`, :func:`plot_force_extension`,
  :func:`plot_rotation`, :func:`plot_zlut`, each taking a result and an optional Axes.
"""

from magacq.analysis._allan import (
    AllanFit,
    allan_covariance,
    allan_variance,
    camera_allan_variance,
    fit_allan,
)
from magacq.analysis._calibration import ForceCalibration, ForceEstimate, calibrate_force
from magacq.analysis._drift import correct_drift, reference_drift
from magacq.analysis._equipartition import EquipartitionForce, equipartition_force
from magacq.analysis._figures import (
    plot_allan,
    plot_force_extension,
    plot_rotation,
    plot_spectrum,
    plot_zlut,
    zlut_quality_figure,
)
from magacq.analysis._force_law import ForceLaw, fit_force_law
from magacq.analysis._gaps import fill_gaps
from magacq.analysis._likelihood import LikelihoodFit, fit_likelihood
from magacq.analysis._rotation import BucklingFit, RotationFit, fit_rotation_curve
from magacq.analysis._spectrum import SpectrumFit, camera_psd, fit_spectrum, periodogram
from magacq.analysis._stats import correlated_mean
from magacq.analysis._stuck import find_stuck_beads, lateral_jitter
from magacq.analysis._surface import lut_offset
from magacq.analysis._wlc import WLCFit, fit_wlc, wlc_force

__all__ = [
    "AllanFit",
    "BucklingFit",
    "EquipartitionForce",
    "ForceCalibration",
    "ForceEstimate",
    "LikelihoodFit",
    "ForceLaw",
    "RotationFit",
    "SpectrumFit",
    "WLCFit",
    "allan_covariance",
    "allan_variance",
    "calibrate_force",
    "camera_allan_variance",
    "camera_psd",
    "correct_drift",
    "reference_drift",
    "correlated_mean",
    "equipartition_force",
    "fill_gaps",
    "find_stuck_beads",
    "fit_allan",
    "fit_force_law",
    "fit_likelihood",
    "fit_rotation_curve",
    "fit_spectrum",
    "fit_wlc",
    "lateral_jitter",
    "lut_offset",
    "periodogram",
    "plot_allan",
    "plot_force_extension",
    "plot_rotation",
    "plot_spectrum",
    "plot_zlut",
    "wlc_force",
    "zlut_quality_figure",
]
