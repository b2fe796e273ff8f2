"""The `magacq` command line: run, calibrate, retrack, view, validate, drivers, schema.

Exit codes: 0 success, 2 bad input (config, arguments), 1 failure at run time. Errors are one
line on stderr; ``--debug`` adds the traceback.
"""

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from magacq.errors import ConfigError, MagacqError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Debug logging and tracebacks.")]


@app.command()
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
            return
        from magacq.pipeline import run_acquisition

        path = run_acquisition(cfg, config_path=config, debug=debug)
        typer.echo(f"saved {path}")


@app.command()
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

        cfg = load_config(config)
        path = run_calibration(cfg, config_path=config, output=output, debug=debug)
        typer.echo(f"saved {path}")


@app.command()
def retrack(
    run: Annotated[Path, typer.Argument(help="Run file with recorded video.", show_default=False)],
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

        from rich.logging import RichHandler
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from magacq.offline import retrack as _retrack

        logging.getLogger("magacq").addHandler(RichHandler(console=_err, show_path=False))
        logging.getLogger("magacq").setLevel(logging.DEBUG if debug else logging.INFO)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("frames"), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=_err) as progress:
            path = _retrack(run, zlut=zlut, method=method, out=out, scheduler=scheduler,
                            workers=workers, stack_frames=stack_frames,
                            progress=progress)  # fmt: skip
        typer.echo(f"saved {path}")


@app.command()
def validate(config: ConfigArg, debug: DebugOpt = False) -> None:
    """Check a config file (keys, values, drivers and their settings)."""
    with _errors(debug):
        from magacq.config import load_config

        load_config(config)
        typer.echo(f"{config}: ok")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors)."""
    from magacq.config import json_schema

    typer.echo(json_schema())


@app.command()
def drivers(debug: DebugOpt = False) -> None:
    """List the camera and focus-stage drivers and whether each is usable here."""
    with _errors(debug):
        import hal

        table = Table("driver", "devices", "usable", "why not / where")
        for info in hal.list_drivers():
            kinds = [k for k, has in (("camera", info.has_camera),
                                      ("focus stage", info.has_focus_stage)) if has]  # fmt: skip
            table.add_row(info.name, ", ".join(kinds), "yes" if info.usable else "no",
                          info.reason or info.target)  # fmt: skip
        Console(highlight=False).print(table)


@app.command()
def view(
    run: Annotated[
        str | None,
        typer.Option("--run", help="Namespace of the run to watch (needed when several are live)."),
    ] = None,
) -> None:
    """Open a live window onto a running acquisition (needs the 'view' extra)."""
    from magacq.view import main as view_main

    raise typer.Exit(view_main(run))


class _errors:
    """Turn magacq, hal and argument errors into one line and an exit code."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
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
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, MagacqError):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a run
        sys.exit(130)
