"""Run under ``NUMBA_ENABLE_CUDASIM=1`` by tests/test_kernels_cuda.py: the CUDA kernel, in
numba's simulator, against the numpy reference for every built-in scenario.

The simulator runs each thread in Python (about a second per path-horizon), so this checks a few
dozen paths in all: 12 of the default scenario at monthly resolution, 3 of each other at
quarterly. Exits 0 when all agree, else with the failing comparison.
"""

from __future__ import annotations

import os
import sys

from kernel_checks import assert_block_equal

import riskengine as rk
from riskengine.backends import run_block
from riskengine.reference import simulate_block

SEED = 77


def main() -> None:
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"
    for name in sorted(rk.builtin_scenarios()):
        model = rk.compile_model(rk.load_scenario(name))
        p0, p1, resolution = (3, 15, "month") if name == "truce_collapse" else (40, 43, "quarter")
        kernel = run_block(model, SEED, p0, p1, resolution, backend="cuda")
        assert_block_equal(kernel, simulate_block(model, SEED, p0, p1, resolution))
        print(f"{name}: CUDA (simulator) equals reference on paths [{p0}, {p1})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
