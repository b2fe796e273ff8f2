"""Batched XYZ tracking of a stack of bead ROIs."""

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._flags import TrackFlag
from ._sampling import FASTMATH, SAMPLE_BLOCK, sample_quadrants
from ._simd import aligned_copy, aligned_empty, interleave_rows
from ._spec import ProfileSpec
from ._xy import (
    MAX_ASYMMETRY,
    MIN_EXCESS_VARIANCE,
    asymmetry,
    auto_convolution,
    autoconv_scratch,
    autoconv_tables,
    bin_means,
    center_of_mass,
    fit_scratch,
    load_roi,
    qi_scratch_size,
    qi_shift,
    template_fit,
)
from ._zlut import ZLut
from ._zmatch import match_plane, normalize_profile, search_tables


class XYMethod(enum.IntEnum):
    """How x, y are refined after the centre of mass (each includes the ones before it)."""

    COM = 0
    """Background-subtracted centre of mass only."""
    AUTOCONV = 1
    """Then the symmetric self-convolution of the column and row profiles (exact, noisier)."""
    QI = 2
    """Then iterated quadrant interpolation (van Loenhout et al., Biophys J 2012). Bilinear
    interpolation leaves a sub-pixel bias of up to ~1 nm, more when the ROI clips the rings."""
    FIT = 3
    """Like QI, then a least-squares fit of the image by its own radial profile: removes the
    sub-pixel bias that bilinear interpolation leaves in QI (the default)."""


@dataclass(frozen=True)
class TrackResult:
    """Per-ROI tracking output; ``n`` = number of ROIs.

    Attributes
    ----------
    x, y : ndarray (n,), float64
        Centre in pixels within the ROI: x along columns, y along rows, pixel centres at
        integers (the ROI's first pixel spans -0.5..0.5).
    z : ndarray (n,), float64
        Height in nm on the Z-LUT's scale.
    flags : ndarray (n,), uint16
        ``TrackFlag`` bits.
    profiles : ndarray (n, n_radii), float64
        Raw radial profile (mean intensity, input units) about the centre, bin radii
        ``spec.radii``; NaN bins were empty.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    flags: np.ndarray
    profiles: np.ndarray


_NO_SIGNAL = int(TrackFlag.NO_SIGNAL)
_OUTSIDE = int(TrackFlag.OUTSIDE_ROI)
_CLIPPED = int(TrackFlag.PROFILE_CLIPPED)
_INCOMPLETE = int(TrackFlag.PROFILE_INCOMPLETE)
_NO_LUT = int(TrackFlag.NO_LUT)
_NOT_CONVERGED = int(TrackFlag.XY_NOT_CONVERGED)
#: A refinement step below this (pixels) ends the iterations.
_CONVERGED_PX = 0.03
#: The largest ratio of successive QI steps that :func:`extrapolated_step` extrapolates.
_MAX_RATIO = 0.9


@njit(cache=True, fastmath=FASTMATH)
def extrapolated_step(step: float, previous: float) -> float:
    """QI's step to the end of its series: where neighbours' rings reach into a ROI, QI's gain
    ``g`` may be far from 1 and its steps a geometric series of ratio ``r = 1 - g`` (0.74: 7
    passes, stopping 0.08 px short of where they lead). From two steps, ``step / (1 - r)`` goes
    the whole way (Aitken). Only after a step of at least ``_CONVERGED_PX``, and for ``|r| <=
    _MAX_RATIO`` (at most ten times ``step``)."""
    if abs(previous) < _CONVERGED_PX:
        return step
    r = step / previous
    return step / (1.0 - r) if abs(r) <= _MAX_RATIO else step


@njit(cache=True, fastmath=FASTMATH)
def _profile(sums: np.ndarray, counts: np.ndarray, n_r: int, prof: np.ndarray) -> bool:
    """Merge the four quadrants into the radial profile; False if a bin had no sample."""
    complete = True
    for k in range(n_r):
        c = counts[k] + counts[n_r + k] + counts[2 * n_r + k] + counts[3 * n_r + k]
        if c == 0:
            prof[k] = np.nan
            complete = False
        else:
            s = sums[k] + sums[n_r + k] + sums[2 * n_r + k] + sums[3 * n_r + k]
            prof[k] = s / c
    return complete


def _make_kernel(xy_method: XYMethod) -> Callable[..., None]:
    """The compiled kernel of one method: ``method`` is a constant, so numba prunes the other
    methods' branches before typing and compiles only the functions this method calls."""
    method = int(xy_method)

    def kernel(
        rois, lut_index, iterations, dft, scan, dx, dy, starts, reach, n_r, radial_step,
        planes, planes_t, norms, weights, z0, dz, x_out, y_out, z_out, flags_out, prof_out,
    ):  # fmt: skip
        n, h, w = rois.shape
        img = aligned_empty(h * w, np.float32).reshape((h, w))
        sums = np.empty(4 * n_r)
        counts = np.empty(4 * n_r, dtype=np.int64)
        work = np.empty(qi_scratch_size(n_r))
        means = np.empty(4 * n_r)
        col_sums = aligned_empty(w, np.float32)
        row_sums = aligned_empty(h, np.float32)
        com_cols = aligned_empty(2 * w, np.float32)
        pr, pim, conv = autoconv_scratch(dft, scan)
        pn = np.empty(n_r)
        za = aligned_empty(n_r, np.float32)
        zd = aligned_empty(norms.shape[1], np.float32)
        prof = np.empty(n_r)
        coef, row, runs = fit_scratch(n_r)
        vals = aligned_empty(dx.shape[0], np.float32)
        sfx = aligned_empty(SAMPLE_BLOCK, np.float32)
        sfy = aligned_empty(SAMPLE_BLOCK, np.float32)
        sidx = aligned_empty(SAMPLE_BLOCK, np.uint32)
        # the ROI's rows interleaved on its own type: uint16 is half the bytes of float32
        pairs = aligned_empty(2 * h * w, rois.dtype)
        quads = aligned_empty(4 * SAMPLE_BLOCK, rois.dtype)
        for i in range(n):
            fl = 0
            z_out[i] = np.nan
            bg, noise, excess, peak = load_roi(rois[i], img, col_sums, row_sums)
            # The strongest deviations lie near the centre: the rings fade outwards. A start
            # for the refinements needs every second row only (all of them if that finds none).
            threshold = max(3.0 * noise, 0.5 * peak)
            cx, cy = center_of_mass(img, bg, threshold, com_cols, 1 if method == 0 else 2)
            if np.isnan(cx) and method > 0:
                cx, cy = center_of_mass(img, bg, threshold, com_cols)
            if not (excess > MIN_EXCESS_VARIANCE) or np.isnan(cx):
                x_out[i] = np.nan
                y_out[i] = np.nan
                flags_out[i] = _NO_SIGNAL
                prof_out[i, :] = np.nan
                continue
            interleave_rows(rois[i], pairs)
            if method >= 1:
                cx, cy = auto_convolution(col_sums, row_sums, cx, cy, dft, scan, pr, pim, conv)
            skipped = sample_quadrants(
                img, pairs, cx, cy, dx, dy, starts, reach, sums, counts, vals, sfx, sfy, sidx, quads
            )
            complete = _profile(sums, counts, n_r, prof)
            sx = 0.0
            sy = 0.0
            if method >= 2:
                px = 0.0  # QI's previous steps, as measured (0: none to extrapolate from)
                py = 0.0
                for it in range(iterations):
                    if method == 2:
                        bin_means(sums, counts, means)
                        qx, qy = qi_shift(means, n_r, radial_step, work)
                        sx = extrapolated_step(qx, px)
                        sy = extrapolated_step(qy, py)
                        px = qx if sx == qx else 0.0  # after a jump, a new series
                        py = qy if sy == qy else 0.0
                    elif complete:
                        fx, fy = template_fit(img, cx, cy, prof, radial_step, coef, row, runs)
                        sx = fx - cx
                        sy = fy - cy
                    else:  # too near the edge for a fit: leave x, y to the flags below
                        break
                    cx += sx
                    cy += sy
                    if abs(sx) < _CONVERGED_PX and abs(sy) < _CONVERGED_PX:
                        break
                    if it < iterations - 1:
                        skipped = sample_quadrants(
                            img,
                            pairs,
                            cx,
                            cy,
                            dx,
                            dy,
                            starts,
                            reach,
                            sums,
                            counts,
                            vals,
                            sfx,
                            sfy,
                            sidx,
                            quads,
                        )
                        complete = _profile(sums, counts, n_r, prof)
                if abs(sx) > 10 * _CONVERGED_PX or abs(sy) > 10 * _CONVERGED_PX:
                    fl |= _NOT_CONVERGED
                # The profile comes from the last sampling pass: its centre differs from the final
                # one by the last step (< _CONVERGED_PX), a second-order change in a radial profile.
            inside = 0.5 <= cx <= w - 1.5 and 0.5 <= cy <= h - 1.5
            # QI and FIT end on the rings' centre of symmetry: rings asymmetric about it mean the
            # bead's own centre lies elsewhere (outside the ROI).
            if inside and method >= 2:
                if method == 3:  # (QI's are those of the last sums already)
                    bin_means(sums, counts, means)
                inside = asymmetry(means, counts, n_r) <= MAX_ASYMMETRY
            if not inside:
                x_out[i] = np.nan
                y_out[i] = np.nan
                flags_out[i] = fl | _OUTSIDE
                prof_out[i, :] = np.nan
                continue
            x_out[i] = cx
            y_out[i] = cy
            for k in range(n_r):  # not prof_out[i, :] = prof: its shape check costs 2 s to compile
                prof_out[i, k] = prof[k]
            if skipped > 0:
                fl |= _CLIPPED
            if skipped * 3 > dx.shape[0]:  # a third of the circles outside: z unreliable
                complete = False
            if not complete:
                fl |= _INCOMPLETE
            else:
                li = lut_index[i]
                if li < 0:
                    fl |= _NO_LUT
                elif normalize_profile(prof, pn):
                    pos, zf = match_plane(pn, weights, planes[li], planes_t[li], norms[li], za, zd)
                    fl |= zf
                    z_out[i] = z0 + dz * pos
                else:
                    fl |= _NO_SIGNAL
            flags_out[i] = fl

    # own names: each method's kernel gets its own cache files (numba names them so)
    kernel.__name__ = kernel.__qualname__ = f"track_{xy_method.name.lower()}"
    return njit(cache=True, fastmath=FASTMATH)(kernel)


#: One compiled kernel per method, each compiled on its first use (and cached on disk).
_KERNELS = {m: _make_kernel(m) for m in XYMethod}


@functools.lru_cache(maxsize=16)
def _tables(spec: ProfileSpec, roi: int) -> tuple[tuple[np.ndarray, ...], float]:
    """The kernel's read-only tables for one geometry and ROI size, computed once.

    ``dx, dy`` (float32), ``starts`` of ``spec.samples``; the self-convolution's ``dft, scan``;
    the Z match's per-bin ``weights`` (samples per bin ~ radius); and the samples' largest
    distance from the centre.
    """
    dx, dy, starts, reach = spec.samples
    dft, scan = autoconv_tables(roi)
    tables = (
        aligned_copy(dx.astype(np.float32)), aligned_copy(dy.astype(np.float32)), starts,
        aligned_copy(dft), aligned_copy(scan), spec.radii / spec.radii.mean(),
    )  # fmt: skip
    for t in tables:
        t.flags.writeable = False
    return tables, float(reach.max())


@functools.lru_cache(maxsize=16)
def _no_planes(n_radii: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Z-LUT of one NaN plane and its search tables: the kernel's when there is none."""
    planes = np.full((1, 1, n_radii), np.nan)  # (writeable: the kernel's signature with a LUT)
    return (planes, *search_tables(planes, np.ones(n_radii)))


def track_rois(
    rois: np.ndarray,
    lut_index: np.ndarray | None = None,
    zlut: ZLut | None = None,
    *,
    spec: ProfileSpec | None = None,
    method: XYMethod | str = XYMethod.FIT,
    iterations: int = 10,
) -> TrackResult:
    """Track every ROI of a stack: x, y by ``method``, radial profile, z from its bead's Z-LUT.

    Parameters
    ----------
    rois : ndarray, shape (n, roi, roi), uint8/uint16/float32/float64
        One ROI per bead and frame (n = frames x beads), C-contiguous.
    lut_index : ndarray (n,) of int, optional
        Which of ``zlut``'s LUTs each ROI uses; < 0 for none (z NaN, ``NO_LUT``). Default: 0 for
        every ROI when ``zlut`` is given, else none.
    zlut : ZLut, optional
        Per-bead Z-LUTs; its ``spec`` sets the profile geometry.
    spec : ProfileSpec, optional
        Profile geometry when no ``zlut`` is given; default ``ProfileSpec.for_roi(roi)``.
    method : XYMethod or its name ("com", "autoconv", "qi", "fit")
        XY refinement.
    iterations : int
        Most refinement passes of QI or FIT, each on polar samples about the previous centre;
        they stop once a step is below 0.03 px (one pass for a bead well inside,
        more for one whose rings the ROI clips). QI's steps, where successive ones shrink by a
        constant ratio (neighbours' rings in the ROI), go to the end of that series
        (:func:`extrapolated_step`).

    Returns
    -------
    TrackResult

    Raises
    ------
    ValueError
        On a malformed stack, a geometry that disagrees with the Z-LUT, or a bad LUT index.
    """
    rois = np.ascontiguousarray(rois)
    if rois.ndim != 3 or rois.shape[1] != rois.shape[2] or rois.shape[1] < 8:
        raise ValueError(f"rois must be (n, roi, roi) with roi >= 8, got {rois.shape}")
    if isinstance(method, str):
        method = XYMethod[method.upper()]
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    n = rois.shape[0]
    if zlut is not None:
        if spec is not None and spec != zlut.spec:
            raise ValueError(f"profile geometry {spec} differs from the Z-LUT's {zlut.spec}")
        spec = zlut.spec
        planes = zlut.planes
        planes_t, norms = zlut.search
        z0, dz = zlut.z0_nm, zlut.dz_nm
    else:
        spec = spec or ProfileSpec.for_roi(min(rois.shape[1:]))
        planes, planes_t, norms = _no_planes(spec.n_radii)
        z0, dz = np.nan, np.nan
    if lut_index is None:
        lut_index = np.full(n, 0 if zlut is not None else -1, dtype=np.int64)
    lut_index = np.ascontiguousarray(lut_index, dtype=np.int64)
    if lut_index.shape != (n,):
        raise ValueError(f"lut_index must have shape ({n},), got {lut_index.shape}")
    if (lut_index >= (zlut.n_luts if zlut is not None else 0)).any():
        raise ValueError("lut_index names a Z-LUT that is not there")
    (dx, dy, starts, dft, scan, weights), reach = _tables(spec, rois.shape[2])
    x = np.empty(n)
    y = np.empty(n)
    z = np.empty(n)
    flags = np.empty(n, dtype=np.uint16)
    profiles = np.empty((n, spec.n_radii))
    _KERNELS[method](
        rois, lut_index, int(iterations), dft, scan, dx, dy, starts, reach,
        spec.n_radii, float(spec.radial_step), planes, planes_t, norms, weights, float(z0),
        float(dz),
        x, y, z, flags, profiles,
    )  # fmt: skip
    return TrackResult(x, y, z, flags, profiles)
