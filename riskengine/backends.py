"""Backend selection: one block contract, several targets (``reference``, ``cpu``, ``cuda``).

A block function computes paths ``[p0, p1)`` of a compiled model for a seed and returns a dict
mapping every cube variable (:data:`riskengine.store.CUBE`) to an array in the cube's layout and
dtype, with ``time`` summed into the requested resolution's periods. The engine calls
:func:`run_block` and never a kernel directly, so the dask graph is the same for every target.

Kernel modules are imported lazily: choosing a backend compiles only that backend.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from riskengine.compile import CompiledModel

__all__ = ["BACKENDS", "Backend", "BackendError", "run_block"]

Backend = Literal["cpu", "cuda", "reference"]
BACKENDS: tuple[str, ...] = ("cpu", "cuda", "reference")


class BackendError(RuntimeError):
    """A backend that cannot run here (unknown name, no GPU); the message says what to use."""


def run_block(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    resolution: str = "month",
    backend: str = "cpu",
) -> dict[str, np.ndarray]:
    """Compute paths ``[p0, p1)`` on ``backend`` into the cube's layout (see module docstring)."""
    if backend == "reference":
        from riskengine.reference import simulate_block

        return simulate_block(model, seed, p0, p1, resolution)
    if backend in BACKENDS:
        raise BackendError(f"backend {backend!r} is not built yet; use --backend reference")
    raise BackendError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
