"""The CUDA block kernel and its launcher: a block of threads holds a tile of paths.

Each thread runs one path through :func:`riskengine.kernels.step.simulate_lanes` (compiled as
CUDA device functions from the same source as the CPU kernel) as a single lane, its state in
local memory, as on the CPU. Two of the step functions are this target's own (``replace``, as
the CPU kernel replaces the products with BLAS):

- ``propagate`` is a product over the block's tile: the threads put their paths' states into a
  shared tile (N x ``tile`` float32), load ``M`` into shared memory a panel of columns at a time
  (each element of ``M`` read from global memory once per block, month and product), and each
  thread accumulates a register block of ``M Q`` over the columns in order: the same sums, in
  the same order, as the one-path loop of :func:`riskengine.kernels.step.propagate` (fused
  multiply-adds in both), so the tile and the panels change no bit. A thread's block is
  ``ceil(N / 4)`` nodes by 4 paths, taken in :data:`ROW_PASSES` passes of a third of its nodes
  (7 x 4 accumulators at N = 84), the partial sums kept in local memory between passes and
  panels: all 84 at once would push the kernel past 255 registers into spills. A pass reads
  4 + 7 shared values for 28 multiply-adds, where the one-path loop read 2 for 1.
- ``_all_zero`` (the quiet-month skip) is decided for the whole block (``syncthreads_and``), so
  that every thread of a block reaches each product's barriers; the skip stays exact.

Shared memory is static (numba-cuda has no opt-in beyond 48 KiB): the tile takes
``4 N tile`` bytes and the panel of ``M`` the rest, in equal panels (:func:`panel_columns`);
for the default economy (N = 84) a tile of 64 paths and panels of 42 columns, 35,616 bytes.
Larger economies take smaller tiles (:func:`tile_paths`), up to 6,144 nodes.
Periods are summed inside the kernel, as on the CPU.

The kernel is specialized (and compiled) once per shape (C, N, F, R, K the nonzero exposures,
the tile and the panel), because CUDA local and shared arrays need sizes known at compile time.
Under ``NUMBA_ENABLE_CUDASIM=1`` the same code runs in numba's simulator, which is how the tests
check it without a GPU.

This module imports numpy, numba.cuda and the kernels' own modules.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import cuda

from riskengine.kernels import rng, step
from riskengine.kernels.layout import KernelModel
from riskengine.kernels.step import simulate_lanes
from riskengine.kernels.targets import compile_functions, rebind

__all__ = [
    "PATHS_PER_THREAD",
    "ROW_PASSES",
    "SHARED_BYTES",
    "TILE_PATHS",
    "available",
    "compile_ptx_for",
    "kernel_function",
    "panel_columns",
    "run_block_into",
    "tile_paths",
]

SHARED_BYTES = 48 * 1024  # a block's static shared memory
TILE_PATHS = 64  # paths of a block's tile, one thread each: two warps
PATHS_PER_THREAD = 4  # the paths of a thread's register block in the tiled product
ROW_PASSES = 3  # its nodes in passes: the accumulators of one pass in registers (7 x 4 at N = 84)


def available() -> bool:
    """Whether a CUDA device (or numba's simulator) can run the kernel here."""
    return cuda.is_available()


def tile_paths(n_paths: int, N: int) -> int:
    """The tile (threads per block) for a block of ``n_paths`` paths of an economy of ``N``
    nodes: :data:`TILE_PATHS`, or fewer for a smaller block or a larger economy (the tile and at
    least one column of ``M`` must fit in :data:`SHARED_BYTES`); a multiple of
    :data:`PATHS_PER_THREAD`, or fewer paths than that. Each tile is a kernel of its own: blocks
    of fewer than 61 paths compile theirs (numba's simulator runs every thread of a tile).

    Raises
    ------
    ValueError
        When not even a tile of one path fits (an economy of more than 6,144 nodes).
    """
    if n_paths < 1:
        raise ValueError(f"a block needs at least one path, got {n_paths}")
    largest = min(TILE_PATHS, SHARED_BYTES // (4 * N) - 1)
    if largest < 1:
        raise ValueError(
            f"an economy of {N} nodes does not fit the CUDA kernel's shared memory "
            f"({SHARED_BYTES} bytes for a path's state and a column of M); use --backend cpu"
        )
    if largest >= PATHS_PER_THREAD:
        largest -= largest % PATHS_PER_THREAD
    wanted = n_paths
    if n_paths >= PATHS_PER_THREAD:
        wanted = PATHS_PER_THREAD * math.ceil(n_paths / PATHS_PER_THREAD)
    return min(largest, wanted)


def panel_columns(N: int, tile: int) -> int:
    """The columns of ``M`` in each shared panel beside a tile of ``tile`` paths: the panels
    split the N columns evenly, each as wide as fits in :data:`SHARED_BYTES`
    (:func:`tile_paths` leaves room for one at least)."""
    widest = (SHARED_BYTES - 4 * N * tile) // (4 * N)
    if widest < 1:
        raise ValueError(f"a tile of {tile} paths of {N} nodes leaves no room for M")
    panels = math.ceil(N / min(N, widest))
    return math.ceil(N / panels)


def _tiled_functions(N: int, tile: int, panel: int) -> dict:
    """This target's ``propagate`` and ``_all_zero`` (see the module's docstring), for
    ``simulate_lanes``'s ``replace``."""
    RP = min(PATHS_PER_THREAD, tile)
    PG = tile // RP  # path groups: thread t's paths are t % PG + PG j, j < RP
    RN = math.ceil(N / RP)  # nodes of a thread's block: RP node groups of RN rows
    RH = math.ceil(RN / ROW_PASSES)  # of which a pass accumulates RH rows in registers
    ROWS = ROW_PASSES * RH  # the partial sums' rows (a constant: local arrays need one)

    def propagate(operands, q, mq):
        """``mq = M q`` over the block's tile; ``operands`` is ``(M, panel, tile)``, the last
        two in shared memory; ``q`` and ``mq`` are this thread's lane."""
        matrix, panel_tile, paths_tile = operands
        t = cuda.threadIdx.x
        pg = t % PG
        row0 = (t // PG) * RN
        cuda.syncthreads()  # every thread has read the tile of the previous product
        for n in range(N):
            paths_tile[n, t] = q[n, 0]
        partial = cuda.local.array((ROWS, RP), np.float32)
        acc = cuda.local.array((RH, RP), np.float32)
        x = cuda.local.array(RP, np.float32)
        for r in range(ROWS):
            for j in range(RP):
                partial[r, j] = np.float32(0.0)
        # The pass count is read from an array's shape, a run-time value: the loop over passes
        # stays a loop, so the partial sums stay in local memory between passes instead of
        # being promoted to registers (which would need all of them at once).
        passes = (matrix.shape[0] + N * ROW_PASSES) // N - 1
        for m0 in range(0, N, panel):
            width = min(panel, N - m0)
            cuda.syncthreads()  # the tile is written and the previous panel read
            for idx in range(t, N * width, tile):
                panel_tile[idx // width, idx % width] = matrix[idx // width, m0 + idx % width]
            cuda.syncthreads()
            for h in range(passes):
                for r in range(RH):
                    for j in range(RP):
                        acc[r, j] = partial[h * RH + r, j]
                for m in range(width):
                    for j in range(RP):
                        x[j] = paths_tile[m0 + m, pg + PG * j]
                    for r in range(RH):
                        # rows past the thread's own (the last pass's) or past N are computed
                        # from a row in range and not written
                        w = panel_tile[min(row0 + h * RH + r, N - 1), m]
                        for j in range(RP):
                            acc[r, j] += w * x[j]
                for r in range(RH):
                    for j in range(RP):
                        partial[h * RH + r, j] = acc[r, j]
        cuda.syncthreads()  # every thread has read the tile: the products can replace it
        for r in range(RN):
            if row0 + r < N:
                for j in range(RP):
                    paths_tile[row0 + r, pg + PG * j] = partial[r, j]
        cuda.syncthreads()
        for n in range(N):
            mq[n, 0] = paths_tile[n, t]

    def _all_zero(e):
        """Whether every element of every thread's ``e`` is 0: one answer for the block."""
        flag = 1
        for c in range(e.shape[0]):
            for i in range(e.shape[1]):
                if e[c, i] != 0.0:
                    flag = 0
        return cuda.syncthreads_and(flag) != 0

    return {"propagate": propagate, "_all_zero": _all_zero}


def kernel_function(C: int, N: int, F: int, R: int, K: int, tile: int, panel: int):
    """The plain kernel function for one shape, its device functions bound as globals.

    ``K`` is the number of nonzero exposures, ``tile`` the paths (threads) of a block
    (:func:`tile_paths`), ``panel`` the columns of ``M`` in shared memory at a time
    (:func:`panel_columns`). ``cuda.jit`` of the result is the kernel; ``cuda.compile_ptx``
    compiles it without a GPU.
    """
    if not (tile < PATHS_PER_THREAD or tile % PATHS_PER_THREAD == 0) or not 1 <= panel <= N:
        raise ValueError(f"a tile of {tile} paths and panels of {panel} columns do not divide")
    if 4 * N * (tile + panel) > SHARED_BYTES:
        raise ValueError(f"a tile of {tile} paths and panels of {panel} columns of {N} nodes "
                         f"take more than {SHARED_BYTES} bytes of shared memory")  # fmt: skip
    # Local and shared array shapes must be constants: computed here, outside the kernel.
    K_ROWS = max(K, 1)  # a local array cannot be empty
    HEAD_ROWS = 2 + C * F
    Z_ROWS = C + 2

    def kernel(
        km, k0, k1, p0, n_paths, period_of_month, loss, severity, tension, loss_total, va_total,
        year_q, log_weight,
    ):  # fmt: skip
        panel_tile = cuda.shared.array((N, panel), np.float32)
        paths_tile = cuda.shared.array((N, tile), np.float32)
        # One lane per thread: every state array has a last axis of length 1, in the order of
        # step.STATE.
        state = (
            cuda.local.array(1, np.float64),  # g
            cuda.local.array((C, 1), np.float64),  # on
            cuda.local.array((C, 1), np.float64),  # severity
            cuda.local.array((C, 1), np.float64),  # months_on
            cuda.local.array((HEAD_ROWS, 1), np.float64),  # head
            cuda.local.array((K_ROWS, 1), np.float64),  # weights
            cuda.local.array((Z_ROWS, 1), np.float64),  # z
            cuda.local.array((C, 1), np.float64),  # scratch
            cuda.local.array((C, 1), np.float64),  # e
            cuda.local.array((N, 1), np.float64),  # supply
            cuda.local.array((N, 1), np.float64),  # demand
            cuda.local.array((K_ROWS, 1), np.float64),  # stock
            cuda.local.array((N, 1), np.float32),  # a
            cuda.local.array((N, 1), np.float32),  # b
            cuda.local.array((N, 1), np.float32),  # ma
            cuda.local.array((N, 1), np.float32),  # mb
            cuda.local.array((N, 1), np.float64),  # q_sum
            cuda.local.array((N, 1), np.float64),  # year_sum
            cuda.local.array((C, 1), np.float64),  # sev_sum
            cuda.local.array(1, np.float64),  # g_sum
            cuda.local.array((N, 1), np.float32),  # values
            cuda.local.array((R, 1), np.float64),  # loss_sum
            cuda.local.array((R, 1), np.float64),  # va_sum
            cuda.local.array(1, np.float64),  # log_weight
        )
        path = cuda.local.array(1, np.int64)
        # Every thread of the tile runs, also past the block's last path (computed, not
        # written): the products need the whole block at their barriers.
        path[0] = p0 + cuda.grid(1)
        simulate_lanes(
            km, k0, k1, path, p0, n_paths, period_of_month,
            (km.supply_matrix, panel_tile, paths_tile), (km.demand_matrix, panel_tile, paths_tile),
            state, (loss, severity, tension, loss_total, va_total, year_q, log_weight), True,
        )  # fmt: skip

    own = _tiled_functions(N, tile, panel)
    return rebind(kernel, compile_functions(step.FUNCTIONS, "cuda", replace=own), "cuda")


_lock = threading.Lock()
# One block on the device at a time in a process: the threaded scheduler's threads would
# otherwise interleave their launches and transfers on the one device of the process (numba's
# simulator refuses that with an AssertionError; a GPU would only share itself among them).
_device = threading.Lock()
_kernels: dict[tuple[int, ...], object] = {}


def _kernel(km: KernelModel, tile: int):
    C, N = km.exposure.shape
    F, R, K = km.factor_loadings.shape[1], km.n_regions, km.exposure_channel.shape[0]
    key = (C, N, F, R, K, tile, panel_columns(N, tile))
    with _lock:
        if key not in _kernels:
            _kernels[key] = cuda.jit(kernel_function(*key))
        return _kernels[key]


def run_block_into(
    km: KernelModel,
    seed: int,
    p0: int,
    p1: int,
    period_of_month: np.ndarray,
    out: dict[str, np.ndarray],
    year_q: np.ndarray,
    log_weight: np.ndarray,
) -> None:
    """Compute paths ``[p0, p1)`` on the GPU into ``out`` (arrays checked by the caller),
    ``year_q`` (each path's mean output loss per year and node, for the credit stage) and
    ``log_weight`` (each path's log likelihood ratio under the model's tilt)."""
    with _device:
        _run_block_into(km, seed, p0, p1, period_of_month, out, year_q, log_weight)


def _run_block_into(km, seed, p0, p1, period_of_month, out, year_q, log_weight) -> None:
    k0, k1 = rng.split_seed(seed)
    n_paths = p1 - p0
    device_model = KernelModel(*(cuda.to_device(v) if isinstance(v, np.ndarray) else v for v in km))
    names = ("loss", "severity", "tension", "loss_total", "value_added_loss_total")
    host_out = [out[name] for name in names] + [year_q, log_weight]
    device_out = [cuda.device_array(v.shape, v.dtype) for v in host_out]
    tile = tile_paths(n_paths, km.exposure.shape[1])
    blocks = math.ceil(n_paths / tile)
    _kernel(km, tile)[blocks, tile](
        device_model, k0, k1, p0, n_paths, cuda.to_device(period_of_month), *device_out
    )
    for host, values in zip(host_out, device_out, strict=True):
        values.copy_to_host(host)


def compile_ptx_for(
    model, cc: tuple[int, int] = (9, 0), tile: int | None = None, panel: int | None = None
) -> str:
    """The PTX of ``model``'s kernel for compute capability ``cc``, compiled without a GPU (NVVM
    from the ``cuda`` extra): a type check the simulator never does, and the input of ``ptxas``
    (``benchmarks/ptxas_report.py``).

    Parameters
    ----------
    model : riskengine.compile.CompiledModel
        The model whose kernel to compile; it is typed for a quarterly block of 2 paths (the
        types, not the sizes, decide the code).
    cc : tuple of int
        The compute capability, ``(9, 0)`` for an H100 or H200.
    tile : int, optional
        The paths (threads) of a block (default: a large block's, :func:`tile_paths`).
    panel : int, optional
        The columns of ``M`` in shared memory at a time (default: :func:`panel_columns`).

    Returns
    -------
    str
        The PTX, for ``ptxas -arch sm_XY``.
    """
    from types import SimpleNamespace

    from numba import typeof
    from numba.cuda import dispatcher

    from riskengine.backends import block_arrays
    from riskengine.kernels.credit import years
    from riskengine.kernels.layout import kernel_model
    from riskengine.schema import periods

    km = kernel_model(model.arrays)
    C, N = km.exposure.shape
    F, R, K = km.factor_loadings.shape[1], km.n_regions, km.exposure_channel.shape[0]
    out = block_arrays(model, 2, 20)
    period_of_month = periods(model.start, model.horizon, "quarter")[0]
    names = ("loss", "severity", "tension", "loss_total", "value_added_loss_total")
    args = (km, *rng.split_seed(1), 0, 2, period_of_month, *(out[n] for n in names),
            np.empty((2, years(model.horizon), N), np.float32), np.empty(2))  # fmt: skip
    tile = tile_paths(10**6, N) if tile is None else tile
    fn = kernel_function(C, N, F, R, K, tile, panel_columns(N, tile) if panel is None else panel)
    # numba-cuda compiles the device functions a kernel calls for the current device's compute
    # capability, even under compile_ptx(cc=...): with no device there is none to ask, so for
    # this one call the "current device" is a stand-in that answers ``cc``.
    current_device = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=cc)
    try:
        ptx, _ = cuda.compile_ptx(fn, tuple(typeof(a) for a in args), cc=cc)
    finally:
        dispatcher.get_current_device = current_device
    return ptx
