"""The CPU block kernel: paths ``[p0, p1)`` into preallocated cube arrays, parallel over paths.

Paths are taken in chunks of :data:`CHUNK` (32: faster here than 64 or 128, the chunk's state
stays in cache); each chunk is one iteration of a ``numba.prange`` loop
and runs start to end on one thread. Within a chunk, the per-path logic of
:mod:`riskengine.kernels.step` runs path by path, and the two matrix products run for the whole
chunk at once through BLAS: the propagation ``Q M^T`` (float32, the expensive part, at the
machine's matrix-product rate) and, at each period's end, the credit product. Every product has
the same shape, ``(CHUNK, N)`` (a last, shorter chunk is padded with zero rows), so that a path's
bits cannot depend on which chunk it falls in: with one shape, the BLAS computes each row the same
way wherever it sits (``tests/test_kernels_cpu.py`` checks this for every split).

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
    init_path,
    month_step,
    update_path,
    write_period,
)
from riskengine.kernels.targets import CPU_OPTIONS, compile_functions, rebind

__all__ = ["CHUNK", "run_block_into"]

CHUNK = 32

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"


def _source_digest() -> str:
    here = Path(__file__).parent
    files = ("cpu.py", "step.py", "rng.py", "targets.py", "layout.py")
    return hashlib.sha256(b"".join((here / f).read_bytes() for f in files)).hexdigest()


def _make_block(digest: str):
    def block(km, k0, k1, p0, n_paths, period_of_month, loss, credit, severity, tension):
        C, N = km.exposure.shape
        F = km.factor_loadings.shape[1]
        R = km.credit_scale.shape[0]
        T = period_of_month.shape[0]
        credit_scale_t = np.ascontiguousarray(km.credit_scale.T)
        for chunk in numba.prange((n_paths + CHUNK - 1) // CHUNK):
            first = chunk * CHUNK
            rows = min(CHUNK, n_paths - first)
            on = np.zeros((CHUNK, C), np.bool_)
            sev = np.zeros((CHUNK, C))
            months_on = np.zeros((CHUNK, C), np.int64)
            weights = np.zeros((CHUNK, C, N), np.float32)
            zf = np.empty((C, F))
            zc = np.empty(C)
            e = np.zeros((CHUNK, C))
            d = np.zeros((CHUNK, N))
            g = np.zeros(CHUNK)
            # q's padding rows stay 0, so that every product has the shape (CHUNK, N)
            q = np.zeros((CHUNK, N), np.float32)
            mq = np.empty((CHUNK, N), np.float32)
            q_sum = np.zeros((CHUNK, N))
            dpd_sum = np.zeros((CHUNK, N))
            sev_sum = np.zeros((CHUNK, C))
            g_sum = np.zeros(CHUNK)
            credit_period = np.empty((CHUNK, R))
            for i in range(rows):
                path = p0 + first + i
                g[i] = init_path(km, k0, k1, path, on[i], sev[i], months_on[i], weights[i], zf)
            for t in range(T):
                for i in range(rows):
                    path = p0 + first + i
                    g[i] = month_step(
                        km, k0, k1, path, t, g[i], on[i], sev[i], months_on[i], zc, e[i]
                    )
                    direct_shock(km, weights[i], e[i], d[i])
                np.dot(q, km.propagation_t, mq)
                for i in range(rows):
                    update_path(km, q[i], mq[i], d[i], q_sum[i], dpd_sum[i])
                    sev_sum[i] += e[i]
                    g_sum[i] += g[i]
                if t == T - 1 or period_of_month[t + 1] != period_of_month[t]:
                    period = period_of_month[t]
                    np.dot(dpd_sum, credit_scale_t, credit_period)
                    dpd_sum[:] = 0.0
                    for i in range(rows):
                        row = first + i
                        write_period(
                            km, q_sum[i], sev_sum[i], loss[row, period], severity[row, period]
                        )
                        credit[row, period] = credit_period[i]
                        tension[row, period] = g_sum[i]
                        g_sum[i] = 0.0
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

    The first call in a process compiles the kernel (several seconds) or loads it from numba's
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
