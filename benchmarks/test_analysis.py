"""The analysis of a run's store, streamed over its chunks: the risk table after a run (from the
run's per-path summaries), ``risk_summary`` of every group, and the whole report.

    python -m pytest benchmarks/test_analysis.py --benchmark-enable \
        --benchmark-columns=min,median

Rates are paths analysed per second (``paths_per_s`` in the saved JSON) on one store of
10^6 paths at horizon resolution, written once per session. Peak memory is measured by
``benchmarks/analysis_memory.py`` in a fresh process (docs/performance.md).
"""

from __future__ import annotations

import measures
import pytest

import riskengine as rk

pytestmark = pytest.mark.benchmark(group="analysis")


@pytest.fixture(scope="module")
def store(model, size, tmp_path_factory):
    path = tmp_path_factory.mktemp("analysis") / "run.zarr"
    rk.simulate(model, size(1_000_000, 600), measures.SEED, store=path, resolution="horizon")
    return path


@pytest.mark.parametrize("what", measures.ANALYSES)
def test_analysis(measure, store, tmp_path, what):
    measure(measures.analysis(store, what, tmp_path / "report"), rounds=3)
