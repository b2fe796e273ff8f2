"""Force calibration: magacq.analysis against tweezepy on the same simulated traces.

Traces: simulators.fluctuations (exact camera sampling of the bead's OU motion, blurred over
the exposure), the simulator's default tether (3.4 um dsDNA, R = 1.4 um bead), 200 Hz.

1. Accuracy: ``--beads`` beads at each force from 0.1 to 20 pN, ``--taus`` correlation times
   each, exposure = the frame period (the camera integrates all the time: tweezepy's
   ``lansdorpPSD`` model is exact there) and half of it (only magacq models that). Printed per
   force: mean F_fit / F_true and its scatter for magacq's spectrum and Allan fits and
   tweezepy's PSD and AV fits (``mlefit``, defaults, the bead's kT, radius and viscosity).
2. Speed: a one-hour run of ``--run-beads`` beads at 200 Hz in 12 plateaus of 5 min (0.1 to
   20 pN): the CPU time to calibrate every bead on every plateau with magacq (spectrum + Allan
   + equipartition) and with tweezepy (PSD + AV), and the ratio.
3. Coverage (``--coverage N``): on N traces of tweezepy's own simulator per condition (the
   softest trap, a middle one, the corner at twice Nyquist with a quarter-frame exposure; each
   trace after 10 correlation times of burn-in, as tweezepy starts the bead at rest), the
   median F_fit / F_true and the fraction of fits within one error of the truth (magacq's in
   ln F, as documented, tweezepy's in F, the likelihood's its own interval), for magacq's fits
   (spectrum, Allan, the trace's exact likelihood, and the force `analyze` quotes) and
   tweezepy's, and how many gave no finite error.
4. End to end (``--end-to-end``): the same run written as a run file (45 tethered and 5
   reference beads, events, through the run-file writer; 1.6 GB), then ``magacq analyze``'s
   wall time on it, with and without the figures.

    .venv/bin/python benchmarks/bench_analysis.py [--beads 20] [--taus 300] [--run-beads 50]
        [--coverage N] [--only softest] [--end-to-end DIR]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from magacq.analysis import (  # noqa: E402
    calibrate_force,
    fit_allan,
    fit_likelihood,
    fit_spectrum,
)
from simulators.fluctuations import camera_trace, trap  # noqa: E402
from simulators.motion import MotionParams  # noqa: E402

FS = 200.0
FORCES = (0.1, 0.3, 1.0, 3.0, 10.0, 20.0)


def _tweezepy_forces(x: np.ndarray, mp: MotionParams, length: float) -> tuple[float, float]:
    """tweezepy's PSD and AV forces (pN) of trace ``x``; NaN where a fit failed."""
    from tweezepy import AV, PSD

    out = []
    for kind in (PSD, AV):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                fit = kind(x, FS)
                fit.mlefit(kT=mp.kt, radius=mp.bead_radius_nm,
                           viscosity=mp.viscosity_pn_s_per_nm2)  # fmt: skip
            out.append(float(fit.results["k"]) * length)
        except Exception:  # tweezepy raises assorted errors on fits it cannot do
            out.append(np.nan)
    return out[0], out[1]


def _beads(force: float, n: int, frames: int, exposure: float, rng) -> tuple:
    mp = MotionParams(force_pn=force)
    k, g = trap(mp)
    x = camera_trace(frames, FS, np.full(n, k), g, exposure_s=exposure, kt=mp.kt, rng=rng)
    return mp, mp.extension_nm + mp.bead_radius_nm, x


def accuracy(n_beads: int, taus: float) -> None:
    rng = np.random.default_rng(1)
    print("F_fit / F_true, mean +- sd over beads (tweezepy: failed fits dropped, count shown)")
    for exposure in (1 / FS, 0.5 / FS):
        print(f"\nexposure {exposure * 1e3:.1f} ms, {n_beads} beads per force, {taus:g} tau each")
        print(f"{'F pN':>6} {'fc Hz':>6} | {'magacq PSD':>14} {'magacq AV':>14} | "
              f"{'tweezepy PSD':>14} {'tweezepy AV':>14}")  # fmt: skip
        errs: dict[str, list[float]] = {k: [] for k in ("mp", "ma", "tp", "ta")}
        for force in FORCES:
            k, g = trap(MotionParams(force_pn=force))
            frames = max(20000, int(taus * g / k * FS))
            mp, length, x = _beads(force, n_beads, frames, exposure, rng)
            ours = np.array([[fit_spectrum(t, FS, length, exposure_s=exposure, kt=mp.kt).force_pn,
                              fit_allan(t, FS, length, exposure_s=exposure, kt=mp.kt).force_pn]
                             for t in x]) / force  # fmt: skip
            theirs = np.array([_tweezepy_forces(t, mp, length) for t in x]) / force
            cells = []
            for key, col in (("mp", ours[:, 0]), ("ma", ours[:, 1]),
                             ("tp", theirs[:, 0]), ("ta", theirs[:, 1])):  # fmt: skip
                ok = col[np.isfinite(col)]
                errs[key].append(abs(np.mean(ok) - 1) if len(ok) else np.nan)
                tail = "" if len(ok) == len(col) else f"({len(ok)})"
                cells.append(f"{np.mean(ok):6.3f}+-{np.std(ok):5.3f}{tail}" if len(ok) else "-")
            print(f"{force:6.1f} {k / (2 * np.pi * g):6.2f} | {cells[0]:>14} {cells[1]:>14} | "
                  f"{cells[2]:>14} {cells[3]:>14}")  # fmt: skip
        print("mean |bias| over forces: " + ", ".join(
            f"{name} {np.nanmean(errs[key]) * 100:.1f} %"
            for key, name in (("mp", "magacq PSD"), ("ma", "magacq AV"),
                              ("tp", "tweezepy PSD"), ("ta", "tweezepy AV"))))  # fmt: skip


#: coverage conditions: name, frame rate, corner (Hz), force (pN), tether length + R (nm),
#: exposure (frames), seconds
CONDITIONS = (
    ("softest trap: 0.05 pN at 10 um", 60.0, None, 0.05, 11_400.0, 1.0, 300.0),
    ("middle: 3 pN, corner 5 Hz", 200.0, 5.0, None, 4_600.0, 0.5, 100.0),
    ("hardest: corner 2x Nyquist", 60.0, 60.0, None, 3_000.0, 0.25, 100.0),
)
GAMMA = 6 * np.pi * 1e-9 * 1400  # an M-270 bead in water, pN s / nm
KT = 4.1  # tweezepy's


def _tweezepy_with_errors(x: np.ndarray, fs: float, length: float) -> list[tuple[float, float]]:
    """tweezepy's PSD and AV forces and errors (pN); NaN where a fit failed."""
    from tweezepy import AV, PSD

    out = []
    for kind in (PSD, AV):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                fit = kind(x, fs)
                fit.mlefit(kT=KT, radius=1400.0, viscosity=1e-9)
            out.append((float(fit.results["k"]) * length, float(fit.results["k_error"]) * length))
        except Exception:  # tweezepy raises assorted errors on fits it cannot do
            out.append((np.nan, np.nan))
    return out


def coverage(n_traces: int, only: str = "") -> None:
    """Bias and 1-sigma coverage of each fit's interval, on tweezepy's own simulated traces
    (its Langevin integrator, averaged over the exposure), beside tweezepy's fits."""
    from tweezepy.simulations import simulate_trace

    print(f"\non tweezepy's traces, {n_traces} per condition: median F_fit / F_true, fraction "
          "whose 68 % interval holds the truth, [fits with no finite interval]; magacq LIK: the "
          "trace's exact likelihood; quoted: the force `analyze` reports (its method)")  # fmt: skip
    names = ("magacq PSD", "magacq AV", "magacq LIK", "quoted", "tweezepy PSD", "tweezepy AV")
    print(f"{'condition':32} | " + " ".join(f"{n:>18}" for n in names))
    for name, fs, fc, force, length, exposure, seconds in CONDITIONS:
        if not name.startswith(only):
            continue
        kappa = force / length if force else 2 * np.pi * fc * GAMMA
        true = kappa * length
        sub = 400 if fc and fc > fs / 2 else 20
        n = int(seconds * fs)
        burn = int(10 * GAMMA / kappa * fs) + 1  # tweezepy starts at the centre: 10 tau
        rows, methods = [], set()
        for seed in range(n_traces):
            x = simulate_trace(GAMMA, kappa, fs * sub, (burn + n) * sub, seed)[burn * sub :]
            x = x.reshape(n, sub)
            x = x[:, : max(1, round(exposure * sub))].mean(axis=1)
            c = calibrate_force(x, fs, length, exposure_s=exposure / fs, kt=KT)
            lik = c.likelihood or fit_likelihood(x, fs, length, exposure_s=exposure / fs, kt=KT)
            q = c.force
            methods.add(q.method)
            # magacq's spectrum and Allan errors are Gaussian in ln F (their docstrings),
            # tweezepy's in F; the likelihood's interval is its own
            rows.append([_ln_interval(c.spectrum), _ln_interval(c.allan),
                         (lik.force_pn, lik.force_lo_pn, lik.force_hi_pn),
                         (q.force_pn, q.force_lo_pn, q.force_hi_pn),
                         *[(f, f - e, f + e)
                           for f, e in _tweezepy_with_errors(x, fs, length)]])  # fmt: skip
        table = np.array(rows)  # (traces, fits, 3)
        cells = []
        for fit in range(table.shape[1]):
            f, lo, hi = table[:, fit].T
            ok = np.isfinite(f) & np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
            bias = np.median(f[np.isfinite(f)]) / true if np.isfinite(f).any() else np.nan
            cover = np.mean((lo[ok] < true) & (true < hi[ok])) if ok.any() else np.nan
            cells.append(f"{bias:6.3f} {cover:5.1%} [{(~ok).sum():2d}]")
        print(f"{name:32} | " + " ".join(f"{c:>18}" for c in cells)
              + f"  (quoted: {', '.join(sorted(methods))})")  # fmt: skip
    print(
        f"(binomial sd of a 68 % coverage over {n_traces} traces: "
        f"{np.sqrt(0.68 * 0.32 / n_traces):.1%})"
    )


def _ln_interval(fit) -> tuple[float, float, float]:
    """``(force, lo, hi)`` of a fit whose error is Gaussian in ``ln F``."""
    rel = fit.force_err_pn / fit.force_pn
    return fit.force_pn, fit.force_pn * np.exp(-rel), fit.force_pn * np.exp(rel)


def speed(n_beads: int, hours: float) -> None:
    rng = np.random.default_rng(2)
    forces = np.geomspace(0.1, 20.0, 12)
    plateau_frames = int(hours * 3600 * FS / len(forces))
    exposure = 1 / FS
    plateaus = [_beads(f, n_beads, plateau_frames, exposure, rng) for f in forces]
    print(f"\none {hours:g}-hour run: {n_beads} beads at {FS:g} Hz, {len(forces)} plateaus of "
          f"{plateau_frames / FS:.0f} s ({n_beads * len(forces)} calibrations)")  # fmt: skip
    c0 = time.process_time()
    quoted = [calibrate_force(t, FS, length, exposure_s=exposure, kt=mp.kt).force.method
              for mp, length, x in plateaus for t in x]  # fmt: skip
    ours = time.process_time() - c0
    c0 = time.process_time()
    subset = max(1, n_beads // 10)  # tweezepy is slow: time a tenth of the beads, scale up
    for mp, length, x in plateaus:
        for t in x[:subset]:
            _tweezepy_forces(t, mp, length)
    theirs = (time.process_time() - c0) * n_beads / subset
    print(
        f"magacq (spectrum + Allan + equipartition, and the likelihood on "
        f"{quoted.count('likelihood')} plateaus of few correlation times): {ours:.1f} CPU s"
    )
    print(f"tweezepy (PSD + AV), {subset} of {n_beads} beads timed, scaled: {theirs:.1f} CPU s")
    print(f"ratio tweezepy / magacq: {theirs / ours:.1f}")


def end_to_end(directory: Path, n_beads: int, hours: float) -> None:
    import sys

    from magacq.offline import AnalysisSettings, analyze_run

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' run-file writer
    from tests.offline._runfiles import Step, write_run

    forces = np.geomspace(0.1, 20.0, 12)
    frames = int(hours * 3600 * FS / (len(forces) + 1))
    steps = [Step("surface", frames)] + [Step(f"{f:.2g} pN", frames, float(f)) for f in forces]
    directory.mkdir(parents=True, exist_ok=True)
    run = directory / f"run_{n_beads}_{hours:g}h.h5"
    refs = max(1, n_beads // 10)
    w0 = time.perf_counter()
    if not run.exists():  # the same simulated run every time (fixed seed): written once
        write_run(run, steps, tethered=n_beads - refs, references=refs)
    print(f"\nrun file of {n_beads} beads ({refs} reference), {len(steps)} plateaus of "
          f"{frames / FS:.0f} s: {run.stat().st_size / 1e9:.2f} GB ({run}, made in "
          f"{time.perf_counter() - w0:.0f} s)")  # fmt: skip
    settings = AnalysisSettings(zero_step="surface")
    for figures in (False, True):
        w0, c0 = time.perf_counter(), _cpu()
        res, written = analyze_run(run, directory / "out", settings, figures=figures)
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
        n = sum(len(b.plateaus) for b in res.beads)
        print(
            f"magacq analyze {'with' if figures else 'without'} figures: {wall:.1f} s wall, "
            f"{cpu:.1f} CPU s ({n} bead-plateaus, {len(written)} files, "
            f"{len(res.problems)} problems; load average {psutil.getloadavg()[0]:.1f})"
        )


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the figure processes; psutil
    counts children on Linux only)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beads", type=int, default=20, help="beads per force (accuracy)")
    ap.add_argument("--taus", type=float, default=300, help="trace length, correlation times")
    ap.add_argument("--run-beads", type=int, default=50, help="beads of the one-hour run")
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument(
        "--end-to-end",
        type=Path,
        metavar="DIR",
        help="also write the run file in DIR and time magacq analyze on it",
    )
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--coverage", type=int, default=50, metavar="N",
                    help="traces per condition of the coverage table (0: none)")  # fmt: skip
    ap.add_argument("--only", default="", metavar="NAME",
                    help="only the coverage conditions whose name starts with NAME (softest, "
                    "middle, hardest)")  # fmt: skip
    args = ap.parse_args()
    if not args.skip_accuracy:
        accuracy(args.beads, args.taus)
    if args.coverage:
        coverage(args.coverage, args.only)
    speed(args.run_beads, args.hours)
    if args.end_to_end is not None:
        end_to_end(args.end_to_end, args.run_beads, args.hours)


if __name__ == "__main__":
    main()
