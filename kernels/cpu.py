"""The CPU block kernel: paths ``[p0, p1)`` into preallocated cube arrays, parallel over paths.

Paths are taken in chunks of :data:`CHUNK` (32) lanes, 16 chunks to a group (below); each group
is one iteration of a ``numba.prange`` loop, and each of its chunks runs
:func:`riskengine.kernels.step.simulate_lanes` (the month loop all targets share) start to end
on that thread: every state array is (..., 32) with the paths on the
last axis, so the per-path work (Philox, Box-Muller, regimes, the update of ``q``) runs as loops
over 32 contiguous lanes that the compiler vectorizes. This target supplies only its products:
the chunk's two propagations ``W A`` and ``D B`` (float32, the expensive part) are single BLAS
calls (:func:`_blas_propagate`).

**Chunks are formed within groups aligned on global path indices**: group ``g`` holds paths
``512 g .. 512 g + 511`` (:data:`GROUP_CHUNKS` chunks), whatever the block. The group's paths are
first scouted (:func:`first_shocks`: the regimes alone, for the paths still waiting for their
first shock) and sorted, stably, by the
month of their first shock; chunk ``j`` of the group takes the sorted paths ``32 j .. 32 j +
31``. Paths still without a shock then share chunks, and a chunk skips its shocks, products and
state update until its first shock (``simulate_lanes``; exact, to the bit). A block computes the
chunks of its groups that hold at least one of its paths, and writes only its own. A BLAS
product's bits for one column can depend on the column's position in the matrix (OpenBLAS's
Haswell kernels do), never on the other columns' values; a path's chunk and lane depend only on
its group, so a path's bits cannot depend on the block or the thread it falls in
(``tests/test_kernels_cpu.py`` checks every split, and that skipping changes no bit).

Time is summed into periods inside the kernel (float64 sums, written once per period), so a run
at a coarse resolution never holds monthly data.

Threads: numba's ``parallel=True`` inside dask's thread pool needs a thread-safe threading layer,
which :mod:`riskengine.kernels.targets` selects (``threadsafe``: OpenMP or TBB) unless the user
chose one, for this kernel and the credit stage alike; the BLAS is kept
single-threaded while a kernel runs, so that numba's threads do not each start BLAS threads.

The compiled kernel is cached on disk in the user's cache folder
(:func:`riskengine.kernels.targets.kernel_cache_dir`), never inside the installed package. numba
checks only this file's contents, so the kernel closes over a digest of the sources it is built
from (this file, step, rng, targets, layout), which numba's cache key includes: a change in any of
them rebuilds the kernel. The kernel returns the digest and the launcher checks it, so a stale
kernel could not go unnoticed.

This module imports numpy, numba, threadpoolctl and the kernels' own modules.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from riskengine.kernels import rng, step
from riskengine.kernels.layout import KernelModel
from riskengine.kernels.step import init_lanes, month_step, simulate_lanes
from riskengine.kernels.targets import (
    CPU_OPTIONS,
    cached,
    compile_functions,
    kernel_cache_dir,
    rebind,
)

__all__ = [
    "CHUNK",
    "GROUP_CHUNKS",
    "chunk_state",
    "compiled_steps",
    "first_shocks",
    "run_block_into",
]

CHUNK = 32
GROUP_CHUNKS = 16


def _source_digest() -> str:
    here = Path(__file__).parent
    files = ("cpu.py", "step.py", "rng.py", "targets.py", "layout.py")
    return hashlib.sha256(b"".join((here / f).read_bytes() for f in files)).hexdigest()


@numba.njit(inline="always", **CPU_OPTIONS)
def chunk_state(km, lanes):
    """A chunk's state for :func:`riskengine.kernels.step.simulate_lanes`, ``lanes`` paths on
    their last axis, in the order of :data:`riskengine.kernels.step.STATE` (uninitialized:
    ``simulate_lanes`` sets what it reads).

    ``lanes`` is a run-time value on purpose: with a constant, LLVM unrolls the lane loops fully
    and then leaves them scalar instead of vectorizing them.
    """
    C, N = km.exposure.shape
    F = km.factor_loadings.shape[1]
    K = km.exposure_channel.shape[0]
    R = km.n_regions
    return (
        np.empty(lanes),  # g
        np.empty((C, lanes)),  # on
        np.empty((C, lanes)),  # severity
        np.empty((C, lanes)),  # months_on
        np.empty((2 + C * F, lanes)),  # head
        np.empty((K, lanes)),  # weights
        np.empty((C + 2, lanes)),  # z
        np.empty((C, lanes)),  # scratch
        np.empty((C, lanes)),  # e
        np.empty((N, lanes)),  # supply
        np.empty((N, lanes)),  # demand
        np.empty((K, lanes)),  # stock
        np.empty((N, lanes), np.float32),  # a
        np.empty((N, lanes), np.float32),  # b
        np.empty((N, lanes), np.float32),  # ma
        np.empty((N, lanes), np.float32),  # mb
        np.empty((N, lanes)),  # q_sum
        np.empty((N, lanes)),  # year_sum
        np.empty((C, lanes)),  # sev_sum
        np.empty(lanes),  # g_sum
        np.empty((N, lanes), np.float32),  # values
        np.empty((R, lanes)),  # loss_sum
        np.empty((R, lanes)),  # va_sum
        np.empty(lanes),  # log_weight
    )


def first_shocks(km, k0, k1, paths, months, first):
    """``first[i]``: the first month (0-based) in which a channel of path ``paths[i]`` has a
    nonzero effective severity, or ``months`` if none has in months ``0 .. months - 1``.

    The scout by which the kernel sorts a group's paths: the regimes alone
    (:func:`riskengine.kernels.step.init_lanes` and ``month_step``, the numbers of
    ``simulate_lanes``), each month for the paths still waiting for their shock only (their
    lanes' state is compacted whenever some have had it), stopping when none waits. Its cost is
    about that of ``month_step`` over the quiet path-months. Its results only order the paths;
    what the kernel skips it checks itself (``simulate_lanes``).
    """
    C, F = km.exposure.shape[0], km.factor_loadings.shape[1]
    n = paths.shape[0]
    lane = np.arange(n)  # the original lane of each compacted lane
    live = paths.copy()
    g, on, sev, months_on = np.empty(n), np.empty((C, n)), np.empty((C, n)), np.empty((C, n))
    log_weight = np.empty(n)
    init_lanes(km, k0, k1, live, g, on, sev, months_on, np.empty((2 + C * F, n)), log_weight)
    # Work space: month_step's lanes are g's; z's width is the draws' (set at each compaction).
    z, scratch, e = np.empty((C + 2, n)), np.empty((C, n)), np.empty((C, n))
    g_sum, sev_sum = np.zeros(n), np.zeros((C, n))
    first[:] = months
    for t in range(months):
        month_step(
            km, k0, k1, live, t, g, on, sev, months_on, z, scratch, e, g_sum, sev_sum, log_weight
        )  # fmt: skip
        waiting = np.ones(n, np.bool_)
        for i in range(n):
            for c in range(C):
                if e[c, i] != 0.0:
                    first[lane[i]] = t
                    waiting[i] = False
                    break
        keep = np.nonzero(waiting)[0]
        if keep.shape[0] == n:
            continue
        n = keep.shape[0]
        if n == 0:
            break
        lane, live, g, log_weight = lane[keep], live[keep], g[keep], log_weight[keep]
        on, sev, months_on = on[:, keep].copy(), sev[:, keep].copy(), months_on[:, keep].copy()
        z = np.empty((C + 2, n))


def _blas_propagate(propagation, q, mq):
    """``mq = M q`` for a chunk: one float32 BLAS product (step.propagate on the CPU)."""
    np.dot(propagation, q, mq)


_lock = threading.Lock()
_steps: dict | None = None
_kernel = None
_digest = ""
_blas_users = 0
_blas_limits = None


def compiled_steps() -> dict:
    """The step functions as this kernel compiles them (BLAS products in place of the loops),
    by name; ``benchmarks/kernel_profile.py`` times these very functions."""
    global _steps
    with _lock:
        if _steps is None:
            _steps = compile_functions(
                step.FUNCTIONS,
                "cpu",
                out_of_line=step.OUT_OF_LINE,
                replace={"propagate": _blas_propagate},
            )
            _steps["first_shocks"] = numba.njit(**CPU_OPTIONS)(rebind(first_shocks, _steps))
            _steps["run_group"] = numba.njit(**CPU_OPTIONS)(rebind(run_group, _steps))
        return _steps


def run_group(km, k0, k1, group_paths, p0, n_paths, lanes, period_of_month, cube, skip_quiet):
    """One group of paths (``group_paths``, globally aligned): scout, sort, and run each chunk
    that holds one of the block's paths ``[p0, p0 + n_paths)``; returns the chunk-months skipped
    and run. A function of its own, called from the kernel's parallel loop: numba's parallel
    pass on a loop body this large took minutes to compile."""
    T = period_of_month.shape[0]
    size = group_paths.shape[0]
    first = np.empty(size, np.int64)
    first_shocks(km, k0, k1, group_paths, T, first)
    order = group_paths[np.argsort(first, kind="mergesort")]
    state = chunk_state(km, lanes)
    skipped = 0
    computed = 0
    for chunk in range(size // lanes):
        paths = order[chunk * lanes : (chunk + 1) * lanes].copy()
        rows = paths - p0
        if np.all((rows < 0) | (rows >= n_paths)):
            continue  # none of the block's paths: nothing to write
        skipped += simulate_lanes(
            km, k0, k1, paths, p0, n_paths, period_of_month, km.supply_matrix, km.demand_matrix,
            state, cube, skip_quiet,
        )  # fmt: skip
        computed += T
    return skipped, computed


def _make_block(digest: str):
    def block(
        km, k0, k1, p0, n_paths, lanes, period_of_month, loss, severity, tension, loss_total,
        va_total, year_q, log_weight, skip_quiet,
    ):  # fmt: skip
        size = lanes * GROUP_CHUNKS
        first_group = p0 // size
        groups = (p0 + n_paths - 1) // size - first_group + 1
        cube = (loss, severity, tension, loss_total, va_total, year_q, log_weight)
        # Counts per group, summed after the loop (a scalar reduction around these calls trips
        # numba's parfor pass).
        skipped = np.zeros(groups, np.int64)
        computed = np.zeros(groups, np.int64)
        for group in numba.prange(groups):
            group_paths = (first_group + group) * size + np.arange(size)
            skipped[group], computed[group] = run_group(
                km, k0, k1, group_paths, p0, n_paths, lanes, period_of_month, cube, skip_quiet
            )
        return digest, skipped.sum() / max(computed.sum(), 1)

    return block


def _compiled_kernel():
    global _kernel, _digest
    functions = compiled_steps()
    with _lock:
        if _kernel is None:
            _digest = _source_digest()
            kernel = numba.njit(parallel=True, **CPU_OPTIONS)(
                rebind(_make_block(_digest), functions)
            )
            _kernel = cached(kernel)
        return _kernel


_controller: ThreadpoolController | None = None


def _blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded thread pools, found once: finding them reads the
    process's memory maps (about 5 ms, once per block before; numpy's BLAS is loaded with numpy)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


class _SingleThreadedBlas:
    """Keep the BLAS at one thread while any kernel of this process runs (counted, so that
    kernels running at once in several threads do not restore the limits under each other)."""

    def __enter__(self) -> None:
        global _blas_users, _blas_limits
        with _lock:
            if _blas_users == 0:
                _blas_limits = _blas_controller().limit(limits=1, user_api="blas")
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
    year_q: np.ndarray,
    log_weight: np.ndarray,
    skip_quiet: bool = True,
) -> float:
    """Compute paths ``[p0, p1)`` into ``out`` (arrays checked by the caller, see backends),
    each path's mean output loss per year and node into ``year_q`` (P, years, N) float32 and
    its log likelihood ratio under the model's tilt into ``log_weight`` (P,) float64 (the
    caller sets ``weight``, after the credit stage has added its own part).

    Returns the share of the chunk-months whose shocks, products and state update were
    skipped as quiet (:func:`riskengine.kernels.step.simulate_lanes`; ``skip_quiet=False``
    computes them all, to show that skipping changes nothing).

    The first call in a process compiles the kernel (about 90 s) or loads it from numba's
    cache (under a second).
    """
    k0, k1 = rng.split_seed(seed)
    kernel = _compiled_kernel()
    with _SingleThreadedBlas():
        built_from, skipped = kernel(
            km,
            k0,
            k1,
            p0,
            p1 - p0,
            CHUNK,
            period_of_month,
            out["loss"],
            out["severity"],
            out["tension"],
            out["loss_total"],
            out["value_added_loss_total"],
            year_q,
            log_weight,
            skip_quiet,
        )
    if built_from != _digest:
        raise RuntimeError(
            "the CPU kernel loaded from numba's cache was built from other sources; delete "
            f"the kernel cache folder {kernel_cache_dir()}"
        )
    return skipped
