"""The engine: paths cut into blocks, each block a dask task that runs a kernel and writes its
region of the zarr store; resume, integrity checks and progress.

Nothing large travels back to the client: a block task returns the number of paths it wrote.
The same dask graph runs on the local threaded scheduler (no client) and on any
``dask.distributed`` cluster (a client); the compiled model is one node of that graph, so a
cluster ships it once per worker, not once per block.

A block's paths are a pure function of (seed, path) (see :mod:`riskengine.kernels.rng`), so the
cube does not depend on the block size, the scheduler, the number of workers or which worker ran
a block: a block lost with its worker is simply run again.

Everything about the store (checks, lock, creation, resume, opening) is in
:mod:`riskengine.store`; this module only cuts paths into blocks and runs them.

This module imports numpy, xarray and riskengine's backends, compile, errors, scenario, schema
and store modules; dask lazily, when a run starts.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import xarray as xr

from riskengine.backends import BACKENDS, block_arrays, block_shapes, run_block, run_block_into
from riskengine.cluster import usable_cores
from riskengine.compile import CompiledModel, compile_model
from riskengine.errors import RunError
from riskengine.scenario import Scenario, load_scenario
from riskengine.schema import RESOLUTIONS, build_dataset, estimated_bytes, periods
from riskengine.store import check_out, claim, open_run, write_block

__all__ = ["Progress", "available_memory", "default_block_paths", "simulate", "simulating"]

# Work per block: far above dask's ~3 ms per task, short enough for a live progress bar and for
# cheap re-runs of a block lost with its worker.
BLOCK_SECONDS = 2.0
# Cap on a default block's output in the cube's layout, which bounds a worker's memory per block;
# a block size given by the user may go up to MAX_BLOCK_BYTES where the memory allows.
BLOCK_BYTES = 64 * 2**20
MAX_BLOCK_BYTES = 2**30
# An in-memory run may take at most this share of the memory available when it starts.
MEMORY_SHARE = 0.8
# Rough cost of one path-month on one core (one GPU for cuda), for sizing blocks only. Measured
# on the 2-core development machine: reference about 1 ms per 60-month path; cpu 1-2.5 us per
# path-month under load before the kernel ran paths as vector lanes, 0.31 us on a quiet core
# since (docs/performance.md), so CPU blocks take about 0.6 s: still far above dask's cost per
# task, and smaller blocks hold less memory. cuda is a guess until measured on a GPU (a block of
# a few 10^5 paths).
SECONDS_PER_PATH_MONTH = {"reference": 2e-5, "cpu": 1e-6, "cuda": 5e-8}
SEED_LIMIT = 2**64
# Path indices are int64 in the cube and uint64 counters in the generator: far from both limits.
MAX_PATHS = 2**62


class Progress(Protocol):
    """What :func:`simulate` reports while it runs (the CLI draws a progress bar from it)."""

    def start(self, blocks: int, paths: int, blocks_total: int) -> None:
        """``blocks`` blocks holding ``paths`` paths are to run, of ``blocks_total`` in all."""

    def advance(self, paths: int) -> None:
        """One more block of ``paths`` paths is done (and written, for a store)."""


def default_block_paths(
    model: CompiledModel, paths: int, resolution: str, backend: str, slots: int
) -> int:
    """Paths per block: about :data:`BLOCK_SECONDS` of work, at most :data:`BLOCK_BYTES` of
    output, and a number of blocks that is a multiple of the worker threads (``slots``), at least
    two per thread, so that the threads finish together instead of one running a last block alone.
    On the CPU, a block of more than 512 paths is a whole number of the kernel's groups of 512
    (``riskengine.kernels.cpu``), which a block must otherwise compute in part for its
    neighbours.

    Examples
    --------
    >>> from riskengine import compile_model, load_scenario
    >>> model = compile_model(load_scenario("truce_collapse"))
    >>> default_block_paths(model, 10**6, "month", "reference", slots=2)
    1662
    >>> default_block_paths(model, 1000, "month", "reference", slots=2)
    250
    >>> default_block_paths(model, 200_000, "horizon", "cpu", slots=2)  # 8 blocks, not 7
    25088
    """
    by_time = BLOCK_SECONDS / (SECONDS_PER_PATH_MONTH[backend] * model.horizon)
    by_bytes = BLOCK_BYTES / estimated_bytes(model, 1, resolution)
    largest = max(1, int(min(by_time, by_bytes)))
    rounds = max(2, math.ceil(paths / (slots * largest)))  # blocks per worker thread
    block = max(1, min(largest, math.ceil(paths / (slots * rounds))))
    if backend == "cpu":
        from riskengine.kernels.cpu import CHUNK, GROUP_CHUNKS

        # The CPU kernel computes whole groups of paths (aligned on path indices): a block of
        # whole groups computes no path of its neighbours'.
        group = CHUNK * GROUP_CHUNKS
        if block > group and largest >= group:
            block = min(largest // group, math.ceil(block / group)) * group
    return block


def _blocks(paths: int, block_paths: int) -> list[tuple[int, int]]:
    return [(p0, min(p0 + block_paths, paths)) for p0 in range(0, paths, block_paths)]


# --- the two block tasks: run on dask workers, so they take only picklable arguments ----------

_reusable = threading.local()


@contextlib.contextmanager
def _one_core(backend: str) -> Iterator[None]:
    """Run the CPU kernel on this thread alone: dask runs one block per worker thread, and
    numba's own threads on top would oversubscribe the cores. numba's setting is per thread."""
    if backend != "cpu":
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _block(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    resolution: str,
    backend: str,
    reuse: bool,
) -> dict[str, np.ndarray]:
    """Paths ``[p0, p1)`` on one core. With ``reuse``, into this thread's buffers (valid until its
    next block): writing into pages already mapped is about 4x faster than into fresh ones."""
    if not reuse:
        with _one_core(backend):
            return run_block(model, seed, p0, p1, resolution, backend)
    period_of_month, starts = periods(model.start, model.horizon, resolution)
    held = getattr(_reusable, "arrays", None)
    if (
        held is None
        or held["weight"].shape[0] < p1 - p0
        or any(
            held[name].shape[1:] != shape[1:]
            for name, shape in block_shapes(model, 1, len(starts)).items()
        )
    ):
        held = _reusable.arrays = block_arrays(model, p1 - p0, len(starts))
    out = {name: values[: p1 - p0] for name, values in held.items()}
    with _one_core(backend):
        run_block_into(model, seed, p0, p1, period_of_month, out, backend)
    return out


def _compute(model: CompiledModel, seed: int, p0: int, p1: int, resolution: str, backend: str):
    """A block's arrays, returned (in-memory runs on a cluster, and the backend check)."""
    return p1 - p0, _block(model, seed, p0, p1, resolution, backend, reuse=False)


def _compute_into(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    resolution: str,
    backend: str,
    cube: dict[str, np.ndarray],
):
    """A block computed straight into its rows of ``cube`` (in-memory runs on local threads)."""
    period_of_month, _ = periods(model.start, model.horizon, resolution)
    rows = {name: values[p0:p1] for name, values in cube.items()}
    with _one_core(backend):
        run_block_into(model, seed, p0, p1, period_of_month, rows, backend)
    return p1 - p0, None


def _compute_and_write(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    resolution: str,
    backend: str,
    store: Path,
    index: int,
):
    """A block written into its region of ``store``; only its path count travels back."""
    write_block(store, index, p0, _block(model, seed, p0, p1, resolution, backend, reuse=True))
    return p1 - p0, None


def _run_tasks(
    fn: Callable,
    model: CompiledModel,
    args: Sequence[tuple],
    client,
    on_done: Callable[[int, tuple], None],
) -> None:
    """Run ``fn(model, *a)`` for every ``a`` in ``args`` as dask tasks.

    Without ``client``, the local threaded scheduler runs them on every core we may use; with a
    ``dask.distributed.Client``, its cluster does. ``on_done(i, result)`` follows task ``i`` (a
    task returns ``(paths, data)``); results are not kept beyond it.
    """
    import dask

    shared = dask.delayed(model, traverse=False)
    tasks = [dask.delayed(fn, pure=False)(shared, *a) for a in args]
    if client is None:
        from dask.callbacks import Callback

        index = {t.key: i for i, t in enumerate(tasks)}

        def posttask(key, result, dsk, state, worker_id):
            if key in index:
                on_done(index[key], result)

        with Callback(posttask=posttask):
            dask.compute(*tasks, scheduler="threads", num_workers=usable_cores())
        return

    from distributed import as_completed

    futures = client.compute(tasks)
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for future in as_completed(futures):
            on_done(index[future.key], future.result())  # raises the task's error, if any
            future.release()
    finally:
        client.cancel(futures)


def _slots(client) -> int:
    """Worker threads available: the cluster's (at least 1: workers may still be starting), or
    the local threaded scheduler's."""
    return max(1, sum(client.nthreads().values())) if client is not None else usable_cores()


def _load(
    scenario: Scenario | CompiledModel | str | Path, portfolio=None, capital=None
) -> CompiledModel:
    if isinstance(scenario, CompiledModel):
        if portfolio is not None or capital is not None:
            raise RunError(
                "portfolio and capital apply when the model is compiled; pass them to "
                "compile_model, or pass the scenario here"
            )
        return scenario
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return compile_model(scenario, portfolio=portfolio, capital=capital)


def _check_args(paths: int, seed: int, resolution: str, backend: str, block_paths: int | None):
    def integer(x) -> bool:
        return isinstance(x, int | np.integer) and not isinstance(x, bool)

    if not integer(paths) or paths <= 0:
        raise RunError(f"paths must be a positive integer, got {paths!r}; give --paths N > 0")
    if not integer(seed) or not 0 <= seed < SEED_LIMIT:
        raise RunError(f"seed must lie in [0, 2**64), got {seed}; give another --seed")
    if resolution not in RESOLUTIONS:
        raise RunError(f"resolution {resolution!r} is unknown; use one of {', '.join(RESOLUTIONS)}")
    if backend not in BACKENDS:
        raise RunError(f"backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    if not integer(paths) or paths >= MAX_PATHS:
        raise RunError(f"paths must be below 2**62, got {paths}; give fewer --paths")
    if block_paths is not None and (not integer(block_paths) or block_paths <= 0):
        raise RunError(f"block_paths must be a positive integer, got {block_paths!r}")


def _check_backend(model: CompiledModel, seed: int, resolution: str, backend: str, client):
    """Run one path where the blocks will run (on every worker of a cluster) before a store is
    written: a backend that cannot run there (no GPU) fails here, and every process has its
    kernel compiled (or loaded from its cache) before the first block starts."""
    if client is None:
        _compute(model, seed, 0, 1, resolution, backend)
    else:
        client.run(_compute, model, seed, 0, 1, resolution, backend)


def simulate(
    scenario: Scenario | CompiledModel | str | Path,
    paths: int,
    seed: int,
    store: str | Path | None = None,
    backend: str = "cpu",
    client=None,
    block_paths: int | None = None,
    resolution: str = "month",
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    portfolio=None,
    capital=None,
    tilt=None,
    tilt_level: float = 0.999,
    tilt_measure: str = "loss",
) -> xr.Dataset:
    """Simulate ``paths`` paths of a scenario into a cube, block by block on dask.

    Parameters
    ----------
    scenario
        A loaded scenario, a compiled model, or a built-in name or YAML path.
    paths
        Number of paths, simulated as paths ``0..paths-1``.
    seed
        In [0, 2**64). The cube is a function of (the model's inputs, seed, paths, resolution)
        only.
    store
        Path of a zarr store to write (a new or empty directory). Without it, the cube is
        gathered into memory: for small runs and notebooks.
    backend
        ``cpu``, ``cuda`` or ``reference`` (the numpy oracle, slow).
    client
        A ``dask.distributed.Client``: its cluster runs the blocks (the store must then be on a
        file system every worker sees). Without one, a local threaded scheduler uses every core.
    block_paths
        Paths per block (and per chunk of the store along ``path``); by default
        :func:`default_block_paths`.
    resolution
        ``month``, ``quarter``, ``year`` or ``horizon``: values are sums over each period.
    resume
        Finish the interrupted run in ``store``, running only the blocks not recorded done;
        refuses a store whose inputs (scenario, economy, exposure tables), seed, paths,
        resolution or backend differ.
    overwrite
        Replace an existing run store at ``store`` (only once every check has passed).
    progress
        Told the number of blocks and each block's completion.
    portfolio, capital
        The credit portfolio and capital tables instead of the scenario's ``credit.portfolio``
        and ``credit.capital`` (a library name, a CSV or parquet file, ``"proxy"``, or a
        :class:`~riskengine.portfolio.Portfolio` / :class:`~riskengine.portfolio.Capital`);
        see :func:`riskengine.compile_model`.
    tilt
        Importance sampling (docs/model.md section 8): a :class:`~riskengine.tilt.Tilt`, a
        tilt's JSON file, or ``"auto"`` (:func:`riskengine.tilt.auto_tilt` at ``tilt_level``
        for ``tilt_measure``, from pilot runs on seeds of their own). The cube's ``weight``
        holds each path's likelihood ratio and its ``tilt`` attr the tilt.
    tilt_level, tilt_measure
        The tail level and the per-path figure (``loss``, ``value_added``, ``credit``) an
        automatic tilt aims at.

    Returns
    -------
    xarray.Dataset
        The cube: in memory without ``store``, else opened lazily from it
        (:func:`riskengine.store.open_run`).

    Raises
    ------
    riskengine.errors.RunError
        Bad arguments.
    riskengine.errors.StoreError
        A store that exists (without ``resume`` or ``overwrite``), is in use by another
        process, does not match on ``resume``, cannot be created, or would not fit on the disk.
    riskengine.errors.BackendError
        A backend that cannot run here (or on the cluster).

    Examples
    --------
    >>> ds = simulate("truce_collapse", paths=8, seed=1, backend="reference", resolution="year")
    >>> dict(ds.sizes)
    {'path': 8, 'time': 5, 'sector': 12, 'region': 7, 'bank': 6, 'channel': 4, 'segment': 15}
    """
    if portfolio is not None or capital is not None or tilt is not None:
        scenario = _load(scenario, portfolio, capital)
    if tilt is not None:
        from riskengine.tilt import tilted

        _check_args(paths, seed, resolution, backend, block_paths)  # before the pilots run
        if store is not None:
            check_out(Path(store).absolute(), resume=resume, overwrite=overwrite)
        scenario = tilted(scenario, tilt, tilt_level, tilt_measure, seed, backend)
    if store is None:
        model, bp = _prepare(scenario, paths, seed, backend, client, block_paths, resolution)
        if resume or overwrite:
            raise RunError("resume and overwrite apply to a store; give store (--out) as well")
        return _in_memory(model, paths, seed, backend, client, bp, resolution, progress)
    with simulating(
        scenario,
        paths,
        seed,
        store,
        backend,
        client,
        block_paths,
        resolution,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    ) as ds:
        return ds


def available_memory() -> int:
    """Bytes of memory this machine has available now (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _in_memory(model, paths, seed, backend, client, block_paths, resolution, progress):
    """The cube in one preallocated set of arrays, each block written into its rows (on local
    threads) or copied there as it arrives (from a cluster), then the Dataset over them."""
    n_periods = len(periods(model.start, model.horizon, resolution)[1])
    blocks = _blocks(paths, block_paths)
    in_flight = 2 * _slots(client) if (client is not None or backend == "reference") else 0
    needed = estimated_bytes(model, paths, resolution)
    needed += min(in_flight, len(blocks)) * estimated_bytes(model, block_paths, resolution)
    free = available_memory()
    if needed > MEMORY_SHARE * free:
        raise RunError(
            f"an in-memory cube of {paths:,} paths at {resolution} resolution needs about "
            f"{needed / 1e9:.3g} GB but {free / 1e9:.3g} GB of memory are available; give a "
            "store (--out, store=) to write it to disk, or a coarser resolution"
        )
    cube = block_arrays(model, paths, n_periods)
    if progress is not None:
        progress.start(len(blocks), paths, len(blocks))

    def done(i: int, result: tuple) -> None:
        count, data = result
        if data is not None:  # a block from a cluster: into its rows, then dropped
            p0, p1 = blocks[i]
            for name, values in data.items():
                cube[name][p0:p1] = values
        if progress is not None:
            progress.advance(count)

    if client is None:
        # The cube is handed to the tasks under a name of its own, so that dask does not hash
        # its gigabytes to name it.
        import uuid

        import dask

        shared = dask.delayed(cube, traverse=False, name=f"cube-{uuid.uuid4().hex}")
        args = [(seed, p0, p1, resolution, backend, shared) for p0, p1 in blocks]
        _run_tasks(_compute_into, model, args, None, done)
    else:
        args = [(seed, p0, p1, resolution, backend) for p0, p1 in blocks]
        _run_tasks(_compute, model, args, client, done)
    return build_dataset(
        model, cube, np.arange(paths), seed=seed, backend=backend, resolution=resolution
    )


@contextlib.contextmanager
def simulating(
    scenario: Scenario | CompiledModel | str | Path,
    paths: int,
    seed: int,
    store: str | Path,
    backend: str = "cpu",
    client=None,
    block_paths: int | None = None,
    resolution: str = "month",
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Iterator[xr.Dataset]:
    """:func:`simulate` into ``store`` as a context manager: yields the finished cube while the
    run still holds the store's lock, so that nothing else can replace the store while the
    caller reads its figures (the command line prints its risk table there).

    Parameters and errors as :func:`simulate`.
    """
    path = Path(store).absolute()
    check_out(path, resume=resume, overwrite=overwrite)
    model, bp = _prepare(scenario, paths, seed, backend, client, block_paths, resolution)
    note = progress.advance if progress is not None else lambda _: None
    with claim(
        path,
        model,
        seed=seed,
        paths=paths,
        backend=backend,
        resolution=resolution,
        block_paths=block_paths,
        default_block_paths=bp,
        resume=resume,
        overwrite=overwrite,
        before_writing=lambda: _check_backend(model, seed, resolution, backend, client),
    ) as run:
        blocks = _blocks(paths, run.block_paths)
        todo = [(i, p0, p1) for i, (p0, p1) in enumerate(blocks) if not run.done[i]]
        if progress is not None:
            progress.start(len(todo), sum(p1 - p0 for _, p0, p1 in todo), len(blocks))
        args = [(seed, p0, p1, resolution, backend, path, i) for i, p0, p1 in todo]
        _run_tasks(_compute_and_write, model, args, client, lambda _, result: note(result[0]))
        yield open_run(path)


def _prepare(scenario, paths, seed, backend, client, block_paths, resolution):
    """The compiled model and the block size, after every check of the arguments."""
    model = _load(scenario)
    _check_args(paths, seed, resolution, backend, block_paths)
    slots = _slots(client)
    if block_paths is not None:
        _check_block_memory(model, block_paths, resolution, slots, client)
    bp = block_paths or default_block_paths(model, paths, resolution, backend, slots)
    return model, bp


def _check_block_memory(model, block_paths: int, resolution: str, slots: int, client) -> None:
    """A block given by the user must fit: under :data:`MAX_BLOCK_BYTES`, and (on this machine)
    twice over per worker thread in the memory available (its arrays and zarr's encoding)."""
    block = estimated_bytes(model, block_paths, resolution)
    largest = MAX_BLOCK_BYTES // estimated_bytes(model, 1, resolution)
    if client is None:
        import psutil

        per_thread = psutil.virtual_memory().available // (2 * slots)
        largest = min(largest, per_thread // estimated_bytes(model, 1, resolution))
    if block_paths > largest:
        raise RunError(
            f"block_paths {block_paths}: a block would hold {block / 1e9:.3g} GB of output; "
            f"give at most {max(1, largest):,} paths per block (the default sizes blocks for "
            "you), or a coarser resolution"
        )
