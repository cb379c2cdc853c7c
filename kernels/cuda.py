"""The CUDA block kernel and its launcher: one thread per path, the same month loop as the CPU.

Each thread runs one path through :func:`riskengine.kernels.step.simulate_lanes` (compiled as
CUDA device functions from the same source as the CPU kernel) as a single lane, its state in
local memory; the step module's own loops are this target's products. The
two propagation matrices are read by every thread at the same time, so they sit in shared memory
as far as they fit in :data:`SHARED_BYTES` (a block's static limit): both up to N = 78, the
supply matrix alone up to N = 110 (the default economy, N = 84, keeps W there and reads D from
global memory, cached), neither beyond.
Periods are summed inside the kernel, as on the CPU.

The kernel is specialized (and compiled) once per shape (C, N, F, R and K, the nonzero
exposures), because CUDA local and shared arrays need sizes known at compile time. Under
``NUMBA_ENABLE_CUDASIM=1`` the same code runs in numba's simulator, which is how the tests check
it without a GPU.

This module imports numpy, numba.cuda and the kernels' own modules.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import cuda

from riskengine.kernels import rng, step
from riskengine.kernels.layout import KernelModel
from riskengine.kernels.step import simulate_lanes
from riskengine.kernels.targets import compile_functions, rebind

__all__ = [
    "SHARED_BYTES",
    "THREADS_PER_BLOCK",
    "available",
    "compile_ptx_for",
    "kernel_function",
    "run_block_into",
    "shared_matrices",
]

SHARED_BYTES = 48 * 1024
THREADS_PER_BLOCK = 128


def available() -> bool:
    """Whether a CUDA device (or numba's simulator) can run the kernel here."""
    return cuda.is_available()


def shared_matrices(N: int) -> int:
    """How many of the two N x N float32 matrices (W first, then D) fit in shared memory."""
    per_matrix = 4 * N * N
    return 2 if 2 * per_matrix <= SHARED_BYTES else int(per_matrix <= SHARED_BYTES)


def kernel_function(C: int, N: int, F: int, R: int, K: int, shared: int):
    """The plain kernel function for one shape, its device functions bound as globals.

    ``K`` is the number of nonzero exposures; ``shared`` how many propagation matrices sit in
    shared memory (:func:`shared_matrices`). ``cuda.jit`` of the result is the kernel;
    ``cuda.compile_ptx`` compiles it without a GPU.
    """
    # Local array shapes must be constants: computed here, outside the kernel.
    K_ROWS = max(K, 1)  # a local array cannot be empty
    HEAD_ROWS = 2 + C * F
    Z_ROWS = C + 2

    def kernel(
        km, k0, k1, p0, n_paths, period_of_month, loss, severity, tension, loss_total, va_total,
        year_q, log_weight,
    ):  # fmt: skip
        if shared > 0:
            w_tile = cuda.shared.array((N, N), np.float32)
            for idx in range(cuda.threadIdx.x, N * N, cuda.blockDim.x):
                w_tile[idx // N, idx % N] = km.supply_matrix[idx // N, idx % N]
            supply_matrix = w_tile
        else:
            supply_matrix = km.supply_matrix
        if shared > 1:
            d_tile = cuda.shared.array((N, N), np.float32)
            for idx in range(cuda.threadIdx.x, N * N, cuda.blockDim.x):
                d_tile[idx // N, idx % N] = km.demand_matrix[idx // N, idx % N]
            demand_matrix = d_tile
        else:
            demand_matrix = km.demand_matrix
        if shared > 0:
            cuda.syncthreads()
        i = cuda.grid(1)
        if i >= n_paths:
            return
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
        path[0] = p0 + i
        simulate_lanes(
            km, k0, k1, path, p0, n_paths, period_of_month, supply_matrix, demand_matrix, state,
            (loss, severity, tension, loss_total, va_total, year_q, log_weight), True,
        )  # fmt: skip

    return rebind(kernel, compile_functions(step.FUNCTIONS, "cuda"), "cuda")


_lock = threading.Lock()
# One block on the device at a time in a process: the threaded scheduler's threads would
# otherwise interleave their launches and transfers on the one device of the process (numba's
# simulator refuses that with an AssertionError; a GPU would only share itself among them).
_device = threading.Lock()
_kernels: dict[tuple[int, int, int, int, int, int], object] = {}


def _kernel(km: KernelModel):
    C, N = km.exposure.shape
    F, R, K = km.factor_loadings.shape[1], km.n_regions, km.exposure_channel.shape[0]
    key = (C, N, F, R, K, shared_matrices(N))
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
    blocks = (n_paths + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    _kernel(km)[blocks, THREADS_PER_BLOCK](
        device_model, k0, k1, p0, n_paths, cuda.to_device(period_of_month), *device_out
    )
    for host, values in zip(host_out, device_out, strict=True):
        values.copy_to_host(host)


def compile_ptx_for(model, cc: tuple[int, int] = (9, 0), shared: int | None = None) -> str:
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
    shared : int, optional
        How many of the model's matrices to keep in shared memory (default: as many as fit,
        :func:`shared_matrices`).

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
    fn = kernel_function(C, N, F, R, K, shared_matrices(N) if shared is None else shared)
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
