"""What the CPU kernel's skip of quiet months saves, per library scenario, in one run.

    python benchmarks/skipping.py [--paths P] [--rounds K]

For each scenario of the library, the kernel (``riskengine.kernels.cpu``, on every core) runs
the same ``P`` paths at horizon resolution twice, side by side round after round: skipping the
quiet chunk-months (the default) and computing them all (``skip_quiet=False``), which give the
same bits (``tests/test_kernels_cpu.py``). Prints the share of chunk-months skipped, both times
in ns per path-month (the credit stage is not part of either), their ratio, and at the end how
many times faster ``truce_holds`` runs than ``truce_collapse``. docs/performance.md records the
output.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import riskengine as rk
from riskengine.backends import block_arrays
from riskengine.kernels import cpu
from riskengine.kernels.credit import years
from riskengine.kernels.layout import kernel_model
from riskengine.schema import periods

SEED = 20261203


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", type=int, default=20_480)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    P = args.paths
    ns = {}
    for name in sorted(rk.builtin_scenarios()):
        model = rk.compile_model(rk.load_scenario(name))
        km = kernel_model(model.arrays)
        period_of_month, starts = periods(model.start, model.horizon, "horizon")
        out = block_arrays(model, P, len(starts))
        year_q = np.empty((P, years(model.horizon), model.n_nodes), np.float32)
        log_weight = np.empty(P)
        best = {True: np.inf, False: np.inf}
        share = 0.0
        for _ in range(args.rounds + 1):  # the first round compiles or loads the kernel
            for skip in (True, False):
                start = time.perf_counter()
                got = cpu.run_block_into(km, SEED, 0, P, period_of_month, out, year_q,
                                         log_weight, skip_quiet=skip)  # fmt: skip
                best[skip] = min(best[skip], time.perf_counter() - start)
                share = got if skip else share
        on, off = (1e9 * best[s] / (P * model.horizon) for s in (True, False))
        ns[name] = on
        print(f"{name:18s} quiet chunk-months skipped {share:6.1%}; {on:6.1f} ns per "
              f"path-month skipping, {off:6.1f} computing all: {off / on:.2f}x")  # fmt: skip
    print(f"truce_holds runs {ns['truce_collapse'] / ns['truce_holds']:.2f}x as fast as "
          f"truce_collapse")  # fmt: skip


if __name__ == "__main__":
    main()
