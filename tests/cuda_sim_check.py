"""Run under ``NUMBA_ENABLE_CUDASIM=1`` by tests/test_kernels_cuda.py: the CUDA kernel, in
numba's simulator, against the numpy reference for every built-in scenario and under an
importance-sampling tilt.

The simulator runs each thread in Python (about a second per path-horizon), so this checks a few
dozen paths in all: 12 of the default scenario at monthly resolution, 3 of each other at
quarterly, and 2 of the default with each other use of shared memory. Exits 0 when all agree,
else with the failing comparison.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from kernel_checks import assert_block_equal

import riskengine as rk
from riskengine.backends import run_block
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
    # The default economy keeps one matrix in shared memory; check the variants with both and
    # with none too, by moving the limit.
    model = rk.compile_model(rk.load_scenario("truce_collapse"))
    default = cuda_kernel.SHARED_BYTES
    for limit, shared in ((10**6, 2), (0, 0)):
        cuda_kernel.SHARED_BYTES = limit
        assert cuda_kernel.shared_matrices(len(model.sectors) * len(model.regions)) == shared
        kernel = run_block(model, SEED, 0, 2, "quarter", backend="cuda")
        assert_block_equal(kernel, simulate_block(model, SEED, 0, 2, "quarter"))
        print(f"{shared} matrices in shared memory: CUDA (simulator) equals reference", flush=True)
    cuda_kernel.SHARED_BYTES = default
    # The engine on the threaded scheduler: 4 blocks on 2 threads share the process's device,
    # one block at a time, and give the CPU kernel's cube.
    blocks = rk.simulate(model, 8, SEED, backend="cuda", block_paths=2, resolution="horizon")
    cpu = rk.simulate(model, 8, SEED, backend="cpu", block_paths=8, resolution="horizon")
    for name in ("loss", "loss_total", "value_added_loss_total", "credit_loss", "weight"):
        np.testing.assert_allclose(blocks[name].values, cpu[name].values, rtol=1e-5, atol=1e-6)
    print("engine, 4 blocks on the threaded scheduler: CUDA (simulator) equals CPU", flush=True)


if __name__ == "__main__":
    sys.exit(main())
