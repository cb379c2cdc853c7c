"""Kernel throughput in path-months per second, the reference on the same kind of work, and the
machine's floor for it (the three rates of docs/performance.md).

    python -m pytest benchmarks/test_kernels.py --benchmark-enable --benchmark-columns=min,median

Rates are in each benchmark's ``extra_info`` (count and count per second at the fastest round).
"""

from __future__ import annotations

import measures
import numba
import pytest

pytestmark = pytest.mark.benchmark(group="kernels")


def test_cpu_kernel(measure, model, size):
    """The CPU kernel at monthly resolution on every numba thread."""
    measure(measures.kernel(model, size(4096, 64)), threads=numba.get_num_threads())


def test_cuda_kernel(measure, model, size):
    """The CUDA kernel (where a GPU exists), copies to and from the device included."""
    cuda = pytest.importorskip("riskengine.kernels.cuda", reason="numba's CUDA support")
    if not cuda.available():
        pytest.skip("no CUDA device")
    measure(measures.kernel(model, size(1_000_000, 64), backend="cuda"))


def test_reference(measure, model, size):
    """The numpy reference (vectorized over paths; numpy's BLAS threads) on monthly paths."""
    measure(measures.reference(model, size(256, 8)))


def test_floor_propagation(measure, model, size):
    """Floor, part 1: the batched float32 N x N product through BLAS on every thread."""
    measure(measures.propagation(model, size(4096, 128)), threads=numba.get_num_threads())


def test_floor_philox_words(measure, size):
    """Floor, part 2: raw Philox4x32-10 words on every thread."""
    measure(measures.philox_words(4096, size(4096, 16)), threads=numba.get_num_threads())


def test_floor_memory_write(measure, model, size):
    """Floor, part 3: writing a reused buffer of a monthly block's size on every thread."""
    measure(measures.memory_write(model, size(4096, 64)), threads=numba.get_num_threads())
