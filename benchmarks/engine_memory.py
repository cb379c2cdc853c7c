"""Peak memory (max RSS) of one run through the engine, in a fresh process.

    python benchmarks/engine_memory.py PATHS STORE [--block-paths B] [--resolution R]

Prints paths, blocks, wall time and the process's peak resident memory. The run uses the local
threaded scheduler on every core, like ``riskengine run`` without --workers, and writes a real
store (delete it afterwards). docs/performance.md, "Engine memory", records the results.
"""

from __future__ import annotations

import argparse
import resource
import time

import riskengine as rk


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", type=int)
    p.add_argument("store")
    p.add_argument("--block-paths", type=int, default=None)
    p.add_argument("--resolution", default="horizon")
    args = p.parse_args()
    start = time.perf_counter()
    ds = rk.simulate("truce_collapse", args.paths, 1, store=args.store,
                     block_paths=args.block_paths, resolution=args.resolution)  # fmt: skip
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    chunks = ds.chunks["path"]
    print(f"paths={args.paths:,} resolution={args.resolution} blocks={len(chunks)} x "
          f"{chunks[0]:,} paths wall={wall:.1f} s peak_rss={peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
