"""Studies: the scenario's judgements drawn by a design (outer samples), the Monte Carlo run at
every point (inner paths), per point the risk figures, as one resumable dask job.

Every point runs the same paths ``0..paths-1`` with the same seed (common random numbers), so
two points differ only by their parameters, not by sampling noise. A point's paths are cut into
blocks like a run's (:mod:`riskengine.engine`); a block task returns the paths' horizon totals
(output loss and value added lost by region, credit losses by bank, weight) and a point task
turns them, in path order, into EL, VaR and ES with standard errors (:mod:`riskengine.weighted`,
the statistics of :func:`riskengine.risk_summary`) and the total loss's exceedance curve. The
figures are a function of (the point's parameters, seed, paths) only: bitwise identical for any
block size, scheduler, worker count or resume.

Exposure uncertainty: by default (``exposure="outer"``) the per-path multipliers of
``exposure_uncertainty`` are off inside the points and each channel's exposure table gets one
outer factor (:func:`riskengine.uncertainty.exposure_parameters`); ``per_path`` keeps the
multipliers inside every path as a plain run does (docs/model.md section 9).

This module imports numpy, xarray and riskengine's backends, cluster, compile, engine, errors, risk,
scenario, sensitivity, store, study_store, uncertainty, version and weighted modules; dask
lazily.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr

from riskengine.backends import run_block
from riskengine.cluster import usable_cores
from riskengine.compile import CompiledModel, compile_model
from riskengine.engine import (
    Progress,
    _blocks,
    _check_args,
    _check_backend,
    _one_core,
    _slots,
    default_block_paths,
    simulate,
)
from riskengine.errors import RunError, ScenarioError
from riskengine.risk import SUMMARY_GROUPS, check_levels
from riskengine.scenario import Scenario, load_scenario
from riskengine.sensitivity import Design, design, indices
from riskengine.store import check_out, is_store, read_run
from riskengine.study_store import claim_study, is_study, open_study, write_points
from riskengine.uncertainty import Parameter, exposure_parameters, scenario_at
from riskengine.version import __version__
from riskengine.weighted import mean_se, tail_stats, weighted_quantile

__all__ = [
    "FIGURE_GROUPS",
    "StudyPlan",
    "open_study",
    "plan_study",
    "point_figures",
    "point_model",
    "run_plan",
    "run_points",
    "study",
    "study_indices",
]

# The per-path totals a point's figures come from: group -> (block variable, summed over).
FIGURE_GROUPS = {
    "total": ("loss_total", True),
    "region": ("loss_total", False),
    "va_total": ("value_added_loss_total", True),
    "va_region": ("value_added_loss_total", False),
    "credit_total": ("credit_loss_total", True),
    "credit": ("credit_loss_total", False),
}
_LABEL = {"region": "region", "va_region": "region", "credit": "bank"}
STATS = ("EL", "EL_se", "VaR", "VaR_se", "ES", "ES_se")
# Points of the total loss's exceedance curve stored per point: probabilities from 1/2 down to
# 1/paths, evenly in log.
CURVE_POINTS = 40
# The client writes finished points at most this often (a killed study loses at most these).
FLUSH_SECONDS = 2.0
# Bytes of a path's horizon totals (20 float64 of the default model and the weight) and the
# memory the points in flight may hold in them (see run_points).
TOTALS_BYTES = 168
WINDOW_BYTES = 256 * 2**20
MAX_WINDOW = 256


@dataclass(frozen=True)
class StudyPlan:
    """What a study runs: the scenario, its parameters, the design and each point's values."""

    scenario: Scenario
    parameters: tuple[Parameter, ...]
    design: Design
    values: np.ndarray  # (n_points, D)
    exposure_per_path: bool
    nominal: CompiledModel

    @property
    def n_points(self) -> int:
        return self.values.shape[0]


def plan_study(
    scenario: Scenario | str | Path, samples: int, *, design_method: str = "sobol",
    seed: int = 0, exposure: str | None = None,
) -> StudyPlan:  # fmt: skip
    """The points of a study of ``scenario``: its parameters (distributions, groups and, with
    ``exposure="outer"``, one exposure factor per channel) drawn by a design of ``samples``
    base samples (Sobol: a power of 2) with ``seed``.

    Raises
    ------
    ScenarioError, RunError
        A bad scenario; a scenario with nothing uncertain, or bad study arguments.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    mode = exposure or sc.uncertainty.exposure
    if mode not in ("outer", "per_path"):
        raise RunError(f"exposure {mode!r} is unknown; use outer or per_path")
    nominal = compile_model(sc)
    params = tuple(sc.parameters)
    if mode == "outer":
        a = nominal.arrays
        sigma = {}
        for c, name in enumerate(nominal.channels):
            exposed = a.exposure[c] > 0
            rms = np.sqrt(np.mean(a.exposure_sigma[exposed] ** 2)) if exposed.any() else 0.0
            sigma[name] = float(rms)
        params += exposure_parameters(sc, sigma)
    try:
        d = design(tuple(p.name for p in params), design_method, samples, seed)
    except ValueError as exc:
        raise RunError(f"{sc.source_path}: {exc}") from None
    values = np.column_stack([p.values(d.unit[:, j]) for j, p in enumerate(params)])
    return StudyPlan(sc, params, d, values, mode == "per_path", nominal)


def point_model(plan: StudyPlan, i: int) -> CompiledModel:
    """The compiled model of point ``i``."""
    sc = scenario_at(plan.scenario, plan.parameters, plan.values[i],
                     exposure_per_path=plan.exposure_per_path)  # fmt: skip
    try:
        return compile_model(sc)
    except ScenarioError as exc:
        point = ", ".join(f"{p.name}={v:.6g}" for p, v in zip(plan.parameters, plan.values[i],
                                                              strict=True))  # fmt: skip
        raise ScenarioError(f"{exc} (at sample {i}: {point})") from None


def _point_block(model: CompiledModel, seed: int, p0: int, p1: int, backend: str) -> dict:
    """Paths ``[p0, p1)`` of one point on one core: their horizon totals and weights."""
    with _one_core(backend):
        out = run_block(model, seed, p0, p1, "horizon", backend)
    names = {v for v, _ in FIGURE_GROUPS.values()}
    return {name: out[name] for name in (*sorted(names), "weight")}


def curve_probabilities(paths: int) -> np.ndarray:
    """The exceedance probabilities of each point's curve: 1/2 down to 1/paths."""
    return np.logspace(np.log10(0.5), -np.log10(max(paths, 4)), CURVE_POINTS)


def point_figures(blocks: Sequence[dict], levels: np.ndarray) -> dict[str, np.ndarray]:
    """EL, VaR and ES (with standard errors) of every figure group, and the total loss's
    exceedance curve, from a point's blocks in path order."""
    cat = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    w = cat["weight"]
    out: dict[str, np.ndarray] = {}
    for group, (name, summed) in FIGURE_GROUPS.items():
        X = cat[name].astype(np.float64)
        X = X.sum(axis=1, keepdims=True) if summed else X
        stats = {s: [] for s in STATS}
        for j in range(X.shape[1]):
            el, el_se = mean_se(X[:, j], w)
            t = tail_stats(X[:, j], w, levels)
            for s, v in zip(STATS, (el, el_se, t.var, t.var_se, t.es, t.es_se), strict=True):
                stats[s].append(v)
        for s, v in stats.items():
            v = np.asarray(v, dtype=np.float64)
            out[f"{group}_{s}"] = v[0] if summed else v
    total = cat["loss_total"].astype(np.float64).sum(axis=1)
    out["total_curve"] = weighted_quantile(total, w, 1.0 - curve_probabilities(total.size))
    return out


def _identity(plan: StudyPlan, paths: int, seed: int, levels: np.ndarray, backend: str) -> str:
    digest = hashlib.sha256(plan.nominal.identity.encode())
    settings = {
        "samples": plan.design.samples, "design": plan.design.method, "paths": paths,
        "seed": seed, "levels": levels.tolist(), "backend": backend,
        "exposure_per_path": plan.exposure_per_path,
        "parameters": [p.name for p in plan.parameters],
    }  # fmt: skip
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def _template(plan: StudyPlan, paths: int, seed: int, levels: np.ndarray, backend: str,
              lazy: bool) -> xr.Dataset:  # fmt: skip
    """The study's dataset with NaN figures (lazy: dask arrays, for a store's layout)."""
    import dask.array as da

    m = plan.nominal
    n = plan.n_points
    # Labels as object arrays: zarr v3 stores them as variable-length strings (as the cube's).
    labels = {"region": np.array(m.regions, dtype=object), "bank": np.array(m.banks, dtype=object)}
    full = (lambda shape: da.full(shape, np.nan)) if lazy else (lambda s: np.full(s, np.nan))
    data = {}
    for group, (_, summed) in FIGURE_GROUPS.items():
        dims = ("sample",) if summed else ("sample", _LABEL[group])
        shape = (n,) if summed else (n, len(labels[_LABEL[group]]))
        for s in STATS:
            tail = s.startswith(("VaR", "ES"))
            d, sh = ((*dims, "level"), (*shape, len(levels))) if tail else (dims, shape)
            attrs = {"long_name": f"{s} of {SUMMARY_GROUPS[group]}", "units": m.unit}
            data[f"{group}_{s}"] = xr.Variable(d, full(sh), attrs)
    data["total_curve"] = xr.Variable(
        ("sample", "probability"), full((n, CURVE_POINTS)),
        {"long_name": "total output loss exceeded with the probability", "units": m.unit},
    )  # fmt: skip
    points = {"value": (plan.values, "the point's parameter values"),
              "unit_value": (plan.design.unit, "the point in the design's unit cube")}  # fmt: skip
    for name, (v, what) in points.items():
        data[name] = xr.Variable(("sample", "parameter"), v, {"long_name": what})
    static = {"gdp": ("region", m.gdp), "cet1": ("bank", m.cet1), "rwa": ("bank", m.rwa)}
    for name, (dim, v) in static.items():
        data[name] = xr.Variable(dim, np.asarray(v, dtype=np.float64), {"units": m.unit})
    coords = {
        "sample": np.arange(n),
        "parameter": np.array([p.name for p in plan.parameters], dtype=object),
        "distribution": ("parameter", np.array([p.distribution.describe()
                                                for p in plan.parameters], dtype=object)),
        "level": levels, "probability": curve_probabilities(paths), **labels,
    }  # fmt: skip
    attrs = {
        "riskengine_study": __version__, "scenario_name": plan.scenario.name,
        "scenario_yaml": plan.scenario.source_text, "design": plan.design.method,
        "samples": plan.design.samples, "design_seed": plan.design.seed, "seed": seed,
        "paths": paths, "backend": backend, "units": m.unit,
        "horizon_months": m.horizon,
        "exposure": "per_path" if plan.exposure_per_path else "outer",
        "study_sha256": _identity(plan, paths, seed, levels, backend),
    }  # fmt: skip
    return xr.Dataset(data, coords=coords, attrs=attrs)


def run_points(source, make_model, finish, todo, n_points, paths, seed, backend, client, bp,
               on_point, progress):  # fmt: skip
    """Run the points ``todo`` of ``n_points``: blocks and point tasks on dask, a window of
    points at a time; ``on_point(i, finish(blocks))`` as each point finishes.

    Point ``i``'s model is ``make_model(source, i)`` (``source`` is handed to the tasks once,
    unhashed); its blocks are :func:`_point_block`'s per-path totals of paths ``0..paths-1``
    of ``seed`` (common random numbers), and ``finish`` turns them, in path order, into the
    point's result (a study's figures, a comparison's totals).
    """
    spans = _blocks(paths, bp)
    if progress is not None:
        progress.start(len(todo) * len(spans), len(todo) * paths, n_points * len(spans))
    # Points in flight: enough to keep every worker thread busy, and as many more as fit in
    # WINDOW_BYTES of their blocks' totals (168 B a path), so that the waves' ends, where
    # threads wait for the slowest point, are rare.
    busy = math.ceil(2 * _slots(client) / len(spans))
    window = max(2, busy, min(MAX_WINDOW, WINDOW_BYTES // (paths * TOTALS_BYTES)))
    if client is None:
        import dask
        from dask.callbacks import Callback

        shared = dask.delayed(source, traverse=False)
        for w0 in range(0, len(todo), window):
            wave = todo[w0 : w0 + window]
            tasks, sizes = [], {}
            for i in wave:
                # compiled in a task, beside other points' kernels (about 13 ms of Python each)
                model = dask.delayed(make_model, pure=False)(shared, i)
                blocks = []
                for p0, p1 in spans:
                    b = dask.delayed(_point_block, pure=False)(model, seed, p0, p1, backend)
                    sizes[b.key] = p1 - p0
                    blocks.append(b)
                tasks.append(dask.delayed(finish, pure=False)(blocks))

            def posttask(key, result, dsk, state, worker_id, sizes=sizes):
                if key in sizes and progress is not None:
                    progress.advance(sizes[key])

            with Callback(posttask=posttask):
                results = dask.compute(*tasks, scheduler="threads", num_workers=usable_cores())
            for i, r in zip(wave, results, strict=True):
                on_point(i, r)
        return

    from distributed import as_completed

    queue = list(todo)
    running = as_completed()
    index = {}
    pending: dict[str, list] = {}  # a running point's futures, cancelled on an error or Ctrl-C

    def submit():
        i = queue.pop(0)
        model = client.scatter(make_model(source, i))
        blocks = [client.submit(_point_block, model, seed, p0, p1, backend, pure=False)
                  for p0, p1 in spans]  # fmt: skip
        f = client.submit(finish, blocks, pure=False)
        pending[f.key] = [model, *blocks, f]
        index[f.key] = i
        running.add(f)

    try:
        for _ in range(min(window, len(queue))):
            submit()
        for f in running:
            on_point(index[f.key], f.result())
            del pending[f.key]  # its blocks' totals are dropped on the workers
            f.release()
            if progress is not None:
                for p0, p1 in spans:
                    progress.advance(p1 - p0)
            if queue:
                submit()
    finally:
        client.cancel([g for futures in pending.values() for g in futures])


class _Buffer:
    """Finished points held by the client and written to the store every FLUSH_SECONDS."""

    def __init__(self, store: Path | None):
        self.store, self.rows, self.last = store, {}, time.monotonic()

    def add(self, i: int, figures: dict) -> None:
        self.rows[i] = figures
        if self.store is not None and time.monotonic() - self.last > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.store is not None:
            write_points(self.store, self.rows)
            self.rows, self.last = {}, time.monotonic()


def study(
    scenario: Scenario | str | Path,
    samples: int,
    paths: int,
    seed: int = 0,
    store: str | Path | None = None,
    *,
    design_method: str = "sobol",
    levels: Sequence[float] = (0.95, 0.99, 0.995),
    backend: str = "cpu",
    client=None,
    block_paths: int | None = None,
    exposure: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    cubes: str | Path | None = None,
    cube_samples: Sequence[int] | None = None,
    cube_resolution: str = "year",
) -> xr.Dataset:
    """Run a study: the scenario at every point of a design, ``paths`` paths each.

    Parameters
    ----------
    scenario
        A scenario with distributions or groups (or with exposure uncertainty, for the outer
        exposure factors); a loaded one, a built-in name or a YAML path.
    samples
        Base samples of the design: ``N`` gives ``N (D + 2)`` points for Sobol (a power of 2),
        ``N (D + 1)`` for Morris, with D parameters.
    paths, seed
        Every point runs paths ``0..paths-1`` of ``seed`` (common random numbers); the design is
        scrambled with the same seed.
    store
        A zarr store for the results (STUDY.zarr); without it, they are returned in memory.
    design_method
        ``sobol`` (first-order and total indices) or ``morris`` (screening).
    levels
        VaR and ES levels of each point's figures (default: the report's).
    backend, client, block_paths
        As :func:`riskengine.simulate`; the blocks of every point are tasks of one dask job.
    exposure
        ``outer`` or ``per_path`` (default: the scenario's ``uncertainty.exposure``).
    resume, overwrite, progress
        As :func:`riskengine.simulate`: a resumed study runs only the points not done.
    cubes, cube_samples, cube_resolution
        Also write the full cube of the points ``cube_samples`` (default all) into
        ``cubes/sample-NNNNN.zarr`` at ``cube_resolution``: one more run per point.

    Returns
    -------
    xarray.Dataset
        Dims ``sample``, ``parameter``, ``level``, ``region``, ``bank``, ``probability``: per
        point the parameter values (``value``) and the figures ``{group}_{EL,VaR,ES}`` with
        standard errors (groups of :data:`FIGURE_GROUPS`) and ``total_curve``.

    Examples
    --------
    >>> ds = study("truce_collapse", samples=2, paths=20, design_method="morris")
    >>> [str(p) for p in ds.parameter.values[[0, -1]]]  # 10 judged ranges, 4 exposure factors
    ['tension.start', 'exposure.tariffs']
    >>> ds.sizes["sample"], ds.total_VaR.dims   # 2 trajectories of 14 + 1 points
    (30, ('sample', 'level'))
    """
    plan = plan_study(scenario, samples, design_method=design_method, seed=seed,
                      exposure=exposure)  # fmt: skip
    return run_plan(plan, paths, seed, store, levels=levels, backend=backend, client=client,
                    block_paths=block_paths, resume=resume, overwrite=overwrite,
                    progress=progress, cubes=cubes, cube_samples=cube_samples,
                    cube_resolution=cube_resolution)  # fmt: skip


def run_plan(
    plan: StudyPlan,
    paths: int,
    seed: int = 0,
    store: str | Path | None = None,
    *,
    levels: Sequence[float] = (0.95, 0.99, 0.995),
    backend: str = "cpu",
    client=None,
    block_paths: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    cubes: str | Path | None = None,
    cube_samples: Sequence[int] | None = None,
    cube_resolution: str = "year",
) -> xr.Dataset:
    """:func:`study` of a plan already drawn by :func:`plan_study` (the command line draws it
    once, for its header and its run). Parameters as :func:`study`."""
    _check_args(paths, seed, "horizon", backend, block_paths)
    lv = check_levels(levels)
    # A point's blocks need not cover every worker thread (other points run beside them):
    # blocks of about BLOCK_SECONDS of work, at least two a point (engine.default_block_paths
    # with one slot).
    bp = block_paths or default_block_paths(plan.nominal, paths, "horizon", backend, slots=1)
    if store is None:
        if resume or overwrite:
            raise RunError("resume and overwrite apply to a store; give store (--out) as well")
        ds = _template(plan, paths, seed, lv, backend, lazy=False)
        buffer = _Buffer(None)
        run_points(plan, point_model, partial(point_figures, levels=lv), list(range(plan.n_points)),
                   plan.n_points, paths, seed, backend, client, bp, buffer.add,
                   progress)  # fmt: skip
        for name in buffer.rows[0]:
            ds[name].values[...] = np.stack([buffer.rows[i][name] for i in range(plan.n_points)])
    else:
        path = Path(store).absolute()
        check_out(path, is_study, resume=resume, overwrite=overwrite, what="study")
        template = _template(plan, paths, seed, lv, backend, lazy=True)
        _check_backend(plan.nominal, seed, "horizon", backend, client)
        with claim_study(path, template, resume=resume, overwrite=overwrite) as done:
            buffer = _Buffer(path)
            todo = [int(i) for i in np.flatnonzero(~done)]
            try:
                run_points(plan, point_model, partial(point_figures, levels=lv), todo,
                           plan.n_points, paths, seed, backend, client, bp, buffer.add,
                           progress)  # fmt: skip
            finally:
                buffer.flush()  # what finished is kept for a resume, whatever stopped the run
        ds = open_study(path)
    if cubes is not None:
        _write_cubes(plan, cubes, cube_samples, paths, seed, backend, client, block_paths,
                     cube_resolution)  # fmt: skip
    return ds


def _write_cubes(plan, folder, samples, paths, seed, backend, client, block_paths, resolution):
    """The full cubes of some points, one run store each; a complete one is kept."""
    for i in range(plan.n_points) if samples is None else samples:
        if not 0 <= i < plan.n_points:
            raise RunError(f"cube sample {i}: the study has samples 0..{plan.n_points - 1}")
        target = Path(folder) / f"sample-{i:05d}.zarr"
        if is_store(target) and read_run(target).done.all():
            continue
        simulate(point_model(plan, i), paths, seed, store=target, backend=backend,
                 client=client, block_paths=block_paths, resolution=resolution,
                 resume=is_store(target))  # fmt: skip


def study_indices(
    ds: xr.Dataset, figures: Sequence[str] | None = None, seed: int = 0
) -> xr.Dataset:
    """Sensitivity indices of a study's figures: for each figure variable (default: every EL,
    VaR and ES), ``{figure}_S1``, ``{figure}_ST`` and their 95 % bootstrap half-widths
    (Sobol designs) or ``{figure}_mu_star`` (Morris), over ``parameter`` and the figure's own
    dims (region, bank, level).

    Examples
    --------
    >>> ds = study("truce_collapse", samples=2, paths=20)
    >>> ix = study_indices(ds, ["total_EL"])
    >>> ix.total_EL_ST.dims
    ('parameter',)
    """
    d = Design(ds.attrs["design"], tuple(ds["parameter"].values.tolist()),
               int(ds.attrs["samples"]), int(ds.attrs["design_seed"]),
               ds["unit_value"].values)  # fmt: skip
    names = figures or [n for n in ds.data_vars if n.endswith(("_EL", "_VaR", "_ES"))]
    out = {}
    for name in names:
        if name not in ds.data_vars or "sample" not in ds[name].dims:
            raise RunError(f"figure {name!r} is not in the study; give one of its variables")
        y = ds[name].transpose("sample", ...)
        other = y.dims[1:]
        stacked = y.values.reshape(y.shape[0], -1)
        parts = [indices(d, stacked[:, j], seed=seed) for j in range(stacked.shape[1])]
        for var in parts[0].data_vars:
            values = np.stack([p[var].values for p in parts], axis=-1)
            values = values.reshape(len(d.names), *y.shape[1:])
            out[f"{name}_{var}"] = xr.DataArray(
                values, dims=("parameter", *other),
                coords={"parameter": list(d.names), **{k: y[k].values for k in other}},
            )  # fmt: skip
    return xr.Dataset(out, attrs={"design": d.method, "samples": d.samples})
