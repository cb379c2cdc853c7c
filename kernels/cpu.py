"""The CPU block kernel: paths ``[p0, p1)`` into preallocated cube arrays, parallel over paths.

Paths are taken in chunks of :data:`CHUNK` (32); each chunk is one iteration of a ``numba.prange``
loop and runs start to end on one thread, as 32 lanes of :mod:`riskengine.kernels.step`: every
state array is (..., 32) with the paths on the last axis, so the per-path work (Philox,
Box-Muller, regimes, the credit term, the update of ``q``) runs as loops over 32 contiguous
lanes that the compiler vectorizes. The chunk's propagation ``M Q`` (float32, the expensive
part) and, at each period's end, its credit product are single BLAS products. Every chunk
computes all 32 lanes (a last, shorter chunk computes the next paths too and does not write
them), so every product has the same shape and a path's bits cannot depend on which chunk or
lane it falls in (``tests/test_kernels_cpu.py`` checks this for every split).

Time is summed into periods inside the kernel (float64 sums, written once per period), so a run
at a coarse resolution never holds monthly data.

Threads: numba's ``parallel=True`` inside dask's thread pool needs a thread-safe threading layer,
so this module selects ``threadsafe`` (OpenMP or TBB) unless the user chose one; the BLAS is kept
single-threaded while a kernel runs, so that numba's threads do not each start BLAS threads.

The kernel is cached on disk (``cache=True``). numba checks only this file's time stamp, so the
kernel closes over a digest of the sources it is built from (this file, step, rng, targets,
layout), which numba's cache key includes: a change in any of them rebuilds the kernel. The
kernel returns the digest and the launcher checks it, so a stale kernel could not go unnoticed.

This module imports numpy, numba, threadpoolctl and the kernels' own modules.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from riskengine.kernels import rng, step
from riskengine.kernels.layout import KernelModel
from riskengine.kernels.step import (
    direct_shock,
    init_lanes,
    month_step,
    period_losses,
    update_lanes,
    write_period,
)
from riskengine.kernels.targets import CPU_OPTIONS, compile_functions, rebind

__all__ = ["CHUNK", "chunk_state", "run_block_into"]

CHUNK = 32

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"


def _source_digest() -> str:
    here = Path(__file__).parent
    files = ("cpu.py", "step.py", "rng.py", "targets.py", "layout.py")
    return hashlib.sha256(b"".join((here / f).read_bytes() for f in files)).hexdigest()


@numba.njit(inline="always", **CPU_OPTIONS)
def chunk_state(km, lanes):
    """A chunk's arrays for :mod:`riskengine.kernels.step`, ``lanes`` paths on their last axis:
    ``g, on, sev, months_on, head, weights, z, scratch, e, d, q, mq, q_sum, dpd_sum, sev_sum,
    g_sum, credit_period, values``; ``q`` and the period sums start at 0.

    ``lanes`` is a run-time value on purpose: with a constant, LLVM unrolls the lane loops fully
    and then leaves them scalar instead of vectorizing them.
    """
    C, N = km.exposure.shape
    F = km.factor_loadings.shape[1]
    K = km.exposure_channel.shape[0]
    R = km.credit_scale.shape[0]
    return (
        np.empty(lanes),  # g
        np.empty((C, lanes)),  # on
        np.empty((C, lanes)),  # sev
        np.empty((C, lanes)),  # months_on
        np.empty((2 + C * F, lanes)),  # head
        np.empty((K, lanes)),  # weights
        np.empty((C + 2, lanes)),  # z
        np.empty((C, lanes)),  # scratch
        np.empty((C, lanes)),  # e
        np.empty((N, lanes)),  # d
        np.zeros((N, lanes), np.float32),  # q
        np.empty((N, lanes), np.float32),  # mq
        np.zeros((N, lanes)),  # q_sum
        np.zeros((N, lanes)),  # dpd_sum
        np.zeros((C, lanes)),  # sev_sum
        np.zeros(lanes),  # g_sum
        np.empty((R, lanes)),  # credit_period
        np.empty((N, lanes), np.float32),  # values
    )


def _make_block(digest: str):
    def block(km, k0, k1, p0, n_paths, lanes, period_of_month, loss, credit, severity, tension):
        T = period_of_month.shape[0]
        propagation = km.propagation
        credit_scale = km.credit_scale
        for chunk in numba.prange((n_paths + lanes - 1) // lanes):
            first = chunk * lanes
            rows = min(lanes, n_paths - first)
            path0 = p0 + first
            (g, on, sev, months_on, head, weights, z, scratch, e, d, q, mq, q_sum, dpd_sum,
             sev_sum, g_sum, credit_period, values) = chunk_state(km, lanes)  # fmt: skip
            init_lanes(km, k0, k1, path0, g, on, sev, months_on, head, weights)
            for t in range(T):
                month_step(
                    km, k0, k1, path0, t, g, on, sev, months_on, z, scratch, e, g_sum, sev_sum
                )
                direct_shock(km, weights, e, d)
                np.dot(propagation, q, mq)
                update_lanes(km, q, mq, d, q_sum, dpd_sum)
                if t == T - 1 or period_of_month[t + 1] != period_of_month[t]:
                    period = period_of_month[t]
                    np.dot(credit_scale, dpd_sum, credit_period)
                    period_losses(km, q_sum, values)
                    for i in range(rows):
                        write_period(
                            i, first + i, period, values, sev_sum, g_sum, credit_period,
                            loss, severity, credit, tension,
                        )  # fmt: skip
                    q_sum[:] = 0.0
                    dpd_sum[:] = 0.0
                    sev_sum[:] = 0.0
                    g_sum[:] = 0.0
        return digest

    return block


_lock = threading.Lock()
_kernel = None
_digest = ""
_blas_users = 0
_blas_limits = None


def _compiled_kernel():
    global _kernel, _digest
    with _lock:
        if _kernel is None:
            _digest = _source_digest()
            functions = compile_functions(step.FUNCTIONS, "cpu", out_of_line=step.OUT_OF_LINE)
            _kernel = numba.njit(parallel=True, cache=True, **CPU_OPTIONS)(
                rebind(_make_block(_digest), functions)
            )
        return _kernel


class _SingleThreadedBlas:
    """Keep the BLAS at one thread while any kernel of this process runs (counted, so that
    kernels running at once in several threads do not restore the limits under each other)."""

    def __enter__(self) -> None:
        global _blas_users, _blas_limits
        with _lock:
            if _blas_users == 0:
                _blas_limits = threadpool_limits(1, user_api="blas")
            _blas_users += 1

    def __exit__(self, *exc) -> None:
        global _blas_users, _blas_limits
        with _lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limits.restore_original_limits()
                _blas_limits = None


def run_block_into(
    km: KernelModel,
    seed: int,
    p0: int,
    p1: int,
    period_of_month: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    """Compute paths ``[p0, p1)`` into ``out`` (arrays checked by the caller, see backends).

    The first call in a process compiles the kernel (about 40 s) or loads it from numba's
    cache (under a second).
    """
    k0, k1 = rng.split_seed(seed)
    kernel = _compiled_kernel()
    with _SingleThreadedBlas():
        built_from = kernel(
            km,
            k0,
            k1,
            p0,
            p1 - p0,
            CHUNK,
            period_of_month,
            out["loss"],
            out["credit_loss"],
            out["severity"],
            out["tension"],
        )
    if built_from != _digest:
        raise RuntimeError(
            "the CPU kernel loaded from numba's cache was built from other sources; "
            "delete the kernels' __pycache__ folder"
        )
    out["weight"][:] = 1.0
