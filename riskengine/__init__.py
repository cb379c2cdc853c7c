"""riskengine: Monte Carlo stress tests of the world economy against a US-China trade war.

The public API::

    import riskengine as rk
    sc = rk.load_scenario("truce_collapse")
    model = rk.compile_model(sc)
    ds = rk.simulate(sc, paths=100_000, seed=1, store="run.zarr")   # blocks on dask -> zarr
    ds = rk.open_run("run.zarr")                                    # lazy xarray.Dataset
    tbl = rk.risk_summary(ds, levels=(0.95, 0.99))                  # EL, VaR, ES, std errors
    st = rk.study(sc, samples=16, paths=10_000, store="study.zarr") # judgements drawn, per point
    ix = rk.study_indices(st)                                       # Sobol indices of the figures
    cf = rk.counterfactual(sc, 20_000, off=["dollar"], shapley_values=True)  # paired, Shapley
    rs = rk.reverse_stress(model, 30e6)                             # most likely path losing X
    tail = rk.simulate(sc, 20_000, seed=1, tilt="auto")             # importance sampling

Every error a user can cause is an :class:`InputError` (one line naming the field or file and
the fix). Importing riskengine compiles no kernel; kernels are built on first use.
"""

# First: in a checkout, maps riskengine.kernels and riskengine.data (see its docstring).
import riskengine._checkout  # noqa: F401
from riskengine.compile import CompiledModel, ModelArrays, compile_model
from riskengine.counterfactual import counterfactual, open_comparison
from riskengine.economy import Economy, load_economy
from riskengine.engine import simulate
from riskengine.errors import (
    BackendError,
    CubeError,
    EconomyError,
    InputError,
    RunError,
    ScenarioError,
    StoreError,
)
from riskengine.formatting import risk_table
from riskengine.replay import builtin_replays, load_replay, run_replay
from riskengine.reverse import reverse_stress
from riskengine.risk import (
    analyse,
    attribution,
    credit_by_segment,
    cumulative_loss_quantiles,
    escalation_odds,
    exceedance_curves,
    risk_summary,
)
from riskengine.scenario import Scenario, builtin_scenarios, load_scenario
from riskengine.store import open_run
from riskengine.studies import study, study_indices
from riskengine.study_store import open_study
from riskengine.tilt import Tilt, auto_tilt
from riskengine.version import __version__

__all__ = [
    "BackendError",
    "CompiledModel",
    "CubeError",
    "Economy",
    "EconomyError",
    "InputError",
    "ModelArrays",
    "RunError",
    "Scenario",
    "ScenarioError",
    "StoreError",
    "Tilt",
    "__version__",
    "analyse",
    "attribution",
    "auto_tilt",
    "builtin_replays",
    "builtin_scenarios",
    "compile_model",
    "counterfactual",
    "credit_by_segment",
    "cumulative_loss_quantiles",
    "escalation_odds",
    "exceedance_curves",
    "load_economy",
    "load_replay",
    "load_scenario",
    "open_comparison",
    "open_run",
    "open_study",
    "reverse_stress",
    "risk_summary",
    "risk_table",
    "run_replay",
    "simulate",
    "study",
    "study_indices",
]
