"""The `magacq` command line: run, calibrate, analyze, retrack, validate, compile, clean,
drivers, schema, view, magnets.

Exit codes: 0 success, 2 bad input (config, arguments), 1 failure at run time. Errors are one
line on stderr; ``--debug`` adds the traceback.
"""

import errno
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from magacq.errors import ConfigError, MagacqError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: no value metavars on flags, paragraphs rewrapped
    context_settings={"max_content_width": 100},
    help="Acquisition and live bead tracking for magnetic-tweezers microscopes.",
)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from magacq import __version__

        typer.echo(f"magacq {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """magacq: acquire, track and save."""


ConfigArg = Annotated[
    Path, typer.Argument(help="YAML config file.", show_default=False, metavar="CONFIG")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Debug logging and tracebacks.")]


@app.command(short_help="Acquire, track live, save one HDF5 file per run.")
def run(
    config: ConfigArg,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to acquire (overrides the config).", min=0.001)
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Output directory (overrides the config).")
    ] = None,
    debug: DebugOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the config; acquire nothing.")
    ] = False,
) -> None:
    """Acquire, track every bead live and save one HDF5 file per run."""
    with _errors(debug):
        from magacq.config import load_config

        cfg = load_config(config)
        changes: dict[str, Any] = {}
        if duration is not None:
            changes["duration"] = duration
        if output is not None:
            changes["output"] = cfg.output.model_copy(update={"dir": output})
        cfg = cfg.model_copy(update=changes)
        if dry_run:
            typer.echo(cfg.model_dump_json(indent=2))
            _print_protocol(cfg, config)
            return
        from magacq.pipeline import run_acquisition
        from magacq.pipeline.preflight import (
            check_namespace,
            check_output_dir,
            check_process_limit,
            raise_open_files,
        )

        check_namespace()
        raise_open_files(cfg.tracking.workers)
        check_process_limit(cfg.tracking.workers)
        check_output_dir(cfg.output.dir)
        path = run_acquisition(cfg, config_path=config, debug=debug)
        typer.echo(f"saved {path}")


@app.command(short_help="Sweep the focus and save a Z-LUT file for run.")
def calibrate(
    config: ConfigArg,
    output: Annotated[
        Path | None, typer.Option(help="Z-LUT file to write (overrides calibration.output).")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Sweep the focus stage and save a per-bead Z-LUT file for `run` (tracking.zlut)."""
    with _errors(debug):
        from magacq.calibrate import run_calibration
        from magacq.config import load_config
        from magacq.pipeline.preflight import (
            check_namespace,
            check_output_dir,
            check_process_limit,
            raise_open_files,
        )

        cfg = load_config(config)
        check_namespace()
        raise_open_files(cfg.tracking.workers)
        check_process_limit(cfg.tracking.workers)
        zlut = output or (cfg.calibration.output if cfg.calibration is not None else None)
        check_output_dir(cfg.output.dir if zlut is None else zlut.parent)
        path = run_calibration(cfg, config_path=config, output=output, debug=debug)
        typer.echo(f"saved {path}")


@app.command(short_help="Re-track a run's recorded video into a new run file.")
def retrack(
    run: Annotated[
        Path,
        typer.Argument(help="Run file with recorded video.", show_default=False, metavar="RUN"),
    ],
    zlut: Annotated[
        Path | None, typer.Option(help="Z-LUT file (default: the run's tracking.zlut).")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Tracking algorithm (default: the run's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="New run file (default: RUN_retrack.h5).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Address of a running Dask scheduler (default: a local cluster)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Local cluster's worker processes.", min=1)] = 2,
    stack_frames: Annotated[
        int | None, typer.Option(help="Frames per task (default: >= 64, whole stacks).", min=1)
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Re-track a run's recorded video on Dask into a new run file (resumes if interrupted)."""
    with _errors(debug):
        import logging

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from magacq.logs import console_handler
        from magacq.offline import retrack as _retrack

        logging.getLogger("magacq").addHandler(console_handler(_err, debug=debug))
        logging.getLogger("magacq").setLevel(logging.DEBUG if debug else logging.INFO)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("frames"), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=_err) as progress:
            path = _retrack(run, zlut=zlut, method=method, out=out, scheduler=scheduler,
                            workers=workers, stack_frames=stack_frames,
                            progress=progress)  # fmt: skip
        typer.echo(f"saved {path}")


@app.command(short_help="Forces, extensions and fits of a run's plateaus.")
def analyze(
    run_file: Annotated[
        Path,
        typer.Argument(
            help="Run file (HDF5) from `magacq run`.", show_default=False, metavar="RUN"
        ),
    ],  # fmt: skip
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: <run>_analysis/).")
    ] = None,
    axis: Annotated[
        str, typer.Option(help="Camera axis perpendicular to the magnets' field: x or y.")
    ] = "y",
    bead_radius: Annotated[
        float | None,
        typer.Option(
            help="Bead radius, nm (default: the run's: beads.radius_nm, or the sim's).", min=1
        ),
    ] = None,
    temperature: Annotated[float, typer.Option(help="Temperature, K.", min=1)] = 296.0,
    exposure_ms: Annotated[
        float | None, typer.Option(help="Camera exposure, ms (default: from the run).", min=0)
    ] = None,
    zero_step: Annotated[
        str | None,
        typer.Option(help="Label of the step on which the beads are on the surface (l = 0)."),
    ] = None,
    extension: Annotated[
        float | None,
        typer.Option(help="Without --zero-step: the beads' extension on the first plateau, nm."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Reference bead ids, comma-separated (default: the run's)."),
    ] = None,
    figures: Annotated[bool, typer.Option(help="Draw the figures (PNG and PDF).")] = True,
    debug: DebugOpt = False,
) -> None:
    """Forces (spectrum, Allan variance, equipartition), extensions, WLC and rotation fits of
    every tethered bead on every plateau of a run; tables, an analysis file and figures."""
    with _errors(debug):
        from magacq.offline import AnalysisSettings, analyze_run

        settings = AnalysisSettings(
            axis=axis, bead_radius_nm=bead_radius, temperature_k=temperature,
            exposure_s=None if exposure_ms is None else exposure_ms / 1000, zero_step=zero_step,
            extension_nm=extension, reference=_ids(reference),
        )  # fmt: skip
        with _progress("analysing beads") as bar:
            res, written = analyze_run(run_file, out, settings, figures=figures,
                                       progress=bar)  # fmt: skip
        for _, _, message in res.problems:
            _err.print(f"[yellow]warning:[/] {message}")
        forces = [r.calibration.force.force_pn for b in res.beads for r in b.plateaus]
        points = sum(len(b.ramp) for b in res.beads)
        if not forces and not points:
            raise MagacqError(f"{run_file}: no bead could be analysed on any plateau or ramp")
        found = []
        if forces:
            median = sorted(forces)[len(forces) // 2]
            found.append(f"{_count(len(res.plateaus), 'plateau')}: "
                         f"{_count(len(forces), 'force')}, median {median:.3g} pN")  # fmt: skip
        if points:
            found.append(f"{_count(len(res.ramps), 'force ramp')}: "
                         f"{_count(points, 'point')} of extension against force")  # fmt: skip
        typer.echo(f"{_count(len(res.beads), 'tethered bead')} x {'; '.join(found)}; wrote "
                   f"{len(written)} files to {written[0].parent}")  # fmt: skip


def _count(n: int, noun: str) -> str:
    """``1 plateau``, ``2 plateaus``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@contextmanager
def _progress(what: str) -> Iterator[Callable[[object, int], None]]:
    """A progress bar on stderr; yields ``step(item, total)``, called once per item done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(f"[progress.description]{what}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_err, transient=True) as bar:  # fmt: skip
        task = bar.add_task(what, total=None)

        def step(_: object, total: int) -> None:
            bar.update(task, total=total, advance=1)

        yield step


def _ids(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"--reference {text!r}: bead ids separated by commas") from None


@app.command(short_help="List the protocol recipes and their parameters.")
def recipes() -> None:
    """List the protocol recipes and their parameters (units, defaults)."""
    from magacq.protocol import recipe_parameters

    console = Console(highlight=False, soft_wrap=True)
    for name, rows in recipe_parameters().items():
        table = Table(title=f"protocol: {{recipe: {name}, ...}}", title_justify="left")
        for column in ("parameter", "default", "what"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)


@app.command(short_help="Check a config without acquiring anything.")
def validate(config: ConfigArg, debug: DebugOpt = False) -> None:
    """Check a config file: keys, values, drivers and their settings (Micro-Manager devices
    loaded and configured, no frame taken), the Z-LUT file, and whether the buffers fit in
    /dev/shm and memory (as far as known without the camera)."""
    with _errors(debug):
        from hal import GroundTruthSource
        from magacq.config import check_driver_settings, load_config
        from magacq.pipeline.preflight import check_process_limit
        from magacq.pipeline.sizing import buffer_sizes, check_room, settings_geometry

        cfg = load_config(config, check_drivers=False)
        checked = check_driver_settings(cfg, source=str(config))
        camera_cls, settings = checked["camera"]
        mm = {key: s for key, (_, s) in checked.items() if getattr(cfg, key).driver == "mmcore"}
        if mm:  # load the Micro-Manager configuration as the run will, acquiring nothing
            from hal import HalError
            from hal.mmcore import check_configuration

            try:
                check_configuration(**mm)
            except HalError as exc:
                raise ConfigError(f"{config}: {exc}") from None
        if cfg.tracking.zlut is not None:
            from magacq.pipeline.plan import roi_around
            from magacq.runfile import check_zlut_file, rois_for_run

            side = cfg.tracking.roi_size
            if cfg.beads.rois:  # the listed beads must be the file's, as `run` checks them
                rois = [roi_around(i, x, y, side) for i, (x, y) in enumerate(cfg.beads.rois)]
                rois_for_run(cfg.tracking.zlut, rois, side, explicit=True)
            else:  # detected beads: checked when detected (run)
                check_zlut_file(cfg.tracking.zlut, side, n_beads=None)
        n_beads = len(cfg.beads.rois) or cfg.beads.detect.max_beads  # as many as it may track
        simulated = issubclass(camera_cls, GroundTruthSource)
        sizes = buffer_sizes(cfg, settings_geometry(settings), n_beads=n_beads, simulated=simulated)
        recorder = cfg.output.video.mode != "none"
        check_room(sizes, n_processes=cfg.tracking.workers + 3 + recorder)
        check_process_limit(cfg.tracking.workers)
        _print_protocol(cfg, config)
        typer.echo(f"{config}: ok")


def _print_protocol(cfg: Any, config: Path) -> None:
    """Check the config's protocol against the devices (opened, nothing moved) and print its
    expanded actions and duration."""
    if cfg.protocol is None:
        return
    from magacq.pipeline.plan import protocol_devices, protocol_spec

    spec = protocol_spec(cfg, config, protocol_devices(cfg))
    assert spec is not None
    plan = spec.plan
    if plan.script is not None:
        typer.echo(f"protocol: script {plan.script.script} ({plan.script.function}): checked")
        return
    table = Table("#", "action", "label", "force pN", "s", title="protocol")
    for i, a in enumerate(plan.actions, 1):
        force = "" if a.force_pn != a.force_pn else f"{a.force_pn:.3g}"
        table.add_row(str(i), a.describe(), a.label, force, f"{a.seconds:.1f}")
    Console(highlight=False).print(table)
    typer.echo(f"protocol: {len(plan.actions)} actions, at least {plan.seconds:.1f} s "
               "(moves at the devices' top speed)")  # fmt: skip


@app.command(short_help="Print the config file's JSON Schema.")
def schema() -> None:
    """Print the JSON Schema of the config file (for editors)."""
    from magacq.config import json_schema

    typer.echo(json_schema())


@app.command(short_help="List the drivers and whether each is usable here.")
def drivers(debug: DebugOpt = False) -> None:
    """List the drivers, the device kinds each provides, and whether each is usable here."""
    with _errors(debug):
        import hal

        table = Table("driver", "devices", "usable", "why not / where")
        for info in hal.list_drivers():
            table.add_row(info.name, ", ".join(k.replace("_", " ") for k in info.kinds),
                          "yes" if info.usable else "no", info.reason or info.target)  # fmt: skip
        Console(highlight=False).print(table)


@app.command(name="compile", short_help="Compile the tracking kernels ahead of the first run.")
def compile_(
    algorithm: Annotated[
        list[str] | None,
        typer.Option(help="Tracking algorithm (repeat for several; default all)."),
    ] = None,
    dtype: Annotated[
        list[str] | None,
        typer.Option(help="Camera pixel type (repeat for several; default uint8 and uint16)."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Compile the tracking kernels (and the simulated camera's) into the disk cache, so that
    the first run starts in seconds (once after installing or upgrading; a run compiles what
    it lacks)."""
    with _errors(debug):
        import time

        import numpy as np

        from magacq.config import ALGORITHMS
        from magacq.pipeline.processes.warmup import compile_kernels

        algorithms = tuple(algorithm or ALGORITHMS)
        dtypes = tuple(dtype or ("uint8", "uint16"))
        for name in algorithms:
            if name not in ALGORITHMS:
                raise ConfigError(f"--algorithm {name!r}: one of {', '.join(ALGORITHMS)}")
        for name in dtypes:
            try:
                if np.dtype(name).kind not in "uif":
                    raise TypeError
            except TypeError:
                raise ConfigError(f"--dtype {name!r}: a numeric numpy type (uint16)") from None
        t0 = time.monotonic()
        compile_kernels(algorithms, dtypes)
        from magacq.tracking import KERNEL_CACHE

        typer.echo(f"compiled {len(algorithms)} algorithm(s) x {len(dtypes)} pixel type(s) and "
                   f"the sim camera in {time.monotonic() - t0:.1f} s; tracking kernels in "
                   f"{KERNEL_CACHE}")  # fmt: skip


@app.command(short_help="Remove the shared memory that crashed runs left.")
def clean() -> None:
    """Remove the shared memory of runs that died: every magacq segment whose creator is gone
    (created over 10 s ago: another program may be about to reclaim a younger one), those whose
    registry record was lost too (Linux only: other platforms cannot list shared memory)."""
    from buffers import list_segments, remove_orphan_segments, remove_stale_segments
    from magacq.pipeline.supervisor import STALE_AGE_S

    stale = {info.name: info for info in list_segments() if not info.owner_alive}
    removed = [stale[name] for name in remove_stale_segments(min_age_s=STALE_AGE_S)]
    for info in removed:
        typer.echo(f"removed {info.namespace}/{info.buffer} ({info.name})")
    orphans = remove_orphan_segments(min_age_s=STALE_AGE_S)
    for info in orphans or ():
        owner = f"its creator (pid {info.owner_pid}) is gone" if info.kind else "no header"
        typer.echo(f"removed {info.name}: no registry record, {owner}")
    if orphans is None:
        typer.echo("segments without a registry record cannot be listed on this platform")
    removed += orphans or []
    freed = sum(info.size for info in removed)
    live = sum(info.owner_alive for info in list_segments())
    typer.echo(
        f"{len(removed)} stale segment(s) removed ({freed / 1e6:,.1f} MB); "
        f"{live} in use by live runs left alone"
    )


@app.command(short_help="Move the magnets of a live run or of a config.")
def magnets(
    config: ConfigArg,
    height: Annotated[float | None, typer.Option(help="Move the height to this (mm).")] = None,
    rotation: Annotated[
        float | None, typer.Option(help="Move the rotation to this (turns).")
    ] = None,
    relative: Annotated[
        bool, typer.Option("--relative", help="--height/--rotation are steps, not targets.")
    ] = False,
    velocity: Annotated[
        float | None, typer.Option(help="Velocity of the moves (mm/s or turns/s).")
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Halt the magnets.")] = False,
    run: Annotated[
        str | None, typer.Option("--run", help="Namespace of the run (when several are live).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each move.")] = 60.0,
    debug: DebugOpt = False,
) -> None:
    """Move the magnets (headless): those of your live run (--run: the one named), else the
    config's own, directly.

    Prints where they are at the end."""
    with _errors(debug):
        from magacq.config import load_config
        from magacq.errors import RunError
        from magacq.pipeline.magnet_cli import move_magnets
        from magacq.view import ViewError, choose_run, find_runs, mine

        cfg = load_config(config)
        runs, namespace = find_runs(), None
        if run is not None or mine(runs):  # yours, or one named: never another's by chance
            try:
                namespace = choose_run(runs, run).namespace
            except ViewError as exc:
                raise RunError(str(exc)) from None
        moves = [
            (axis, v) for axis, v in (("height", height), ("rotation", rotation)) if v is not None
        ]
        h, r = move_magnets(cfg, moves, relative=relative, velocity=velocity, stop=stop,
                            namespace=namespace, timeout=timeout)  # fmt: skip
        where = f"run {namespace}" if namespace else "no run of yours live, moved directly"
        typer.echo(f"magnets ({where}): height {h:g} mm, rotation {r:g} turns")


@app.command(short_help="Open a live window onto a running acquisition.")
def view(
    run: Annotated[
        str | None,
        typer.Option("--run", help="Namespace of the run to watch (needed when several are live)."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Open a live window onto a running acquisition (needs the 'view' extra)."""
    import logging

    from magacq.logs import console_handler
    from magacq.view import main as view_main

    logging.getLogger("magacq").addHandler(console_handler(_err, debug=debug))
    logging.getLogger("magacq").setLevel(logging.DEBUG if debug else logging.INFO)
    raise typer.Exit(view_main(run))


class _errors:
    """Turn magacq, hal and argument errors into one line and an exit code."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, typer.Exit | typer.Abort | SystemExit):
            return False
        if isinstance(exc, KeyboardInterrupt):
            _err.print("interrupted")
            raise typer.Exit(130)
        if self.debug:
            traceback.print_exception(exc)
        code = _exit_code(exc)
        _err.print(f"[bold red]error:[/] {_one_line(exc)}")
        raise typer.Exit(code)


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, MagacqError):
        return exc.exit_code
    try:
        from hal import DriverNotFoundError, UnsupportedSettingError

        if isinstance(exc, DriverNotFoundError | UnsupportedSettingError):
            return ConfigError.exit_code
    except ImportError:
        pass
    return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if not isinstance(exc, MagacqError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, MemoryError):
        text += " (out of memory: lower buffers.ring_s, the frame size or tracking.workers)"
    if getattr(exc, "errno", None) == errno.EMFILE or "[Errno 24]" in text:
        from magacq._platform import open_file_limits

        limits = open_file_limits()
        if limits is not None:
            text += (
                f" (the open-file limit, ulimit -n, is {limits[0]:.0f}: raise it, "
                "e.g. ulimit -n 4096)"
            )
    return " ".join(text.split())


def main() -> None:
    """The command line (the `magacq` script calls it through :mod:`magacq.__main__`)."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a run
        sys.exit(130)
