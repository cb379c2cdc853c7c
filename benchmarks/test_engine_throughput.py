"""The engine end to end: ``riskengine.simulate`` into a zarr store on the local threaded
scheduler (every core), at horizon and at monthly resolution.

    python -m pytest benchmarks/test_engine_throughput.py --benchmark-enable \
        --benchmark-columns=min,median

Each round replaces the store (``overwrite``); the time includes the store's creation, the
kernel's warm-up path, every block's kernel, compression and write, and opening the cube.
"""

from __future__ import annotations

import measures
import pytest

pytestmark = pytest.mark.benchmark(group="engine")

# Paths when timing: several seconds of work at the default block size (at horizon, a block is
# about 2 s of work; monthly blocks are capped at 64 MiB of output, 23 kB per path).
PATHS = {"horizon": 200_000, "month": 12_000}


@pytest.mark.parametrize("resolution", ["horizon", "month"])
def test_engine(measure, model, size, tmp_path, resolution):
    store = tmp_path / "run.zarr"
    paths = size(PATHS[resolution], 256)
    measure(measures.engine(model, paths, store, resolution), rounds=3, cores=measures.cores())
