"""What the benchmarks and ``roofline.py`` measure: the floor's three machine rates and the
project's achieved rates, each as a prepared piece of :class:`Work`, and the floor itself.

One piece of code per measurement: ``test_kernels.py``, ``test_engine_throughput.py`` and
``test_scaling.py`` hand ``Work.run`` to pytest-benchmark, ``roofline.py`` times the same
``Work.run`` with :func:`best_seconds`, and both call ``Work.check``, which asserts that the work
computed what it should (a benchmark of wrong work is no benchmark).

The floor of one path-month, on all cores (docs/performance.md)::

    floor = 2 x 2 N^2 / (batched float32 N x N matrix-product rate through BLAS)
          + (normals drawn per path-month) x (time per raw Philox4x32-10 32-bit word)
          + (bytes written per path-month) / (memory write rate)

This module imports numpy, numba, threadpoolctl, dask.distributed (lazily) and riskengine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import riskengine as rk
from riskengine.backends import block_arrays, run_block_into
from riskengine.compile import CompiledModel
from riskengine.kernels import rng
from riskengine.kernels.targets import compile_functions
from riskengine.reference import simulate_block
from riskengine.schema import estimated_bytes, periods

SEED = 1
# Paths per BLAS call of the floor's product: the fastest shape tried on an 84 x 84 matrix here
# (M Q with 32 or 64 lanes, Q M^T with 32 or 64 rows; docs/performance.md), a batch the kernel
# could use, small enough for the L2 cache.
FLOOR_BATCH = 64
# Products of an N x N operator by a path's state each month: W a (supply) and D b (demand),
# docs/model.md section 6.
PRODUCTS_PER_MONTH = 2


@dataclass(frozen=True)
class Work:
    """``run()`` does ``count`` units (``unit``) of work; ``check()`` asserts its result."""

    run: Callable[[], Any]
    count: float
    unit: str
    check: Callable[[], None]


def default_model() -> CompiledModel:
    """The default economy: truce_collapse, 84 nodes, 4 channels, 60 months."""
    return rk.compile_model(rk.load_scenario("truce_collapse"))


def best_seconds(work: Work, rounds: int) -> tuple[float, float]:
    """Wall and process CPU seconds (all threads) of the fastest of ``rounds`` timed calls of
    ``work.run``, after one untimed warm-up call."""
    return interleaved_best_seconds([work], rounds)[0]


def interleaved_best_seconds(works: list[Work], rounds: int) -> list[tuple[float, float]]:
    """:func:`best_seconds` of several pieces of work timed in turn, round after round, so that
    a spell of contention on a shared machine falls on all of them alike."""
    for work in works:
        work.run()
    times: list[list[tuple[float, float]]] = [[] for _ in works]
    for _ in range(rounds):
        for work, kept in zip(works, times, strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            work.run()
            kept.append((time.perf_counter() - wall, time.process_time() - cpu))
    for work in works:
        work.check()
    return [min(kept) for kept in times]


# --- the floor's three rates, each on all of numba's threads -----------------------------------


@numba.njit(parallel=True, cache=True)
def _batched_products(operators, q, mq, months):
    for batch in numba.prange(q.shape[1]):
        for _ in range(months):
            for k in range(operators.shape[0]):
                np.dot(operators[k], q[k, batch], mq[k, batch])


def propagation(model: CompiledModel, paths: int) -> Work:
    """``paths x T`` products of each N x N operator (``W`` and ``D``) by a path's float32
    state, as ``W A`` and ``D B`` on batches of :data:`FLOOR_BATCH` paths (N x FLOOR_BATCH,
    paths on the last axis as in the kernel) through single-threaded BLAS, one batch per
    thread."""
    a = model.arrays
    operators = np.ascontiguousarray([a.supply_matrix, a.demand_matrix], dtype=np.float32)
    n = operators.shape[1]
    batches = paths // FLOOR_BATCH
    q = np.random.default_rng(0).random((2, batches, n, FLOOR_BATCH), np.float32)
    mq = np.empty_like(q)

    def run() -> None:
        with threadpool_limits(1, user_api="blas"):
            _batched_products(operators, q, mq, model.horizon)

    def check() -> None:
        for k in range(2):
            np.testing.assert_allclose(mq[k], np.matmul(operators[k], q[k]), rtol=1e-4)

    flop = 2.0 * n**2 * PRODUCTS_PER_MONTH * batches * FLOOR_BATCH * model.horizon
    return Work(run, flop, "flop", check)


_philox = compile_functions([rng.philox_round, rng.philox4x32], "cpu")["philox4x32"]


@numba.njit(parallel=True)
def _raw_words(k0, k1, total, calls):
    for p in numba.prange(total.shape[0]):
        acc = np.uint64(0)
        for call in range(calls):
            w0, w1, w2, w3 = _philox(
                np.uint64(p), np.uint64(0), np.uint64(1), np.uint64(call), k0, k1
            )
            acc ^= w0 ^ w1 ^ w2 ^ w3
        total[p] = acc


def philox_words(paths: int, calls: int) -> Work:
    """Raw Philox4x32-10 words (four a call, ``calls`` calls for each of ``paths`` counters)."""
    k0, k1 = rng.split_seed(SEED)
    total = np.zeros(paths, np.uint64)

    def check() -> None:
        assert np.unique(total).size == paths, "distinct counters gave equal words"

    return Work(lambda: _raw_words(k0, k1, total, calls), 4.0 * paths * calls, "word", check)


@numba.njit(parallel=True, cache=True)
def _fill(flat, value):
    step = 1 << 16
    for j in numba.prange((flat.size + step - 1) // step):
        flat[j * step : min(flat.size, (j + 1) * step)] = value


def memory_write(model: CompiledModel, paths: int) -> Work:
    """Writing a reused float32 buffer the size of a monthly block of ``paths`` paths (the
    kernel's largest output) once, in one parallel loop."""
    size = estimated_bytes(model, paths, "month") // 4
    buffer = np.zeros(size, np.float32)

    def check() -> None:
        assert np.all(buffer == 1.0)

    return Work(lambda: _fill(buffer, 1.0), 4.0 * size, "byte", check)


def normals_per_path_month(model: CompiledModel) -> float:
    """What the kernel draws: every monthly slot (tension, C innovations, C severities: ``1 +
    2C``) each month, and the per-path slots of month 0 spread over the ``T`` months."""
    C, N = model.arrays.exposure.shape
    F = model.arrays.factor_loadings.shape[1]
    return rng.monthly_slots(C) + rng.path_slots(C, F, N) / model.horizon


def bytes_per_path_month(model: CompiledModel, resolution: str) -> float:
    """The cube's bytes per path (every variable, the weight included) over the ``T`` months."""
    return estimated_bytes(model, 1, resolution) / model.horizon


@dataclass(frozen=True)
class Floor:
    """The floor of one path-month in ns, by part, on all cores."""

    propagation_ns: float
    random_ns: float
    write_ns: float

    @property
    def total_ns(self) -> float:
        return self.propagation_ns + self.random_ns + self.write_ns


def floor(
    model: CompiledModel,
    resolution: str,
    flop_per_s: float,
    s_per_word: float,
    byte_per_s: float,
) -> Floor:
    """The floor of one path-month of ``model`` at ``resolution`` from the three measured rates."""
    n = model.arrays.supply_matrix.shape[0]
    return Floor(
        propagation_ns=PRODUCTS_PER_MONTH * 2e9 * n * n / flop_per_s,
        random_ns=1e9 * normals_per_path_month(model) * s_per_word,
        write_ns=1e9 * bytes_per_path_month(model, resolution) / byte_per_s,
    )


# --- the project's achieved rates ---------------------------------------------------------------


def kernel(model: CompiledModel, paths: int, resolution: str = "month", backend: str = "cpu"):
    """A kernel (``cpu``: on all of numba's threads) into reused outputs, as the engine reuses
    them."""
    period_of_month, starts = periods(model.start, model.horizon, resolution)
    out = block_arrays(model, paths, len(starts))

    months = np.bincount(period_of_month)[None, :, None, None]
    bound = months * model.arrays.loss_scale.reshape(len(model.regions), -1).T  # |q| <= 1

    def check() -> None:
        loss = out["loss"]
        assert np.all(np.isfinite(loss)) and np.all(np.abs(loss) <= bound * (1 + 1e-6))
        assert loss.sum() > 0.0 and np.all(out["weight"] == 1.0)

    return Work(
        lambda: run_block_into(model, SEED, 0, paths, period_of_month, out, backend),
        float(paths * model.horizon),
        "path-month",
        check,
    )


def reference(model: CompiledModel, paths: int) -> Work:
    """The numpy reference (vectorized over paths) on the same kind of work, monthly."""
    shapes = []

    def run() -> None:
        shapes.append(simulate_block(model, SEED, 0, paths, "month")["loss"].shape)

    def check() -> None:
        assert shapes[-1][:2] == (paths, model.horizon)

    return Work(run, float(paths * model.horizon), "path-month", check)


def peer(model: CompiledModel, paths: int, name: str) -> Work:
    """An independent implementation of the model, ``benchmarks/peers/{name}_peer.py`` (numpy,
    jax), simulating ``paths`` paths to their horizon totals in memory, on every core."""
    import importlib

    module = importlib.import_module(f"peers.{name}_peer")
    results = []

    def run() -> None:
        results[:] = [module.simulate(model, paths, SEED)]

    def check() -> None:
        loss, credit = results[0]
        assert loss.shape == (paths, model.arrays.loss_scale.size) and np.isfinite(loss).all()
        assert credit.shape[0] == paths and loss.sum() > 0.0

    return Work(run, float(paths * model.horizon), "path-month", check)


def engine(
    model: CompiledModel,
    paths: int,
    store: Path,
    resolution: str,
    client=None,
    block_paths: int | None = None,
) -> Work:
    """``riskengine.simulate`` end to end into a zarr store (replaced on every call): the local
    threaded scheduler on every core, or ``client``'s cluster."""

    def run() -> None:
        rk.simulate(model, paths, SEED, store=store, client=client, block_paths=block_paths,
                    resolution=resolution, overwrite=True)  # fmt: skip

    def check() -> None:
        ds = rk.open_run(store)
        assert ds.sizes["path"] == paths and ds.attrs["resolution"] == resolution
        assert float(ds.weight.sum()) == paths

    return Work(run, float(paths * model.horizon), "path-month", check)


def study(samples: int, paths: int, store: Path, client=None) -> Work:
    """``riskengine.study`` of ``truce_collapse`` end to end into a study store (replaced on every
    call): ``samples`` base samples of its Sobol design (16 (D + 2) points), ``paths`` paths at
    every point, on the local threaded scheduler or ``client``'s cluster."""
    from riskengine.studies import plan_study

    points = plan_study("truce_collapse", samples, seed=SEED).n_points
    horizon = default_model().horizon

    def run() -> None:
        rk.study("truce_collapse", samples, paths, SEED, store=store, client=client,
                 overwrite=True)  # fmt: skip

    def check() -> None:
        ds = rk.open_study(store)
        assert ds.sizes["sample"] == points and ds.attrs["paths"] == paths
        assert bool(ds.total_EL.notnull().all())

    return Work(run, float(points * paths * horizon), "path-month", check)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder for stores, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def local_cluster(n_workers: int, model: CompiledModel) -> Iterator[Any]:
    """A client of ``n_workers`` single-threaded worker processes on 127.0.0.1 (what ``riskengine
    run --workers`` starts), every worker's kernel loaded before the client is handed out."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,  # fmt: skip
        Client(cluster) as client,
    ):
        rk.simulate(model, 2 * n_workers, SEED, client=client, resolution="horizon")
        yield client


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


ANALYSES = ("table", "summary", "report")


def analysis(store: Path, what: str, out: Path) -> Work:
    """The analysis of a run's store, streamed: ``table`` (the risk table after a run, from the
    run's per-path summaries), ``summary`` (``risk_summary`` of every group at three levels,
    from the cube) or ``report`` (``write_report`` into ``out``: every figure)."""
    from riskengine.formatting import risk_table
    from riskengine.report import write_report

    ds = rk.open_run(store)
    paths = ds.sizes["path"]
    result: list = []

    def run() -> None:
        if what == "table":
            result.append(risk_table(ds, (0.99,)))
        elif what == "summary":
            result.append(rk.risk_summary(ds, (0.95, 0.99, 0.995)))
        else:
            result.append(write_report(ds, out, (0.95, 0.99, 0.995)))

    def check() -> None:
        last = result[-1]
        if what == "table":
            assert len(last.rows) == ds.sizes["region"] + 1
        elif what == "summary":
            assert bool((last.total_ES >= last.total_VaR).all())
            assert last.attrs["paths"] == paths
        else:
            assert last.html.stat().st_size > 0 and len(last.figures) == 5

    return Work(run, float(paths), "path", check)
