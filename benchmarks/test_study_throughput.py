"""A study end to end: ``riskengine.study`` of ``truce_collapse`` (its 10 judged parameters and
4 outer exposure factors, a Sobol design) into a study store on the local threaded scheduler.

    python -m pytest benchmarks/test_study_throughput.py --benchmark-enable \
        --benchmark-columns=min,median

The time includes every point's model compilation, its blocks at horizon resolution, the
per-point figures (EL, VaR, ES of 23 figures, the exceedance curve) and the store's writes; the
rate is in path-months (points x paths x 60). docs/performance.md compares it with the engine's.
"""

from __future__ import annotations

import measures
import pytest

pytestmark = pytest.mark.benchmark(group="study")


def test_study(measure, size, tmp_path):
    # timed: 16 base samples = 256 points x 2,000 paths; smoke: 32 points x 64 paths
    samples, paths = size(16, 2), size(2_000, 64)
    work = measures.study(samples, paths, tmp_path / "study.zarr")
    measure(work, rounds=3 if samples > 2 else 1, cores=measures.cores())
