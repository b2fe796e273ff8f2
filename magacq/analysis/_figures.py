"""Figures of the fits: one function per figure, each taking the result and an optional Axes.

matplotlib is imported when a figure is drawn, so the fits run without it. The titles sit at a
fixed height (matplotlib otherwise measures every tick label to place them), the log axes have
no minor ticks, and ``legend=False``
leaves the legend to the caller: the pages of `magacq analyze` draw many of these at once.
"""

import textwrap
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from magacq.analysis._allan import AllanFit
from magacq.analysis._rotation import RotationFit
from magacq.analysis._spectrum import SpectrumFit
from magacq.analysis._wlc import WLCFit

__all__ = [
    "plot_allan",
    "plot_force_extension",
    "plot_rotation",
    "plot_spectrum",
    "plot_zlut",
    "zlut_quality_figure",
]

#: beads drawn in a Z-LUT quality figure (a page; the file holds every bead's quality)
QUALITY_BEADS = 24


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(5, 4), layout="constrained").add_subplot()


def _title(ax: Any, text: str) -> None:
    """The title at a fixed height; no minor ticks on the log axes (a tick is ~5 ms to lay
    out, and a spectrum spans 8 decades: most of a page's drawing time)."""
    ax.set_title(text, fontsize=9, y=1.0, pad=4)
    ax.minorticks_off()


def plot_spectrum(fit: SpectrumFit, ax: Any = None, *, label: str = "", color: Any = None,
                  linestyle: str = "-", legend: bool = True) -> Any:  # fmt: skip
    """The averaged periodogram (log-binned points) and the fitted spectrum, corner marked."""
    ax = _axes(ax)
    pts = ax.loglog(fit.freq_hz, fit.psd_nm2_hz, ".", ms=3, color=color, alpha=0.6)[0]
    f = np.geomspace(fit.freq_hz[0], fit.frame_rate / 2, 300)
    text = f"{fit.force_pn:.3g} +- {fit.force_err_pn:.2g} pN"
    ax.loglog(
        f,
        fit.model_psd(f),
        linestyle,
        color=pts.get_color(),
        lw=1.2,
        label=f"{label}: {text}" if label else text,
    )
    ax.axvline(fit.corner_hz, color=pts.get_color(), ls=":", lw=0.8)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (nm$^2$/Hz)")
    _title(ax, "power spectrum, ML fit (blur + aliasing)")
    if legend:
        ax.legend(fontsize=7)
    return ax


def plot_allan(fit: AllanFit, ax: Any = None, *, label: str = "", color: Any = None,
               linestyle: str = "-", legend: bool = True) -> Any:  # fmt: skip
    """The Allan deviation (points) and the fitted one."""
    ax = _axes(ax)
    pts = ax.loglog(fit.tau_bins_s, np.sqrt(fit.avar_nm2), "o", ms=3, color=color, alpha=0.7)[0]
    t = np.geomspace(fit.tau_bins_s[0], fit.tau_bins_s[-1], 200)
    text = f"{fit.force_pn:.3g} pN"
    ax.loglog(
        t,
        np.sqrt(fit.model_avar(t)),
        linestyle,
        color=pts.get_color(),
        lw=1.2,
        label=f"{label}: {text}" if label else text,
    )
    ax.set_xlabel("bin time (s)")
    ax.set_ylabel("Allan deviation (nm)")
    _title(ax, "Allan deviation, ML fit")
    if legend:
        ax.legend(fontsize=7)
    return ax


def plot_force_extension(
    extension_nm: ArrayLike,
    force_pn: ArrayLike,
    force_err_pn: ArrayLike,
    wlc: WLCFit | None = None,
    ax: Any = None,
    *,
    label: str = "",
    color: Any = None,
) -> Any:
    """Force against extension with error bars, and the WLC fit if given."""
    ax = _axes(ax)
    bars = ax.errorbar(extension_nm, force_pn, yerr=force_err_pn, fmt="o", ms=4, capsize=2,
                       label=label or None, color=color)  # fmt: skip
    if wlc is not None:
        e = np.linspace(np.nanmin(extension_nm) * 0.9, np.nanmax(extension_nm) * 1.005, 200)
        e = e[e < wlc.contour_nm * 0.999]
        ax.plot(
            e,
            wlc.force(e),
            "-",
            color=bars[0].get_color(),
            lw=1,
            label=f"WLC L = {wlc.contour_nm:.0f} +- {wlc.contour_err_nm:.0f} nm, "
            f"P = {wlc.persistence_nm:.1f} +- {wlc.persistence_err_nm:.1f} nm",
        )
    ax.set_yscale("log")
    ax.set_xlabel("extension (nm)")
    ax.set_ylabel("force (pN)")
    _title(ax, "force-extension")
    if wlc is not None or label:
        ax.legend(fontsize=7)
    return ax


def plot_rotation(
    turns: ArrayLike,
    extension_nm: ArrayLike,
    fit: RotationFit | None = None,
    ax: Any = None,
    *,
    back: list[bool] | None = None,
    color: Any = None,
) -> Any:
    """Extension against turns (``back``: the plateaus of the way back, hollow squares), with
    the buckling hinge of each side that buckles and what each side does."""
    ax = _axes(ax)
    n, z = np.asarray(turns, dtype=float), np.asarray(extension_nm, dtype=float)
    way_back = np.zeros(len(n), dtype=bool) if back is None else np.asarray(back, dtype=bool)
    pts = ax.plot(n[~way_back], z[~way_back], "o", ms=4, color=color,
                  label="there" if way_back.any() else None)[0]  # fmt: skip
    if way_back.any():
        ax.plot(n[way_back], z[way_back], "s", ms=5, mfc="none", color=pts.get_color(),
                label="back")  # fmt: skip
    if fit is not None:
        for side, sign, kind in ((fit.positive, 1, fit.positive_kind),
                                 (fit.negative, -1, fit.negative_kind)):  # fmt: skip
            if side is None:
                ax.plot([], [], " ", label=f"{'+' if sign > 0 else '-'} side: {kind}")
                continue
            far = np.nanmax(sign * (n - fit.centre_turns))
            h = np.array([fit.centre_turns, side.buckling_turns, fit.centre_turns + sign * far])
            hz = side.plateau_nm - side.slope_nm_per_turn * np.clip(
                sign * (h - side.buckling_turns), 0, None)  # fmt: skip
            text = (f"buckling {side.buckling_turns:.1f} +- {side.buckling_err_turns:.1f} turns, "
                    f"{side.slope_nm_per_turn:.0f} nm/turn")  # fmt: skip
            ax.plot(h, hz, "-", lw=1, label=text)
    if fit is not None or way_back.any():
        ax.legend(fontsize=7)
    ax.set_xlabel("turns")
    ax.set_ylabel("extension (nm)")
    _title(ax, "rotation curve")
    return ax


def plot_zlut(z_nm: np.ndarray, planes: np.ndarray, title: str = "", ax: Any = None) -> Any:
    """One bead's Z-LUT: its normalised radial profiles (radius across, height up)."""
    ax = _axes(ax)
    if np.isfinite(planes).any():
        ax.imshow(planes, aspect="auto", origin="lower", cmap="gray", interpolation="nearest",
                  extent=(0, planes.shape[1], z_nm[0], z_nm[-1]))  # fmt: skip
    ax.set_xlabel("radius (bins)")
    ax.set_ylabel("height (nm)")
    _title(ax, title)
    return ax


def zlut_quality_figure(z_nm: np.ndarray, planes: np.ndarray, bead_ids: np.ndarray,
                        good: np.ndarray, reasons: list[str]) -> Any:  # fmt: skip
    """Every bead's Z-LUT (up to ``QUALITY_BEADS``), titled good or why not: a Figure."""
    from matplotlib.figure import Figure

    n = min(len(bead_ids), QUALITY_BEADS)
    cols = min(n, 6)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.3 * cols, 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        plot_zlut(z_nm, planes[i], f"bead {int(bead_ids[i])}: {'good' if good[i] else 'bad'}", ax)
        if not good[i]:
            ax.title.set_color("red")
            ax.text(0.5, 0.5, textwrap.fill(reasons[i] or "no reason given", 18), ha="center",
                    va="center", fontsize=8, color="red", transform=ax.transAxes)  # fmt: skip
        if i % cols:
            ax.set_ylabel("")
        if i < n - cols:
            ax.set_xlabel("")
    fig.suptitle(f"Z-LUT quality: {int(np.sum(good))}/{len(good)} beads good", fontsize=10)
    return fig
