"""The ``riskengine`` command line (typer).

Exit codes: 0 success; 2 bad input (scenario, arguments, stores): every
:class:`~riskengine.errors.InputError`, and typer's own usage errors, print one line naming the
field or file and the fix, never a traceback; 130 interrupted (Ctrl-C or SIGTERM: clusters shut
down and their jobs are cancelled first); 1 an unexpected failure, or ``replay`` found an
observation outside its band. Commands raise ``InputError`` and :func:`main` turns it into that
line and the exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ClassVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

try:  # recent typer vendors click as typer._click; older releases raise click's own errors
    from typer._click.exceptions import ClickException
except ImportError:
    from click.exceptions import ClickException

from riskengine.cluster import batch_cluster, batch_spec, connect, job_script, local_cluster
from riskengine.compile import compile_model
from riskengine.engine import simulating
from riskengine.errors import InputError, ScenarioError
from riskengine.formatting import bank_table, risk_table, summary_for_tables
from riskengine.scenario import builtin_scenarios, load_scenario
from riskengine.schema import estimated_bytes
from riskengine.store import reading

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Monte Carlo stress tests of the world economy against a US-China trade war.",
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def _error_line(message: str) -> None:
    """Print ``error: message`` on one line of stderr (no markup: messages quote user input)."""
    err_console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)


# Options shared by several commands.
Levels = Annotated[str, typer.Option("--levels", help="VaR and ES levels, comma-separated.")]
Backend = Annotated[str, typer.Option("--backend", help="cpu, cuda or reference (numpy).")]
Workers = Annotated[
    int | None, typer.Option("--workers", help="Run on a local cluster of W worker processes.")
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Address or scheduler file of an existing dask cluster."),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")]
Cluster = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Start workers as batch jobs: slurm, pbs, lsf (configs/cluster) or a config YAML.",
    ),
]
Jobs = Annotated[int | None, typer.Option("--jobs", help="--cluster: the most jobs at once.")]
Cores = Annotated[int | None, typer.Option("--cores", help="--cluster: cores (workers) per job.")]
Memory = Annotated[str | None, typer.Option("--memory", help="--cluster: memory per job (120GB).")]
Walltime = Annotated[
    str | None, typer.Option("--walltime", help="--cluster: time limit per job (02:00:00).")
]
Queue = Annotated[str | None, typer.Option("--queue", help="--cluster: partition or queue.")]


@app.command()
def validate(scenario: str = typer.Argument(..., help="Built-in name or path to a YAML file.")):
    """Check a scenario and print what it holds."""
    model = compile_model(load_scenario(scenario))
    sc = model.scenario
    # escape(): names and paths are the user's text, which rich would read as markup.
    lines = [
        f"[bold]{escape(sc.name)}[/]: valid ({escape(sc.source_path)})",
        f"  economy {escape(sc.economy)}: {len(model.regions)} regions x {len(model.sectors)} "
        f"sectors = {model.n_nodes} nodes ({escape(model.unit)})",
        f"  start {sc.start:%Y-%m}, horizon {sc.horizon_months} months",
    ]
    for name, ch in sc.channels.items():
        exposed = int((model.arrays.exposure[model.channels.index(name)] > 0).sum())
        lines.append(
            f"  channel {escape(name)}: p_on {ch.p_on:g}/month, p_off {ch.p_off:g}/month, "
            f"severity median {ch.severity.median:g}, {exposed} exposed nodes"
            + (" (starts on)" if ch.initial.on else "")
        )
    capital = "with capital" if np.isfinite(model.rwa).any() else "without capital"
    lines.append(
        f"  credit portfolio {escape(model.portfolio_name)}: {len(model.banks)} banks "
        f"({escape(', '.join(model.banks))}), {len(model.arrays.credit_scale)} classes, "
        f"{capital}"
    )
    if sc.parameters:
        names = ", ".join(p.name for p in sc.parameters)
        lines.append(
            f"  {len(sc.parameters)} judged ranges (plain runs use their nominal values; "
            f"`riskengine study` draws them): {escape(names)}"
        )
    # soft_wrap: one line per fact even when piped (rich wraps at 80 columns off a terminal)
    console.print("\n".join(lines), soft_wrap=True)


@app.command()
def scenarios():
    """List the built-in scenario library, one line each."""
    for name, path in builtin_scenarios().items():
        try:
            sc = load_scenario(path)
            line = " ".join(sc.description.split())
        except ScenarioError as exc:  # a broken library file must not hide the others
            line = f"(invalid: {exc})"
        console.print(
            f"[bold]{escape(name):<20}[/] {escape(line)}", highlight=False, soft_wrap=True
        )


class _PathsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.fields["paths"] / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} paths/s", style="progress.data.speed")


class _RunProgress:
    """The engine's :class:`riskengine.engine.Progress` drawn as a rich progress bar, shown from
    the moment the blocks start, after every check (an error before prints only its one line).
    ``header()`` is printed first. A bar still drawn when a command fails is stopped by
    :func:`main` (:meth:`stop_all`) before the error line: while drawn, it holds stderr."""

    shown: ClassVar[list[_RunProgress]] = []

    def __init__(self, header: Callable[[], str]):
        self.header = header
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _PathsPerSecond(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = None
        self.blocks = self.blocks_total = 0

    def start(self, blocks: int, paths: int, blocks_total: int) -> None:
        self.blocks, self.blocks_total = blocks, blocks_total
        console.print(self.header(), highlight=False, soft_wrap=True)
        if blocks < blocks_total:
            done = blocks_total - blocks
            console.print(
                f"resuming: {done} of {blocks_total} blocks already done; {paths:,} paths to go"
            )
        self.task = self.bar.add_task("blocks", total=blocks, paths=0)
        self.bar.start()
        _RunProgress.shown.append(self)

    def advance(self, paths: int) -> None:
        done = self.bar.tasks[self.task].fields["paths"] + paths
        self.bar.update(self.task, advance=1, paths=done)

    def stop(self) -> None:
        self.bar.stop()
        if self in _RunProgress.shown:
            _RunProgress.shown.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for shown in list(cls.shown):
            shown.stop()


def _size(n: int) -> str:
    """Bytes in decimal units, e.g. ``461 MB``."""
    units = ("B", "kB", "MB", "GB", "TB")
    exp = min(max(len(str(n)) - 1, 0) // 3, len(units) - 1)
    return f"{n / 1000**exp:.3g} {units[exp]}"


def _placement(
    workers: int | None, scheduler: str | None, cluster: str | None, **batch: object
) -> Callable[[], contextlib.AbstractContextManager]:
    """Where the blocks run, checked before any work: a context manager factory giving None
    (the local threaded scheduler), or a client of local processes, of an existing cluster, or
    of batch jobs (``batch``: --jobs, --cores, --memory, --walltime, --queue)."""
    options = {"--workers": workers, "--scheduler": scheduler, "--cluster": cluster}
    given = [option for option, value in options.items() if value is not None]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)} exclude each other; give one")
    if cluster is None and any(v is not None for v in batch.values()):
        option = next(f"--{k}" for k, v in batch.items() if v is not None)
        raise InputError(f"{option} sizes the jobs of --cluster; add --cluster slurm (or pbs, lsf)")
    if workers is not None:
        return lambda: local_cluster(workers)
    if scheduler is not None:
        return lambda: connect(scheduler)
    if cluster is not None:
        spec = batch_spec(cluster, **batch)
        return lambda: _on_batch_jobs(spec)
    return contextlib.nullcontext


def _refuse_before_starting(
    out: str,
    paths: int,
    seed: int,
    resolution: str,
    backend: str,
    block_paths: int | None,
    *,
    resume: bool,
    overwrite: bool,
    what: str = "run",
) -> None:
    """The arguments' and the store's checks, before the model compiles and before a cluster's
    jobs are submitted (the run, study or comparison checks again once it has them)."""
    from riskengine.counterfactual import is_comparison
    from riskengine.engine import _check_args
    from riskengine.store import check_out, is_store
    from riskengine.study_store import is_study

    _check_args(paths, seed, resolution, backend, block_paths)
    is_mine = {"run": is_store, "study": is_study, "comparison": is_comparison}[what]
    check_out(Path(out).absolute(), is_mine, resume=resume, overwrite=overwrite, what=what,
              resumable=what != "comparison")  # fmt: skip


@contextlib.contextmanager
def _on_batch_jobs(spec):
    """:func:`riskengine.cluster.batch_cluster`, saying where its dashboard is once it is up."""
    with batch_cluster(spec) as client:
        console.print(
            f"workers: {spec.kind} jobs of {spec.cores} cores, 1 to {spec.jobs} of them as the "
            f"blocks need; dashboard {client.dashboard_link}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        yield client


@app.command()
def run(
    scenario: str = typer.Argument(..., help="Built-in name or path to a YAML file."),
    paths: int = typer.Option(..., "--paths", help="Number of Monte Carlo paths."),
    out: str = typer.Option(..., "--out", help="The zarr store to write (RUN.zarr)."),
    seed: int = typer.Option(0, "--seed", help="Random seed in [0, 2**64)."),
    backend: Backend = "cpu",
    workers: Workers = None,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    jobs: Jobs = None,
    cores: Cores = None,
    memory: Memory = None,
    walltime: Walltime = None,
    queue: Queue = None,
    block_paths: int | None = typer.Option(
        None, "--block-paths", help="Paths per block (default: a few seconds of work)."
    ),
    resolution: str = typer.Option(
        "month", "--resolution", help="month, quarter, year or horizon: sums per period."
    ),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run."),
    overwrite: Overwrite = False,
    portfolio: str | None = typer.Option(
        None,
        "--portfolio",
        help="Credit portfolio (CSV or parquet: bank,region,segment,ead,pd,lgd), a library "
        "name or 'proxy'; default: the scenario's.",
    ),
    capital: str | None = typer.Option(
        None, "--capital", help="Capital table (CSV or parquet: bank,cet1,rwa) for CET1 depletion."
    ),
    tilt: str | None = typer.Option(
        None,
        "--tilt",
        help="Importance sampling: 'auto' (cross-entropy pilots for --tilt-level) or a tilt's "
        "JSON file; the cube's weight holds the likelihood ratios.",
    ),
    tilt_level: float = typer.Option(0.999, "--tilt-level", help="Tail level --tilt auto aims at."),
    tilt_measure: str = typer.Option(
        "loss", "--tilt-measure", help="loss, value_added or credit: what --tilt auto aims at."
    ),
):
    """Simulate a scenario into a zarr cube, block by block on dask."""
    where = _placement(workers, scheduler, cluster, jobs=jobs, cores=cores, memory=memory,
                       walltime=walltime, queue=queue)  # fmt: skip
    _refuse_before_starting(out, paths, seed, resolution, backend, block_paths, resume=resume,
                            overwrite=overwrite)  # fmt: skip
    model = compile_model(load_scenario(scenario), portfolio=portfolio, capital=capital)
    if tilt is not None:
        from riskengine.tilt import tilted

        console.print(f"choosing the tilt ({tilt}) ...", markup=False)
        model = tilted(model, tilt, tilt_level, tilt_measure, seed, backend)
    progress = _RunProgress(
        lambda: (
            f"[bold]{escape(model.scenario.name)}[/]: {paths:,} paths, seed {seed}, {resolution} "
            f"resolution, backend {backend} -> {escape(out)} (about "
            f"{_size(estimated_bytes(model, paths, resolution))} before compression)"
        )
    )
    with (
        where() as client,
        # The store stays locked until the table is printed: a second run cannot replace it
        # while this one reads its figures.
        simulating(
            model,
            paths,
            seed,
            store=out,
            backend=backend,
            client=client,
            block_paths=block_paths,
            resolution=resolution,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
        ) as ds,
    ):
        progress.stop()
        console.print(
            f"wrote {progress.blocks} of {progress.blocks_total} blocks to {out}", markup=False
        )
        # Inside the client's context: on a cluster, the workers read the cube for the table.
        summary = summary_for_tables(ds, (0.99,))
        console.print(risk_table(ds, (0.99,), summary))
        console.print(bank_table(ds, (0.99,), summary))


def _parse_levels(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(
            f"--levels {text!r}: give comma-separated numbers, e.g. 0.95,0.99,0.995"
        ) from None
    if not all(0 < level < 1 for level in levels):
        raise InputError(f"--levels {text!r}: each level must lie strictly between 0 and 1")
    return levels


def _refuse_to_replace(out: Path, names: list[str], overwrite: bool, what: str) -> None:
    """Refuse an ``--out`` that is not a folder, or one that holds any of ``names`` without
    ``--overwrite``."""
    if os.path.lexists(out) and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder; choose another --out")
    clashes = [n for n in names if os.path.lexists(out / n)]
    if clashes and not overwrite:
        raise InputError(
            f"--out {out}: already holds {what} ({clashes[0]}); add --overwrite or choose "
            "another --out"
        )


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
    """Write the report of a run, a study or a comparison (HTML page and PNG figures) and print
    its tables."""
    from riskengine.comparison_report import COMPARISON_FIGURES, write_comparison_report
    from riskengine.counterfactual import is_comparison, open_comparison
    from riskengine.report import FIGURES, write_report
    from riskengine.study_report import STUDY_FIGURES, write_study_report
    from riskengine.study_store import is_study, open_study

    parsed = _parse_levels(levels)
    run = run.resolve()  # `report .` inside the store names it by its folder
    out = out if out is not None else run.with_name(f"{run.stem}-report")
    study, comparison = is_study(run), is_comparison(run)
    names = STUDY_FIGURES if study else COMPARISON_FIGURES if comparison else FIGURES
    _refuse_to_replace(out, ["index.html", *(f"{f}.png" for f in names)], overwrite, "a report")
    if study:  # a study's levels are its own: --levels does not apply
        result = write_study_report(open_study(run), out)
        console.print(result.table)
        console.print(f"report: {result.html}", highlight=False)
        return
    if comparison:  # so are a comparison's
        result = write_comparison_report(open_comparison(run), out)
        for table in result.tables:
            console.print(table)
        console.print(f"report: {result.html}", highlight=False)
        return
    with reading(run) as ds:  # no run can replace the store while the report reads it
        result = write_report(ds, out, parsed)
    console.print(result.table)
    console.print(result.banks)
    console.print(f"report: {result.html}", highlight=False)


@app.command()
def study(
    scenario: str = typer.Argument(..., help="Built-in name or path to a YAML file."),
    samples: int = typer.Option(
        ...,
        "--samples",
        help="Base samples N: N(D+2) points (sobol, N a power of 2), N(D+1) (morris).",
    ),
    paths: int = typer.Option(..., "--paths", help="Monte Carlo paths at every point."),
    out: str = typer.Option(..., "--out", help="The zarr store to write (STUDY.zarr)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the paths and the design."),
    design: str = typer.Option("sobol", "--design", help="sobol (indices) or morris (screening)."),
    levels: Levels = "0.95,0.99,0.995",
    exposure: str | None = typer.Option(
        None, "--exposure", help="outer (one factor per channel, default) or per_path."
    ),
    backend: Backend = "cpu",
    workers: Workers = None,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    jobs: Jobs = None,
    cores: Cores = None,
    memory: Memory = None,
    walltime: Walltime = None,
    queue: Queue = None,
    block_paths: int | None = typer.Option(None, "--block-paths", help="Paths per block."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted study."),
    overwrite: Overwrite = False,
):
    """Run an uncertainty study: the scenario's judgements drawn by a design, the Monte Carlo
    at every point on the same paths, risk figures and sensitivity indices."""
    from riskengine.studies import plan_study, run_plan
    from riskengine.study_report import study_table

    where = _placement(workers, scheduler, cluster, jobs=jobs, cores=cores, memory=memory,
                       walltime=walltime, queue=queue)  # fmt: skip
    _refuse_before_starting(out, paths, seed, "horizon", backend, block_paths, resume=resume,
                            overwrite=overwrite, what="study")  # fmt: skip
    plan = plan_study(scenario, samples, design_method=design, seed=seed, exposure=exposure)
    progress = _RunProgress(
        lambda: (
            f"[bold]{escape(plan.scenario.name)}[/]: {plan.n_points:,} points ({design}, "
            f"{len(plan.parameters)} parameters) x {paths:,} paths, seed {seed} -> {escape(out)}"
        )
    )
    with where() as client:
        ds = run_plan(
            plan, paths, seed, out, levels=_parse_levels(levels), backend=backend,
            client=client, block_paths=block_paths, resume=resume, overwrite=overwrite,
            progress=progress,
        )  # fmt: skip
    progress.stop()
    console.print(study_table(ds))
    console.print(f"wrote {out}; `riskengine report {out}` draws its figures", highlight=False)


@app.command()
def compare(
    scenario: str = typer.Argument(..., help="Built-in name or path to a YAML file: the base."),
    paths: int = typer.Option(..., "--paths", help="Monte Carlo paths of every variant."),
    out: str = typer.Option(..., "--out", help="The zarr store to write (COMPARE.zarr)."),
    off: str = typer.Option(
        "", "--off", help="Channels to switch off (exposure 0, regimes kept), comma-separated."
    ),
    against: str | None = typer.Option(
        None, "--against", help="A second scenario (name or YAML) run on the same paths."
    ),
    shapley: bool = typer.Option(
        False, "--shapley", help="Shapley values of EL, VaR and ES over the channels."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed in [0, 2**64)."),
    levels: Levels = "0.95,0.99,0.995",
    backend: Backend = "cpu",
    workers: Workers = None,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    jobs: Jobs = None,
    cores: Cores = None,
    memory: Memory = None,
    walltime: Walltime = None,
    queue: Queue = None,
    block_paths: int | None = typer.Option(None, "--block-paths", help="Paths per block."),
    overwrite: Overwrite = False,
):
    """Paired counterfactuals: the scenario and its variants on the same paths, the paired
    differences, and the channels' Shapley values."""
    from riskengine.comparison_report import difference_table, shapley_table
    from riskengine.counterfactual import counterfactual

    where = _placement(workers, scheduler, cluster, jobs=jobs, cores=cores, memory=memory,
                       walltime=walltime, queue=queue)  # fmt: skip
    _refuse_before_starting(out, paths, seed, "horizon", backend, block_paths, resume=False,
                            overwrite=overwrite, what="comparison")  # fmt: skip
    channels = [c.strip() for c in off.split(",") if c.strip()]
    base = compile_model(load_scenario(scenario))
    progress = _RunProgress(
        lambda: (
            f"[bold]{escape(base.scenario.name)}[/]: base"
            + "".join(f", off:{escape(c)}" for c in channels)
            + (f", against {escape(against)}" if against else "")
            + (", Shapley subsets" if shapley else "")
            + f"; {paths:,} paths each, seed {seed} -> {escape(out)}"
        )
    )
    with where() as client:
        ds = counterfactual(
            base, paths, seed, out, off=channels, against=against, shapley_values=shapley,
            levels=_parse_levels(levels), backend=backend, client=client,
            block_paths=block_paths, overwrite=overwrite, progress=progress,
        )  # fmt: skip
    progress.stop()
    if ds.sizes["variant"] > 1:
        console.print(difference_table(ds))
    if shapley:
        console.print(shapley_table(ds))
    console.print(f"wrote {out}; `riskengine report {out}` draws the waterfall", highlight=False)


@app.command()
def reverse(
    scenario: str = typer.Argument(..., help="Built-in name or path to a YAML file."),
    loss: float = typer.Option(
        ..., "--loss", help="The loss X, in the tables' unit (USD bn for the library's economies)."
    ),
    region: str | None = typer.Option(None, "--region", help="A region's loss [the world's]."),
    paths: int = typer.Option(20_000, "--paths", help="Paths of the run the search starts from."),
    seed: int = typer.Option(0, "--seed", help="Random seed of that run."),
    out: Annotated[Path | None, typer.Option(help="Folder for the answer [reverse-NAME].")] = None,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an answer in --out."),
):
    """Reverse stress test: the most likely path that loses at least X, as a story (a table and
    a figure), stored with its parameters."""
    from riskengine.formatting import display_unit
    from riskengine.reverse import reverse_stress, save, story_table

    model = compile_model(load_scenario(scenario))
    out = out if out is not None else Path(f"reverse-{model.scenario.name}")
    _refuse_to_replace(out, ["result.json", "tilt.json", "path.png"], overwrite, "an answer")
    if not 0 < paths <= 10**6:  # one block in memory: about 0.5 GB at 10^6 paths
        raise InputError(f"--paths {paths}: give between 1 and 1,000,000 paths")
    scale, unit = display_unit(model.unit)
    console.print(
        f"searching for the most likely path of {model.scenario.name} losing at least "
        f"{loss:,g} {unit}, from {paths:,} paths of seed {seed} ...",
        markup=False,
    )
    result = reverse_stress(model, loss / scale, region=region, seed=seed, paths=paths)
    files = save(result, out)
    console.print(story_table(result))
    console.print(
        f"wrote {files['result']}, {files['figure']} and {files['tilt']} "
        "(`riskengine run --tilt` samples around this path)",
        highlight=False,
    )


@app.command()
def replay(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Built-in replay names or YAML files [every built-in replay]."),
    ] = None,
    backend: Annotated[str, typer.Option(help="cpu, cuda or reference (numpy).")] = "cpu",
):
    """Run replays (episodes that happened, and supervisory stress tests through the credit
    layer) and print model against observation.

    Exits 1 when an observation lies outside its band (or a documented gap has closed).
    """
    from riskengine.formatting import replay_table, supervisory_table
    from riskengine.replay import builtin_replays, load_replay, run_replay
    from riskengine.supervisory import (
        builtin_supervisory,
        is_supervisory,
        load_supervisory,
        run_supervisory,
    )

    names = names or [*builtin_replays(), *builtin_supervisory()]
    episodes = [load_replay(n) for n in names if not is_supervisory(n)]
    paths = [load_supervisory(n) for n in names if is_supervisory(n)]
    results = [r for replay in episodes for r in run_replay(replay, backend=backend)]
    supervisory = [run_supervisory(p) for p in paths]
    if results:
        console.print(replay_table(results))
    if supervisory:
        console.print(supervisory_table(supervisory))
    failed = [r for r in results if not r.passed]
    failed += [s for s in supervisory if s.path.role == "replay" and not s.passed]
    gaps = sum(r.status == "gap" for r in results)
    total = len(results) + sum(s.path.role == "replay" for s in supervisory)
    console.print(
        f"{total - len(failed)} of {total} observations hold "
        f"({gaps} documented gaps: docs/calibration.md)",
        highlight=False,
    )
    if failed:
        raise typer.Exit(1)


@app.command("job-script")
def job_script_command(
    cluster: str = typer.Option(
        "slurm", "--cluster", help="slurm, pbs, lsf (configs/cluster) or a config YAML."
    ),
    cores: Cores = None,
    memory: Memory = None,
    walltime: Walltime = None,
    queue: Queue = None,
):
    """Print the job script that `--cluster` submits for each batch job, to check it first."""
    spec = batch_spec(cluster, cores=cores, memory=memory, walltime=walltime, queue=queue)
    print(job_script(spec))


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a batch system's end of walltime, ``kill``) ends a command as Ctrl-C does: its
    clusters shut down, their jobs are cancelled, and what was written is kept."""
    raise KeyboardInterrupt


# typer turns Ctrl-C (KeyboardInterrupt) into this exit code, 128 + SIGINT.
INTERRUPTED = 130


def main() -> None:
    """Entry point of the console script."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            # Outside standalone mode typer returns the code of a typer.Exit instead of exiting
            # with it, and re-raises click's errors for us to print on one line.
            code = app(standalone_mode=False)
        finally:
            _RunProgress.stop_all()
    except InputError as exc:
        _error_line(str(exc))
        sys.exit(2)
    except ClickException as exc:
        # A bare `riskengine` has printed its help already; its error carries no message.
        if exc.format_message():
            _error_line(exc.format_message())
        sys.exit(2)
    except typer.Abort:
        code = INTERRUPTED
    if code == INTERRUPTED:
        _error_line("interrupted; what was written is kept (`--resume` finishes a run or study)")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
