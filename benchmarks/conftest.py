"""Fixtures of the benchmark suite: the default model, sizes and one way to run a measurement.

With benchmarks disabled (the project's default, and CI), every benchmark runs its work once at
a small size, as a smoke test that keeps the suite from rotting; with ``--benchmark-enable`` it
runs at full size and pytest-benchmark times it, in one process: the project's ``-n auto``
(pytest-xdist, pyproject.toml) then starts no workers, since pytest-benchmark times nothing
under xdist and timings must not share the cores with other tests.
"""

from __future__ import annotations

from collections.abc import Callable

import measures
import pytest

from riskengine.compile import CompiledModel


def _timing(config: pytest.Config) -> bool:
    return config.getoption("benchmark_enable") or not config.getoption("benchmark_disable")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: no workers when benchmarks are timed; else xdist's own count."""
    return 0 if _timing(config) else None


@pytest.fixture(scope="session")
def model() -> CompiledModel:
    """The default economy: 84 nodes, 4 channels, 60 months."""
    return measures.default_model()


@pytest.fixture(scope="session")
def timing(request) -> bool:
    """Whether pytest-benchmark times this session (``--benchmark-enable`` overrides the
    ``--benchmark-disable`` of the project's pytest options)."""
    return _timing(request.config)


@pytest.fixture(scope="session")
def size(timing: bool) -> Callable[[int, int], int]:
    """``size(full, smoke)``: the work's size when timing, else the smoke test's."""
    return lambda full, smoke: full if timing else smoke


@pytest.fixture
def measure(benchmark) -> Callable[..., None]:
    """``measure(work, rounds=None, **info)``: warm ``work`` up (compile, first touch), time it
    (``rounds`` fixed rounds for slow work, else pytest-benchmark's calibration), check it.

    ``extra_info`` of the saved JSON holds the work's count (``path_months``, ``flops``,
    ``words`` or ``bytes``), its rate at the fastest round (per second) and ``info``.
    """

    def run(work: measures.Work, rounds: int | None = None, **info) -> None:
        work.run()
        key = work.unit.replace("-", "_") + "s"
        benchmark.extra_info.update({key: work.count, **info})
        if rounds is None:
            benchmark(work.run)
        else:
            benchmark.pedantic(work.run, rounds=rounds)
        work.check()
        if benchmark.stats is not None:  # None when benchmarks are disabled
            benchmark.extra_info[f"{key}_per_s"] = work.count / benchmark.stats.stats.min

    return run
