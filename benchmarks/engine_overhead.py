"""Where an engine run's time goes beyond the kernel, stage by stage, at a given number of paths.

    python benchmarks/engine_overhead.py [--paths N] [--resolution R] [--rounds K] [--no-warm-up]

On the local threaded scheduler over every core, with the engine's default blocks, each stage
adding one piece of the engine's work to the one before:

1. ``kernel``: every block computed into its thread's reused buffers and dropped: the kernel
   (credit stage included) and dask's scheduling of the blocks;
2. ``kernel + writes``: the same blocks written into their regions of a store created
   beforehand: compression and the region writes added;
3. ``simulate``: ``riskengine.simulate`` into a store, end to end: the store's creation, the
   check run of the backend and the opening of the cube added;
4. ``risk_summary``: the risk table's pass over that store (EL, VaR, ES by region and bank).

Prints each stage's best wall seconds over ``rounds`` (after a warm-up call, unless
``--no-warm-up``: at 10^7 paths a block's first allocation is negligible and a call takes
minutes) and its ns per path-month, then the differences: what each piece costs.
docs/performance.md ("Engine overhead") records the runs.
"""

from __future__ import annotations

import argparse
import time

import measures

import riskengine as rk
from riskengine import engine
from riskengine.cluster import usable_cores


def _kernel_only(model, seed, p0, p1, resolution, backend):
    """A block into this thread's reused buffers, dropped (engine._block, as the engine calls
    it before writing)."""
    engine._block(model, seed, p0, p1, resolution, backend, reuse=True)
    return p1 - p0, None


def _best(run, rounds: int, warm_up: bool) -> float:
    """The fastest of ``rounds`` timed calls, after one untimed warm-up call (threads' buffers
    allocated, pages mapped) if ``warm_up``."""
    if warm_up:
        run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", type=int, default=1_000_000)
    p.add_argument("--resolution", default="horizon")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args(argv)

    model = measures.default_model()
    seed, resolution = measures.SEED, args.resolution
    block_paths = engine.default_block_paths(model, args.paths, resolution, "cpu", usable_cores())
    blocks = engine._blocks(args.paths, block_paths)
    path_months = args.paths * model.horizon
    print(f"{args.paths:,} paths at {resolution} resolution in {len(blocks)} blocks of "
          f"{block_paths:,}, {usable_cores()} threads, best of {args.rounds}")  # fmt: skip
    engine._block(model, seed, 0, 1, resolution, "cpu", reuse=True)  # the kernel loaded

    def kernel() -> None:
        tasks = [(seed, p0, p1, resolution, "cpu") for p0, p1 in blocks]
        engine._run_tasks(_kernel_only, model, tasks, None, lambda *_: None)

    with measures.scratch("overhead-") as folder:
        store = folder / "run.zarr"

        def simulate() -> None:
            rk.simulate(model, args.paths, seed, store=store, resolution=resolution,
                        overwrite=True)  # fmt: skip

        def writes() -> None:
            tasks = [(seed, p0, p1, resolution, "cpu", store, i) for i, (p0, p1) in
                     enumerate(blocks)]  # fmt: skip
            engine._run_tasks(engine._compute_and_write, model, tasks, None, lambda *_: None)

        def summary() -> None:
            rk.risk_summary(rk.open_run(store), levels=(0.99,))

        rounds, warm_up = args.rounds, args.warm_up
        seconds = {"kernel": _best(kernel, rounds, warm_up)}
        # simulate first: it leaves the store the other two use
        seconds["simulate"] = _best(simulate, rounds, warm_up)
        seconds["kernel + writes"] = _best(writes, rounds, warm_up)
        seconds["risk_summary"] = _best(summary, rounds, warm_up)

    for name in ("kernel", "kernel + writes", "simulate", "risk_summary"):
        print(f"{name:<18} {seconds[name]:8.2f} s  {1e9 * seconds[name] / path_months:7.1f} ns "
              "per path-month")  # fmt: skip
    pieces = {
        "compression and region writes": seconds["kernel + writes"] - seconds["kernel"],
        "store creation, backend check, open": seconds["simulate"] - seconds["kernel + writes"],
        "risk_summary's pass over the store": seconds["risk_summary"],
    }
    for name, s in pieces.items():
        print(f"+ {name:<38} {s:7.2f} s  {100 * s / seconds['kernel']:+6.1f} % of the kernel")


if __name__ == "__main__":
    main()
