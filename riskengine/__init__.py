"""riskengine: Monte Carlo stress tests of the world economy against a US-China trade war.

The public API::

    import riskengine as rk
    sc = rk.load_scenario("truce_collapse")
    model = rk.compile_model(sc)
    ds = rk.simulate(sc, paths=100_000, seed=1, store="run.zarr")   # blocks on dask -> zarr
    ds = rk.open_run("run.zarr")                                    # lazy xarray.Dataset
    tbl = rk.risk_summary(ds, levels=(0.95, 0.99))                  # EL, VaR, ES, std errors

Importing riskengine compiles no kernel; kernels are built on first use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("riskengine")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from riskengine.compile import CompiledModel, ModelArrays, compile_model
from riskengine.economy import Economy, EconomyError, load_economy
from riskengine.engine import open_run, simulate
from riskengine.risk import (
    attribution,
    cumulative_loss_quantiles,
    exceedance_curves,
    path_totals,
    risk_summary,
    risk_table,
)
from riskengine.scenario import Scenario, ScenarioError, builtin_scenarios, load_scenario

__all__ = [
    "CompiledModel",
    "Economy",
    "EconomyError",
    "ModelArrays",
    "Scenario",
    "ScenarioError",
    "__version__",
    "attribution",
    "builtin_scenarios",
    "compile_model",
    "cumulative_loss_quantiles",
    "exceedance_curves",
    "load_economy",
    "load_scenario",
    "open_run",
    "path_totals",
    "risk_summary",
    "risk_table",
    "simulate",
]
