"""What `magacq analyze` writes: the analysis file, CSV tables and the figures."""

import csv
import json
import multiprocessing
import os
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from magacq.analysis import plot_allan, plot_force_extension, plot_rotation, plot_spectrum
from magacq.offline._analyze import BeadAnalysis, RunAnalysis
from magacq.offline._force_table import write_force_table
from magacq.runfile import (
    BEADS_DTYPE,
    FORCES_DTYPE,
    PROBLEMS_DTYPE,
    RAMP_DTYPE,
    ROTATION_DTYPE,
    SCHEMA_VERSION,
    WLC_DTYPE,
    Plateau,
    write_analysis_file,
)

__all__ = ["FigureWriter", "tables", "write_figures", "write_tables"]

#: bead pages that make starting a drawing process worth it
PAGES_PER_WORKER = 6
#: lines of the summary's text block (the rest is in the CSV files)
TEXT_LINES = 32
#: characters per line of it
TEXT_WIDTH = 80


def tables(res: RunAnalysis) -> dict[str, np.ndarray]:
    """The analysis file's tables (:mod:`magacq.runfile`'s analysis layout)."""
    forces, wlc, rotation, ramps = [], [], [], []
    first = int(res.run.frames[0])
    for bead in res.beads:
        ramps += [(bead.bead_id, pt.ramp.index, pt.ramp.label.encode()[:64], first + pt.start,
                   pt.stop - pt.start, pt.time_s, pt.magnet_mm, pt.force_pn, pt.extension_nm,
                   pt.extension_err_nm) for pt in bead.ramp]  # fmt: skip
        for r in bead.plateaus:
            c, p, f = r.calibration, r.plateau, r.calibration.force
            forces.append((bead.bead_id, p.index, p.label.encode()[:64], first + p.start,
                           p.stop - p.start, p.turns, p.magnet_mm, r.extension_nm,
                           r.extension_err_nm, f.force_pn, f.force_err_pn, f.force_lo_pn,
                           f.force_hi_pn, f.method.encode(), c.spectrum.force_pn,
                           c.spectrum.force_err_pn, c.spectrum.corner_hz,
                           c.spectrum.corner_err_hz, c.allan.force_pn, c.allan.force_err_pn,
                           c.equipartition.force_pn, c.equipartition.force_err_pn,
                           c.spectrum.drag_pn_s_nm,
                           r.flagged_frames, "; ".join(c.warnings).encode()[:512]))  # fmt: skip
        if bead.wlc is not None:
            w = bead.wlc
            wlc.append((bead.bead_id, w.contour_nm, w.contour_err_nm, w.persistence_nm,
                        w.persistence_err_nm, w.chi2, w.dof))  # fmt: skip
        if bead.rotation is not None:
            rot = bead.rotation
            for name, side, kind in (("positive", rot.positive, rot.positive_kind),
                                     ("negative", rot.negative, rot.negative_kind)):  # fmt: skip
                values = (np.nan,) * 5 if side is None else (
                    side.buckling_turns, side.buckling_err_turns, side.slope_nm_per_turn,
                    side.slope_err_nm_per_turn, side.plateau_nm)  # fmt: skip
                rotation.append((bead.bead_id, name.encode(), kind.encode(), *values))
    problems = [(b, p, m.encode()[:512]) for b, p, m in res.problems]
    found = set(res.found)
    beads = [(b, True, b in found, b"", np.nan) for b in res.reference]
    beads += [(b.bead_id, False, False, b.zero.encode()[:128], b.zero_err_nm) for b in res.beads]
    return {
        "beads": np.array(sorted(beads), dtype=BEADS_DTYPE),
        "forces": np.array(forces, dtype=FORCES_DTYPE),
        "wlc": np.array(wlc, dtype=WLC_DTYPE),
        "rotation": np.array(rotation, dtype=ROTATION_DTYPE),
        "ramps": np.array(ramps, dtype=RAMP_DTYPE),
        "problems": np.array(problems, dtype=PROBLEMS_DTYPE),
    }


def _csv(path: Path, table: np.ndarray) -> None:
    names = table.dtype.names or ()
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(names)
        for row in table.tolist():
            out.writerow([v.decode() if isinstance(v, bytes) else v for v in row])


def write_tables(res: RunAnalysis, out: Path) -> list[Path]:
    """``<run>.analysis.h5`` and one CSV per table (forces: a row per bead per plateau)."""
    laws = write_force_table(res, out)  # first: a bead whose law fails is a problem
    t = tables(res)
    h5 = out / f"{res.run.path.stem}.analysis.h5"
    write_analysis_file(h5, t, {
        "run": str(res.run.path), "run_schema_version": SCHEMA_VERSION, "axis": res.axis,
        "bead_radius_nm": res.bead_radius_nm, "temperature_k": res.temperature_k,
        "exposure_s": res.exposure_s, "frame_rate": res.run.frame_rate,
        "reference_beads": json.dumps(list(res.reference)),
        "found_stuck_beads": json.dumps(list(res.found)),
        "plateaus": json.dumps([p.label for p in res.plateaus]),
    })  # fmt: skip
    written = [h5]
    for name, table in t.items():
        if len(table) or name == "forces":
            _csv(out / f"{name}.csv", table)
            written.append(out / f"{name}.csv")
    return written + laws


def _save(fig: Any, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=110)
    return paths


def _figure(nrows: int, ncols: int, size: tuple[float, float], fixed: bool = False):
    """A figure and its axes grid; ``fixed`` margins instead of constrained layout (which
    takes half the drawing time of a small figure with log axes)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout=None if fixed else "constrained")
    if fixed:
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.86, wspace=0.28)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def plateau_styles(plateaus: list[Plateau]) -> dict[Plateau, dict[str, Any]]:
    """A colour per distinct hold label (in the order first held, along a colour map), solid
    and round on the way up, dashed and square when a label comes again (the way back)."""
    from matplotlib import colormaps

    labels = list(dict.fromkeys(p.label for p in plateaus))
    cmap = colormaps["viridis" if len(labels) > 10 else "tab10"]
    seen: dict[str, int] = {}
    styles = {}
    for p in plateaus:
        i = labels.index(p.label)
        color = cmap(i / max(1, len(labels) - 1) * 0.9) if len(labels) > 10 else cmap(i)
        back = seen.get(p.label, 0)
        seen[p.label] = back + 1
        styles[p] = {"color": color, "linestyle": "--" if back else "-",
                     "marker": "s" if back else "o",
                     "name": f"{p.label} (back)" if back else p.label}  # fmt: skip
    return styles


def bead_page(bead: BeadAnalysis) -> Any:
    """One bead's page: the spectrum and the Allan deviation of every plateau, and its
    force-extension curve (or its rotation curve when it has one); one legend, beside them."""
    curve = bead.rotation is not None or len(bead.plateaus) >= 2
    fig, ax = _figure(1, 3 if curve else 2, (16.5 if curve else 11.5, 4.2), fixed=True)
    fig.subplots_adjust(right=0.85 if curve else 0.78)
    styles = plateau_styles([r.plateau for r in bead.plateaus])
    for r in bead.plateaus:
        st = styles[r.plateau]
        plot_spectrum(r.calibration.spectrum, ax[0, 0], label=st["name"], color=st["color"],
                      linestyle=st["linestyle"], legend=False)  # fmt: skip
        plot_allan(r.calibration.allan, ax[0, 1], label=st["name"], color=st["color"],
                   linestyle=st["linestyle"], legend=False)  # fmt: skip
    handles, labels = ax[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False,
               title="plateau: spectral force", title_fontsize=7)  # fmt: skip
    if bead.rotation is not None:
        plot_rotation([r.plateau.turns for r in bead.plateaus],
                      [r.extension_nm for r in bead.plateaus], bead.rotation, ax[0, 2],
                      back=[styles[r.plateau]["marker"] == "s" for r in bead.plateaus])  # fmt: skip
    elif curve:
        _force_extension(bead, ax[0, 2])
    fig.suptitle(f"bead {bead.bead_id}")
    return fig


def bead_figures(bead: BeadAnalysis, out: Path) -> list[Path]:
    """:func:`bead_page`, saved as PNG and PDF."""
    return _save(bead_page(bead), out / f"bead{bead.bead_id:03d}")


def _force_extension(bead: BeadAnalysis, ax: Any, label: str = "", color: Any = None) -> None:
    res = bead.plateaus
    force, bars = _force_bars(res)
    plot_force_extension([r.extension_nm for r in res], force, bars, bead.wlc, ax, label=label,
                         color=color)  # fmt: skip


def _force_bars(res: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The quoted forces of plateau results ``res`` and their error bars, ``(2, n)``: below and
    above (the likelihood's interval is asymmetric)."""
    est = [r.calibration.force for r in res]
    force = np.array([e.force_pn for e in est])
    return force, np.array([force - [e.force_lo_pn for e in est],
                            np.array([e.force_hi_pn for e in est]) - force])  # fmt: skip


def _plateau_axis(plates: list[Plateau]) -> tuple[str, dict[Plateau, float]]:
    """What the summary puts across: the magnet height, else the force the protocol asked
    for, else the turns, else the order."""
    for name, unit, get in (("magnet height", "mm", lambda p: p.magnet_mm),
                            ("force asked", "pN", lambda p: p.target_force_pn),
                            ("magnet rotation", "turns", lambda p: p.turns)):  # fmt: skip
        values = {p: get(p) for p in plates}
        if all(np.isfinite(v) for v in values.values()) and len(set(values.values())) > 1:
            return f"{name} ({unit})", values
    return "plateau (in the order held)", {p: float(i) for i, p in enumerate(plates)}


def summary_page(res: RunAnalysis) -> Any:
    """The run's page: forces of every bead against the magnets, force-extension (or rotation)
    curves, corner frequencies against the Nyquist frequency, and a text summary."""
    fig, ax = _figure(2, 2, (11, 8.5))
    beads = [b for b in res.beads if b.plateaus or b.ramp]
    from matplotlib import colormaps

    cmap = colormaps["turbo"]
    colors = {b.bead_id: cmap(0.05 + 0.9 * i / max(1, len(beads) - 1)) for i, b in enumerate(beads)}
    xlabel, x = _plateau_axis(list(dict.fromkeys(r.plateau for b in beads for r in b.plateaus)))
    for b in beads:
        force, bars = _force_bars(b.plateaus)
        ax[0, 0].errorbar([x[r.plateau] for r in b.plateaus], force, yerr=bars, fmt="o", ms=3,
                          capsize=2, color=colors[b.bead_id])  # fmt: skip
    ax[0, 0].set_yscale("log")
    if xlabel.startswith("force"):
        ax[0, 0].set_xscale("log")
    ax[0, 0].set_xlabel(xlabel)
    ax[0, 0].set_ylabel("force (pN)")
    ax[0, 0].set_title("force of every bead on every plateau (68 % intervals)", fontsize=9)
    rotating = [b for b in beads if b.rotation is not None]
    for b in rotating:
        plot_rotation([r.plateau.turns for r in b.plateaus],
                      [r.extension_nm for r in b.plateaus], None, ax[0, 1],
                      color=colors[b.bead_id])  # fmt: skip
    if not rotating:
        for b in beads:
            if b.plateaus:
                _force_extension(b, ax[0, 1], color=colors[b.bead_id])
            _ramp_curve(b, ax[0, 1], colors[b.bead_id])
    if ax[0, 1].get_legend() is not None:  # every bead's fit is in wlc.csv, the median below
        ax[0, 1].get_legend().remove()
    for b in beads:
        ax[1, 0].loglog([r.calibration.spectrum.force_pn for r in b.plateaus],
                        [r.calibration.spectrum.corner_hz for r in b.plateaus], "o", ms=3,
                        color=colors[b.bead_id])  # fmt: skip
    ax[1, 0].axhline(res.run.frame_rate / 2, color="k", ls="--", lw=0.8, label="Nyquist")
    ax[1, 0].set_xlabel("force (pN)")
    ax[1, 0].set_ylabel("corner frequency (Hz)")
    ax[1, 0].set_title("corner frequency against the camera's Nyquist frequency", fontsize=9)
    ax[1, 0].legend(fontsize=7)
    if not any(b.plateaus for b in beads):  # a ramp's run: its curve is the data
        for empty in (ax[0, 0], ax[1, 0]):
            empty.clear()
            empty.axis("off")
    ax[1, 1].axis("off")
    ax[1, 1].text(0, 1, _summary_text(res), va="top", family="monospace", fontsize=7,
                  transform=ax[1, 1].transAxes)  # fmt: skip
    from matplotlib.ticker import NullFormatter

    for a in (ax[0, 0].xaxis, ax[0, 0].yaxis, ax[1, 0].xaxis, ax[1, 0].yaxis):
        a.set_minor_formatter(NullFormatter())  # under a decade they crowd the axis
    fig.suptitle(f"magacq analyze: {res.run.path.name}")
    return fig


def _ramp_curve(bead: BeadAnalysis, ax: Any, color: Any) -> None:
    """The bead's extension along its ramps, against the force (the height without a table)."""
    if not bead.ramp:
        return
    force = np.array([pt.force_pn for pt in bead.ramp])
    by_force = np.isfinite(force).any()
    x = force if by_force else np.array([pt.magnet_mm for pt in bead.ramp])
    for ramp in dict.fromkeys(pt.ramp for pt in bead.ramp):
        on = [i for i, pt in enumerate(bead.ramp) if pt.ramp == ramp]
        ax.plot(x[on], [bead.ramp[i].extension_nm for i in on], "-" if ramp.label != "ramp back"
                else "--", lw=1, color=color)  # fmt: skip
    ax.set_xlabel("force (pN)" if by_force else "magnet height (mm)")
    if by_force:
        ax.set_xscale("log")
    ax.set_ylabel("extension (nm)")
    ax.set_title("extension along the force ramps (dashed: back)", fontsize=9)


def summary_figure(res: RunAnalysis, out: Path) -> list[Path]:
    """:func:`summary_page`, saved as PNG and PDF."""
    return _save(summary_page(res), out / "summary")


def _capped(rows: list[str], most: int, rest: str) -> list[str]:
    """``rows``, or their first ``most`` and a line saying how many more are in ``rest``."""
    if len(rows) <= most:
        return rows
    return rows[: most - 1] + [f"... {len(rows) - most + 1} more in {rest}"]


def _summary_text(res: RunAnalysis) -> str:
    """The summary's text block: at most ``TEXT_LINES`` lines of ``TEXT_WIDTH`` characters
    (what does not fit is counted and left to the CSV files)."""
    n_ok = sum(len(b.plateaus) for b in res.beads)
    found = f" (found stuck: {list(res.found)})" if res.found else ""
    zeros: dict[str, list[int]] = {}
    for b in res.beads:
        zeros.setdefault(b.zero, []).append(b.bead_id)
    head = [
        f"{len(res.beads)} tethered beads, {len(res.plateaus)} plateaus, "
        f"reference beads {list(res.reference) or 'none'}{found}",
        *[f"extension zero from {z}: beads {ids}" for z, ids in zeros.items()],
        f"{res.run.frame_rate:.1f} Hz, exposure {res.exposure_s * 1e3:.2f} ms, "
        f"axis {res.axis}, R {res.bead_radius_nm:.0f} nm, {res.temperature_k:.1f} K",
        f"{n_ok} bead-plateaus analysed, {len(res.problems)} problems",
    ]
    if res.ramps:
        n_pts = sum(len(b.ramp) for b in res.beads)
        head.append(f"{len(res.ramps)} force ramp{'s' * (len(res.ramps) > 1)} "
                    f"({', '.join(r.label for r in res.ramps)}): "
                    f"{n_pts} points of extension against force (ramps.csv)")  # fmt: skip
    table = []
    for p in res.plateaus:
        f = [r.calibration.force.force_pn for b in res.beads for r in b.plateaus
             if r.plateau == p]  # fmt: skip
        med = f"{np.median(f):.3g}" if f else "-"
        table.append(f"{p.index:7d}  {p.label[:22]:22s}  {med:>13}  {len(f):5d}")
    curves = []
    wlc = [b.wlc for b in res.beads if b.wlc is not None]
    if wlc:
        curves.append(f"WLC (median over {len(wlc)} beads): "
                      f"L {np.median([w.contour_nm for w in wlc]):.0f} nm, "
                      f"P {np.median([w.persistence_nm for w in wlc]):.1f} nm")  # fmt: skip
    for b in res.beads:
        if b.rotation is not None:
            curves.append(f"bead {b.bead_id} rotation: " + ", ".join(
                _side(sign, kind, fit) for sign, kind, fit in (
                    ("+", b.rotation.positive_kind, b.rotation.positive),
                    ("-", b.rotation.negative_kind, b.rotation.negative))))  # fmt: skip
    wrap = [line for text in head for line in textwrap.wrap(text, TEXT_WIDTH)]
    lines = [*wrap, "", "plateau  label                   median F (pN)  beads",
             *_capped(table, 16, "forces.csv"), ""]  # fmt: skip
    lines += _capped([x for c in curves for x in textwrap.wrap(c, TEXT_WIDTH)], 6,
                     "wlc.csv, rotation.csv")  # fmt: skip
    room = TEXT_LINES - len(lines) - 1
    problems = [x for _, _, m in res.problems for x in textwrap.wrap(m, TEXT_WIDTH)]
    if problems and room > 1:
        lines += ["", *_capped(problems, room, "problems.csv")]
    return "\n".join(lines)


def _side(sign: str, kind: str, fit: Any) -> str:
    if fit is None:
        return f"{sign} {kind}"
    return f"{sign} {kind} at {fit.buckling_turns:.1f} turns, {fit.slope_nm_per_turn:.0f} nm/turn"


class FigureWriter:
    """Draws the bead pages as the beads are analysed, then the summary: PNG and PDF.

    With many beads the pages go to worker processes started at once (one per CPU: matplotlib
    spends ~0.4 s a page, a process ~2 s to start), so they are drawn while the next beads are
    analysed. Use as a context manager: the workers end with it.
    """

    def __init__(self, out: Path, n_beads: int, *, draw: bool = True) -> None:
        self.out = out
        self.draw = draw
        self._pages: list[Any] = []
        workers = min(n_beads // PAGES_PER_WORKER, os.cpu_count() or 1) if draw else 0
        self._pool = None
        if workers > 1:  # spawn: no fork of a process holding h5py state
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx)

    def __enter__(self) -> "FigureWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def bead(self, bead: BeadAnalysis) -> None:
        """Draw (or queue) ``bead``'s page; a bead with no plateau has none."""
        if not bead.plateaus or not self.draw:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if self._pool is None:
            self._pages.append(bead_figures(bead, self.out))
        else:
            self._pages.append(self._pool.submit(bead_figures, bead, self.out))

    def finish(self, res: RunAnalysis) -> list[Path]:
        """The summary page, once every bead page is drawn; every file written."""
        if not self.draw:
            return []
        pages = [p if isinstance(p, list) else p.result() for p in self._pages]
        return [p for page in pages for p in page] + summary_figure(res, self.out)


def write_figures(res: RunAnalysis, out: Path) -> list[Path]:
    """Every bead's page and the run's summary, PNG and PDF (:class:`FigureWriter`)."""
    with FigureWriter(out, len(res.beads)) as figures:
        for bead in res.beads:
            figures.bead(bead)
        return figures.finish(res)
