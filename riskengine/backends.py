"""Backend selection: one block contract, several targets (``reference``, ``cpu``, ``cuda``).

A block function computes paths ``[p0, p1)`` of a compiled model for a seed and returns a dict
mapping every variable (:data:`riskengine.schema.VARIABLES`: the cube and its per-path
summaries) to an array in the cube's layout and dtype, with ``time`` summed into the requested
resolution's periods. The engine calls
:func:`run_block` (new arrays) or :func:`run_block_into` (arrays it owns and reuses, possibly
views of a larger buffer) and never a kernel directly, so the dask graph is the same for every
target.

Kernel modules are imported lazily: importing riskengine compiles nothing, and choosing a
backend compiles only that backend (``cpu``: about 90 s the first time, then numba's disk
cache; ``cuda``: compiled for the device on each process's first block).

This module imports numpy and riskengine's compile, errors and schema modules; kernels lazily.
"""

from __future__ import annotations

import weakref
from typing import Literal

import numpy as np

from riskengine.compile import CompiledModel
from riskengine.errors import BackendError
from riskengine.schema import VARIABLES, cube_shapes, periods

__all__ = [
    "BACKENDS",
    "KERNEL_ATOL_OF_MAX",
    "KERNEL_RTOL",
    "Backend",
    "block_arrays",
    "block_shapes",
    "book_credit_into",
    "run_block",
    "run_block_into",
]

Backend = Literal["cpu", "cuda", "reference"]
BACKENDS: tuple[str, ...] = ("cpu", "cuda", "reference")

# How closely every backend's block equals the reference's (and CUDA the CPU's): each value to
# KERNEL_RTOL, or to KERNEL_ATOL_OF_MAX of the variable's largest value in the block. The kernels
# hold the two propagation states in float32 (unit roundoff 6e-8): where a node's supply loss and
# demand gain nearly cancel, or a credit loss is nearly 0, the result is a small difference of
# float32 numbers whose error is float32's precision of the *states*, not of the result.
KERNEL_RTOL = 1e-5
KERNEL_ATOL_OF_MAX = 1e-7

_derived: dict[tuple[str, int], object] = {}


def _once(model: CompiledModel, what: str, make):
    """``make(model.arrays)``, derived once per model object (and forgotten with it)."""
    key = (what, id(model))
    if key not in _derived:
        _derived[key] = make(model.arrays)
        weakref.finalize(model, _derived.pop, key, None)
    return _derived[key]


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


def _kernel_model(model: CompiledModel):
    """The kernels' arrays of ``model``."""
    from riskengine.kernels.layout import kernel_model

    return _once(model, "kernel", kernel_model)


def _credit_model(model: CompiledModel):
    """The credit stage's arrays of ``model``."""
    from riskengine.kernels.credit import credit_model

    return _once(model, "credit", credit_model)


def book_credit_into(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    period_of_month: np.ndarray,
    year_q: np.ndarray,
    log_weight: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    """The credit stage (:mod:`riskengine.kernels.credit`) of paths ``[p0, p1)`` from their
    yearly mean output losses ``year_q`` (P, years, N) float32: writes ``credit_loss``,
    ``credit_loss_total`` and ``credit_loss_segment`` of ``out``, and ``weight``, the
    likelihood ratio of the path's log ratio ``log_weight`` from the month loop times the
    credit-cycle factors' own (section 8). Every kernel backend runs it on the host after its
    month loop."""
    from riskengine.kernels.credit import book_credit, cycle_factors

    cm = _credit_model(model)
    z, log_ratio = cycle_factors(cm, seed, p0, p1, year_q.shape[1])
    out["weight"][...] = np.exp(log_weight + log_ratio)
    book_credit(
        cm, year_q, z, period_of_month, out["credit_loss"], out["credit_loss_total"],
        out["credit_loss_segment"],
    )  # fmt: skip


def block_shapes(model: CompiledModel, paths: int, n_periods: int) -> dict[str, tuple[int, ...]]:
    """The shape of each cube variable for a block of ``paths`` paths and ``n_periods`` periods."""
    return cube_shapes(model, paths, n_periods)


def block_arrays(model: CompiledModel, paths: int, n_periods: int) -> dict[str, np.ndarray]:
    """Uninitialized output arrays for :func:`run_block_into`, in the cube's layout and dtypes.

    Examples
    --------
    >>> import riskengine as rk
    >>> model = rk.compile_model(rk.load_scenario("truce_collapse"))
    >>> out = block_arrays(model, paths=3, n_periods=5)
    >>> out["loss"].shape, out["loss"].dtype, out["weight"].dtype
    ((3, 5, 12, 7), dtype('float32'), dtype('float64'))
    """
    return {
        name: np.empty(shape, dtype=VARIABLES[name].dtype)
        for name, shape in block_shapes(model, paths, n_periods).items()
    }


def _check_out(model, p0, p1, period_of_month, out) -> None:
    if not 0 <= p0 < p1:
        raise ValueError(f"paths [p0, p1) = [{p0}, {p1}) must satisfy 0 <= p0 < p1")
    pom = period_of_month
    if (
        pom.dtype != np.int64
        or pom.shape != (model.horizon,)
        or pom[0] != 0
        or np.any(np.diff(pom) < 0)
        or np.any(np.diff(pom) > 1)
    ):
        raise ValueError(
            "period_of_month must be int64 of one entry per month, counting periods 0, 1, ... "
            "in order; use riskengine.schema.periods"
        )
    shapes = block_shapes(model, p1 - p0, int(pom[-1]) + 1)
    for name, shape in shapes.items():
        values = out.get(name)
        if values is None:
            raise ValueError(f"out: missing {name!r}; use riskengine.backends.block_arrays")
        if (
            values.shape != shape
            or values.dtype != VARIABLES[name].dtype
            or not values.flags.c_contiguous
            or not values.flags.writeable
        ):
            raise ValueError(
                f"out[{name!r}] must be a writeable C-contiguous {np.dtype(VARIABLES[name].dtype)} "
                f"array of shape {shape}, got {values.dtype} {values.shape}; "
                "use riskengine.backends.block_arrays"
            )


def run_block_into(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    period_of_month: np.ndarray,
    out: dict[str, np.ndarray],
    backend: str = "cpu",
) -> float | None:
    """Compute paths ``[p0, p1)`` on a kernel backend straight into caller-owned arrays.

    Parameters
    ----------
    model, seed
        The compiled model and the seed in [0, 2**64).
    p0, p1
        Global path indices: row ``i`` of every output holds path ``p0 + i``.
    period_of_month
        int64, one entry per month: the period each month is summed into
        (``riskengine.schema.periods(model.start, model.horizon, resolution)[0]``).
    out
        Every variable, in the cube's layout and dtype (see :func:`block_arrays`), all
        overwritten: ``loss`` (P, n_periods, S, R), ``credit_loss`` (P, n_periods, B),
        ``severity`` (P, n_periods, C), ``tension`` (P, n_periods), ``weight`` (P,), and the
        summaries ``loss_total``, ``value_added_loss_total`` (P, R), ``credit_loss_total``
        (P, B), ``credit_loss_segment`` (P, B, G).
    backend
        ``cpu``, ``cuda`` or ``reference`` (which computes the block in new arrays, then copies
        it: one block of memory more).

    Returns
    -------
    float or None
        ``cpu``: the share of the kernel's chunk-months skipped as quiet (no shock yet in any
        of a chunk's paths; see :func:`riskengine.kernels.cpu.run_block_into`); None for the
        other backends.

    Raises
    ------
    BackendError
        The backend is unknown or cannot run here (no GPU).
    ValueError
        ``out`` or ``period_of_month`` do not fit the model and the paths.

    Examples
    --------
    >>> import riskengine as rk
    >>> from riskengine.schema import periods
    >>> model = rk.compile_model(rk.load_scenario("truce_collapse"))
    >>> period_of_month, starts = periods(model.start, model.horizon, "year")
    >>> out = block_arrays(model, paths=2, n_periods=len(starts))
    >>> skipped = run_block_into(model, 1, 10, 12, period_of_month, out, backend="cpu")
    >>> out["tension"].shape
    (2, 5)
    """
    _check_backend(backend)
    _check_out(model, p0, p1, period_of_month, out)
    if backend == "reference":
        from riskengine.reference import simulate_block_into

        simulate_block_into(model, seed, p0, p1, period_of_month, out)
        return None
    km = _kernel_model(model)
    from riskengine.kernels.credit import years

    year_q = np.empty((p1 - p0, years(model.horizon), model.n_nodes), np.float32)
    log_weight = np.empty(p1 - p0)
    skipped = None
    if backend == "cpu":
        from riskengine.kernels import cpu

        skipped = cpu.run_block_into(km, seed, p0, p1, period_of_month, out, year_q, log_weight)
    else:
        try:
            from riskengine.kernels import cuda
        except ImportError:
            raise BackendError(
                "numba's CUDA support is not installed; pip install 'riskengine[cuda]' "
                "or use --backend cpu"
            ) from None
        if not cuda.available():
            raise BackendError("no CUDA device found; use --backend cpu")
        try:
            cuda.tile_paths(1, model.n_nodes)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        cuda.run_block_into(km, seed, p0, p1, period_of_month, out, year_q, log_weight)
    book_credit_into(model, seed, p0, p1, period_of_month, year_q, log_weight, out)
    return skipped


def run_block(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    resolution: str = "month",
    backend: str = "cpu",
) -> dict[str, np.ndarray]:
    """Compute paths ``[p0, p1)`` on ``backend`` into new arrays in the cube's layout.

    Examples
    --------
    >>> import riskengine as rk
    >>> model = rk.compile_model(rk.load_scenario("truce_collapse"))
    >>> block = run_block(model, seed=1, p0=0, p1=4, resolution="horizon", backend="cpu")
    >>> block["loss"].shape
    (4, 1, 12, 7)
    """
    _check_backend(backend)
    period_of_month, starts = periods(model.start, model.horizon, resolution)
    out = block_arrays(model, p1 - p0, len(starts))
    run_block_into(model, seed, p0, p1, period_of_month, out, backend)
    return out
