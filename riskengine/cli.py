"""The ``riskengine`` command line (typer).

Exit codes: 0 success; 2 bad input (scenario, arguments, stores), with a one-line message naming
the field or file and the fix, never a traceback; 1 an unexpected failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

try:  # recent typer vendors click as typer._click; older releases raise click's own errors
    from typer._click.exceptions import ClickException
except ImportError:
    from click.exceptions import ClickException

from riskengine.compile import compile_model
from riskengine.scenario import ScenarioError, builtin_scenarios, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Monte Carlo stress tests of the world economy against a US-China trade war.",
)
console = Console()
err_console = Console(stderr=True)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    err_console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def validate(scenario: str = typer.Argument(..., help="Built-in name or path to a YAML file.")):
    """Check a scenario and print what it holds."""
    try:
        model = compile_model(load_scenario(scenario))
    except ScenarioError as exc:
        fail(str(exc))
    sc = model.scenario
    console.print(f"[bold]{sc.name}[/]: valid ({sc.source_path})")
    console.print(
        f"  economy {sc.economy}: {len(model.regions)} regions x {len(model.sectors)} sectors"
        f" = {model.n_nodes} nodes ({model.unit})"
    )
    console.print(f"  start {sc.start:%Y-%m}, horizon {sc.horizon_months} months")
    for name, ch in sc.channels.items():
        exposed = int((model.arrays.exposure[model.channels.index(name)] > 0).sum())
        console.print(
            f"  channel {name}: p_on {ch.p_on:g}/month, p_off {ch.p_off:g}/month, "
            f"severity median {ch.severity.median:g}, {exposed} exposed nodes"
            + (" (starts on)" if ch.initial.on else "")
        )


@app.command()
def scenarios():
    """List the built-in scenario library, one line each."""
    for name, path in builtin_scenarios().items():
        try:
            sc = load_scenario(path)
            line = " ".join(sc.description.split())
        except ScenarioError as exc:  # a broken library file must not hide the others
            line = f"(invalid: {exc})"
        console.print(f"[bold]{name:<20}[/] {line}", highlight=False, soft_wrap=True)


def _parse_levels(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",")]
    except ValueError:
        fail(f"--levels {text!r}: give comma-separated numbers, e.g. 0.95,0.99,0.995")
    if not all(0 < level < 1 for level in levels):
        fail(f"--levels {text!r}: each level must lie strictly between 0 and 1")
    return levels


def _open_cube(run: Path):
    """Open a run's store lazily, or fail with a one-line message naming it."""
    import xarray as xr

    from riskengine.risk import CubeError, check_cube

    if not run.is_dir():
        fail(f"{run}: no such run store; give the RUN.zarr folder that `riskengine run` wrote")
    try:
        ds = xr.open_zarr(run)
        check_cube(ds)
    except CubeError as exc:
        fail(f"{run}: {exc}")
    except (OSError, ValueError, KeyError) as exc:  # zarr's errors for a folder that is no store
        fail(f"{run}: not a zarr store written by `riskengine run` ({type(exc).__name__})")
    return ds


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="The run's store (RUN.zarr).")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for index.html and the PNGs [RUN-report].")
    ] = None,
    levels: Annotated[str, typer.Option(help="Levels of VaR and ES, comma-separated.")] = (
        "0.95,0.99,0.995"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace a report already in --out.")] = False,
):
    """Write a run's report (HTML page and PNG figures) and print its risk table."""
    from riskengine.report import FIGURES, write_report

    parsed = _parse_levels(levels)
    ds = _open_cube(run)
    out = out if out is not None else run.with_name(f"{run.stem}-report")
    clashes = [
        out / n for n in ["index.html", *(f"{f}.png" for f in FIGURES)] if (out / n).exists()
    ]
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a folder; choose another --out")
    if clashes and not overwrite:
        fail(
            f"--out {out}: already holds a report ({clashes[0].name}); "
            "add --overwrite or choose another --out"
        )
    result = write_report(ds, out, parsed)
    console.print(result.table)
    console.print(f"report: {result.html}", highlight=False)


def main() -> None:
    """Entry point of the console script."""
    try:
        # Outside standalone mode typer returns the code of a typer.Exit (as raised by fail())
        # instead of exiting with it, and re-raises click's errors for us to print on one line.
        code = app(standalone_mode=False)
    except UsageError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except ClickException as exc:
        # A bare `riskengine` has printed its help already; its error carries no message.
        if exc.format_message():
            err_console.print(
                f"error: {exc.format_message()}", highlight=False, markup=False, soft_wrap=True
            )
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
