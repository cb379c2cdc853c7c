"""Kernel throughput in path-months per second, and the machine's floor for the same work.

    python -m pytest benchmarks/test_kernels.py --benchmark-enable --benchmark-columns=min,mean

Each benchmark stores ``path_months`` (or ``words`` / ``bytes``) in its ``extra_info``, so a rate
is that count divided by the time. CI runs this file with benchmarks disabled (the project's
default), which runs every function once as a smoke test. docs/performance.md explains the floor:

    floor per path-month = 2 N^2 / (batched float32 N x N product rate)
                         + (normals per path-month) x (time per raw Philox 32-bit word)
                         + (bytes written per path-month) / (memory write rate)
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import riskengine as rk
from riskengine.backends import block_arrays, run_block_into
from riskengine.kernels import rng, step
from riskengine.kernels.cpu import CHUNK
from riskengine.kernels.targets import compile_functions
from riskengine.reference import simulate_block
from riskengine.store import periods

KERNEL_PATHS = 4096
REFERENCE_PATHS = 256
SEED = 1


@pytest.fixture(scope="module")
def model():
    """The default economy: 84 nodes, 4 channels, 60 months."""
    return rk.compile_model(rk.load_scenario("truce_collapse"))


def test_cpu_kernel(benchmark, model):
    period_of_month, starts = periods(model.start, model.horizon, "month")
    out = block_arrays(model, KERNEL_PATHS, len(starts))
    run_block_into(model, SEED, 0, CHUNK, period_of_month, block_arrays(model, CHUNK, 60))
    benchmark.extra_info["path_months"] = KERNEL_PATHS * model.horizon
    benchmark.extra_info["threads"] = numba.get_num_threads()
    benchmark(run_block_into, model, SEED, 0, KERNEL_PATHS, period_of_month, out)
    assert np.all(np.isfinite(out["loss"])) and np.all(out["loss"] >= 0.0)


def test_reference(benchmark, model):
    benchmark.extra_info["path_months"] = REFERENCE_PATHS * model.horizon
    out = benchmark(simulate_block, model, SEED, 0, REFERENCE_PATHS, "month")
    assert out["loss"].shape[0] == REFERENCE_PATHS


@numba.njit(parallel=True, cache=True)
def _batched_products(q, propagation_t, mq, months):
    for chunk in numba.prange(q.shape[0] // CHUNK):
        rows = slice(chunk * CHUNK, (chunk + 1) * CHUNK)
        for _ in range(months):
            np.dot(q[rows], propagation_t, mq[rows])


def test_floor_propagation(benchmark, model):
    """The batched float32 N x N product, in the kernel's chunks, on all threads."""
    from riskengine.kernels.cpu import _SingleThreadedBlas

    m = model.arrays.propagation
    propagation_t = np.ascontiguousarray(m.T, dtype=np.float32)
    q = np.random.default_rng(0).random((KERNEL_PATHS, m.shape[0]), dtype=np.float32)
    mq = np.empty_like(q)
    benchmark.extra_info["path_months"] = KERNEL_PATHS * model.horizon
    benchmark.extra_info["flop_per_path_month"] = 2 * m.shape[0] ** 2
    with _SingleThreadedBlas():
        _batched_products(q, propagation_t, mq, 1)
        benchmark(_batched_products, q, propagation_t, mq, model.horizon)
    np.testing.assert_allclose(mq, q @ propagation_t, rtol=1e-4)


_philox = compile_functions(step.FUNCTIONS[:2], "cpu")["philox4x32"]


@numba.njit(parallel=True)
def _raw_words(k0, k1, paths, calls):
    total = np.zeros(paths, np.uint64)
    for p in numba.prange(paths):
        acc = np.uint64(0)
        for call in range(calls):
            w0, w1, w2, w3 = _philox(
                np.uint64(p), np.uint64(0), np.uint64(1), np.uint64(call), k0, k1
            )
            acc ^= w0 ^ w1 ^ w2 ^ w3
        total[p] = acc
    return total


def test_floor_philox_words(benchmark):
    """Raw Philox4x32-10 words on all threads (four words a call)."""
    k0, k1 = rng.split_seed(SEED)
    paths, calls = 4096, 4096
    _raw_words(k0, k1, 8, 1)
    benchmark.extra_info["words"] = 4 * paths * calls
    total = benchmark(_raw_words, k0, k1, paths, calls)
    assert np.unique(total).size == paths


def test_floor_memory_write(benchmark, model):
    """Writing a reused monthly float32 block (the kernel's output size) once."""
    out = block_arrays(model, KERNEL_PATHS, model.horizon)
    total = sum(v.nbytes for v in out.values())
    benchmark.extra_info["bytes"] = total
    benchmark.extra_info["bytes_per_path_month"] = total / (KERNEL_PATHS * model.horizon)

    def write():
        for values in out.values():
            values.fill(1.0)

    benchmark(write)
    assert np.all(out["loss"] == 1.0)
