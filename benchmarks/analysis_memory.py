"""Wall time and peak memory (max RSS) of the analysis of a run's store, in a fresh process.

    python benchmarks/analysis_memory.py STORE {table,summary,report} [--out DIR]

``table`` is the risk table printed after a run (read from the run's per-path summaries),
``summary`` is ``risk_summary`` of every group at three levels (read from the cube), ``report``
writes the whole report (every figure) into ``--out``. Prints paths, wall time and the
process's peak resident memory; docs/performance.md, "Analysis", records the results.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import measures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", type=Path)
    p.add_argument("what", choices=measures.ANALYSES)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp()) / "report"
    work = measures.analysis(args.store, args.what, out)
    start = time.perf_counter()
    work.run()
    wall = time.perf_counter() - start
    work.check()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"{args.what}: paths={work.count:,.0f} wall={wall:.1f} s "
          f"rate={work.count / wall:,.0f} paths/s peak_rss={peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
