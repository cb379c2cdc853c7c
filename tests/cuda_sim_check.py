"""Run under ``NUMBA_ENABLE_CUDASIM=1`` by tests/test_kernels_cuda.py: the CUDA kernel, in
numba's simulator, against the numpy reference for every built-in scenario and under an
importance-sampling tilt; and the kernel's own tiles and panels against each other, bit for bit.

The simulator runs each thread in Python (about a second per path-horizon), so this checks a few
dozen paths in all: 12 of the default scenario at monthly resolution, 3 of each other at
quarterly, 6 of the default in tiles of 4 (the second with 2 paths past the block, computed
too) and 2 with each of two other panel widths. Exits 0 when all agree,
else with the failing comparison.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from kernel_checks import assert_block_equal, assert_block_identical

import riskengine as rk
from riskengine.backends import run_block
from riskengine.errors import BackendError
from riskengine.kernels import cuda as cuda_kernel
from riskengine.reference import simulate_block
from riskengine.tilt import Tilt

SEED = 77


def main() -> None:
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"
    for name in sorted(rk.builtin_scenarios()):
        model = rk.compile_model(rk.load_scenario(name))
        p0, p1, resolution = (3, 15, "month") if name == "truce_collapse" else (40, 43, "quarter")
        kernel = run_block(model, SEED, p0, p1, resolution, backend="cuda")
        assert_block_equal(kernel, simulate_block(model, SEED, p0, p1, resolution))
        print(f"{name}: CUDA (simulator) equals reference on paths [{p0}, {p1})", flush=True)
    # Importance sampling: every slot shifted, the likelihood ratios in the weights.
    model = rk.compile_model(rk.load_scenario("truce_holds"))
    zero = Tilt.zeros(model)
    gen = np.random.default_rng(2)
    tilt = Tilt(*(gen.normal(0.1, 0.3, v.shape) for v in (zero.head, zero.monthly, zero.cycle)))
    kernel = run_block(tilt.apply(model), SEED, 0, 3, "year", backend="cuda")
    assert_block_equal(kernel, simulate_block(tilt.apply(model), SEED, 0, 3, "year"))
    print("a tilted truce_holds: CUDA (simulator) equals reference", flush=True)
    # The tiled product sums every column in the same order whatever the tile and the panels,
    # and the block-wide skip is exact: other tiles and panels give the same bits (a path's
    # numbers do not depend on the block's other paths).
    model = rk.compile_model(rk.load_scenario("truce_collapse"))
    default = run_block(model, SEED, 3, 15, "month", backend="cuda")  # one tile of 12
    N = len(model.sectors) * len(model.regions)
    tile, limit = cuda_kernel.TILE_PATHS, cuda_kernel.SHARED_BYTES
    cuda_kernel.TILE_PATHS = 4  # two tiles, the second with 2 paths past the block
    head = {name: values[:6] for name, values in default.items()}
    assert_block_identical(run_block(model, SEED, 3, 9, "month", backend="cuda"), head)
    cuda_kernel.TILE_PATHS = tile
    print("tiles of 4: CUDA (simulator) equals a tile of 12 bit for bit", flush=True)
    head = {name: values[:2] for name, values in default.items()}
    assert cuda_kernel.panel_columns(N, 12) == N  # the default: all of M beside a tile of 12
    for shared, panel in ((4 * N * (2 + 42), 42), (4 * N * (2 + 5), 5)):  # beside a tile of 2
        cuda_kernel.SHARED_BYTES = shared
        assert cuda_kernel.panel_columns(N, cuda_kernel.tile_paths(2, N)) == panel
        assert_block_identical(run_block(model, SEED, 3, 5, "month", backend="cuda"), head)
        print(f"panels of {panel} columns: CUDA (simulator) equals one panel bit for bit",
              flush=True)  # fmt: skip
    # An economy whose path state and one column of M do not fit: refused up front, a one-line
    # BackendError that names the way out.
    cuda_kernel.SHARED_BYTES = 4 * N
    try:
        run_block(model, SEED, 0, 2, "horizon", backend="cuda")
    except BackendError as exc:
        assert f"{N} nodes does not fit" in str(exc) and "use --backend cpu" in str(exc), exc
    else:
        raise AssertionError("no BackendError for an economy too large for shared memory")
    cuda_kernel.SHARED_BYTES = limit
    print("an economy too large for shared memory: BackendError before any launch", flush=True)
    # The engine on the threaded scheduler: 4 blocks on 2 threads share the process's device,
    # one block at a time, and give the CPU kernel's cube.
    blocks = rk.simulate(model, 8, SEED, backend="cuda", block_paths=2, resolution="horizon")
    cpu = rk.simulate(model, 8, SEED, backend="cpu", block_paths=8, resolution="horizon")
    for name in ("loss", "loss_total", "value_added_loss_total", "credit_loss", "weight"):
        np.testing.assert_allclose(blocks[name].values, cpu[name].values, rtol=1e-5, atol=1e-6)
    print("engine, 4 blocks on the threaded scheduler: CUDA (simulator) equals CPU", flush=True)


if __name__ == "__main__":
    sys.exit(main())
