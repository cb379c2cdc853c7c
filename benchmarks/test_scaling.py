"""Scaling over dask workers: the same run on a ``LocalCluster`` of 1 and of 2 single-threaded
worker processes (what ``riskengine run --workers W`` starts), the speedup is the ratio.

    python -m pytest benchmarks/test_scaling.py --benchmark-enable --benchmark-columns=min,median

The run is at horizon resolution, cut into 8 equal blocks for both, so both do the same work;
the workers have loaded the kernel before the timing starts (it is compiled once per worker, or
loaded from numba's disk cache).
"""

from __future__ import annotations

import measures
import pytest

pytestmark = pytest.mark.benchmark(group="workers")

BLOCKS = 8


@pytest.mark.parametrize("workers", [1, 2])
def test_workers(measure, model, size, tmp_path, workers):
    paths = size(480_000, 16 * BLOCKS)
    with measures.local_cluster(workers, model) as client:
        work = measures.engine(model, paths, tmp_path / "run.zarr", "horizon", client=client,
                               block_paths=paths // BLOCKS)  # fmt: skip
        measure(work, rounds=3, workers=workers)
