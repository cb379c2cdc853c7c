"""The reference cube against the contract of DESIGN.md (riskengine.store): names, dims, dtypes,
coordinates, attributes, and the coarser resolutions (sums over periods from the start month)."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest

import riskengine as rk
from riskengine.reference import simulate, simulate_monthly
from riskengine.schema import CUBE, STATIC, VARIABLES, periods

DIMS = {
    "loss": ("path", "time", "sector", "region"),
    "credit_loss": ("path", "time", "bank"),
    "severity": ("path", "time", "channel"),
    "tension": ("path", "time"),
    "weight": ("path",),
}
SUMMARY_DIMS = {
    "loss_total": ("path", "region"),
    "credit_loss_total": ("path", "bank"),
    "credit_loss_segment": ("path", "bank", "segment"),
    "value_added_loss_total": ("path", "region"),
}
STATIC_DIMS = {
    "value_added_share": ("sector", "region"),
    "gdp": ("region",),
    "cet1": ("bank",),
    "rwa": ("bank",),
}
DTYPES = {"loss": "float32", "credit_loss": "float32", "severity": "float32"}
DTYPES |= {"tension": "float32", "weight": "float64"}
DTYPES |= {"loss_total": "float64", "credit_loss_total": "float64"}
DTYPES |= {"credit_loss_segment": "float32"}
DTYPES |= {"cet1": "float64", "rwa": "float64"}
DTYPES |= {"value_added_loss_total": "float64", "value_added_share": "float64", "gdp": "float64"}
MONEY = "USD million (2023 prices)"  # the default economy's unit and price year
UNITS = {"loss": MONEY, "credit_loss": MONEY, "value_added_loss_total": MONEY, "gdp": MONEY}
UNITS |= {"severity": "1", "tension": "1", "weight": "1", "value_added_share": "1"}
UNITS |= {"loss_total": MONEY, "credit_loss_total": MONEY, "credit_loss_segment": MONEY}
UNITS |= {"cet1": MONEY, "rwa": MONEY}
ATTRS = {
    "riskengine_version",
    "scenario",
    "scenario_sha256",
    "seed",
    "paths",
    "backend",
    "resolution",
    "created",
    "portfolio",
}


@pytest.fixture(scope="module")
def cube(truce_collapse):
    return simulate(truce_collapse, paths=5, seed=3)


def test_variables_dims_dtypes(cube):
    assert set(cube.data_vars) == set(DIMS) | set(SUMMARY_DIMS) | set(STATIC_DIMS)
    assert set(CUBE) == set(DIMS)
    assert set(VARIABLES) == set(DIMS) | set(SUMMARY_DIMS)
    assert set(STATIC) == set(STATIC_DIMS)
    for name, dims in (DIMS | SUMMARY_DIMS | STATIC_DIMS).items():
        assert cube[name].dims == dims, name
        assert cube[name].dtype == np.dtype(DTYPES[name]), name
    sizes = {"path": 5, "time": 60, "sector": 12, "region": 7, "channel": 4}
    assert dict(cube.sizes) == sizes | {"bank": 6, "segment": 15}


def test_variable_attrs(cube):
    for name in {**VARIABLES, **STATIC}:
        assert cube[name].attrs["units"] == UNITS[name], name
        assert cube[name].attrs["long_name"] == {**VARIABLES, **STATIC}[name].long_name, name
        assert cube[name].attrs["long_name"]


def test_coordinates(cube, truce_collapse):
    assert set(cube.coords) == {"path", "time", "sector", "region", "channel", "bank", "segment"}
    assert cube.path.dtype == np.int64
    np.testing.assert_array_equal(cube.path.values, np.arange(5))
    assert cube.time.dtype == np.dtype("datetime64[ns]")
    assert cube.time.values[0] == np.datetime64("2026-12-01")  # the scenario's start month
    months = cube.time.values.astype("datetime64[M]")
    np.testing.assert_array_equal(np.diff(months).astype(int), 1)
    assert months[-1] == np.datetime64("2031-11")
    for name, labels in (
        ("sector", truce_collapse.sectors),
        ("region", truce_collapse.regions),
        ("channel", truce_collapse.channels),
        ("bank", truce_collapse.banks),
        ("segment", truce_collapse.segments),
    ):
        assert cube[name].values.tolist() == list(labels)
        assert all(isinstance(v, str) for v in cube[name].values)


def test_dataset_attrs(cube):
    assert ATTRS <= set(cube.attrs)
    file = rk.builtin_scenarios()["truce_collapse"]
    assert cube.attrs["scenario"] == file.read_text()
    assert cube.attrs["scenario_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert cube.attrs["riskengine_version"] == rk.__version__
    assert (cube.attrs["seed"], cube.attrs["paths"]) == (3, 5)
    assert (cube.attrs["backend"], cube.attrs["resolution"]) == ("reference", "month")
    created = dt.datetime.fromisoformat(cube.attrs["created"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(hours=1)


def test_values_are_the_monthly_model_in_float32(cube, truce_collapse):
    monthly = simulate_monthly(truce_collapse, 3, 0, 5)
    for name in DIMS:
        np.testing.assert_array_equal(cube[name].values, monthly[name].astype(DTYPES[name]))


@pytest.mark.parametrize("resolution", ["month", "year", "horizon"])
def test_summaries_are_the_horizon_totals_of_the_cube(truce_collapse, resolution):
    """Each region's loss and credit loss over the horizon, in float64 from the float32 cube."""
    ds = simulate(truce_collapse, paths=6, seed=4, resolution=resolution)
    loss = ds.loss.values.astype(np.float64).sum(axis=(1, 2))
    credit = ds.credit_loss.values.astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(ds.loss_total.values, loss, rtol=1e-12)
    np.testing.assert_allclose(ds.credit_loss_total.values, credit, rtol=1e-12)
    va = (ds.loss.values.astype(np.float64) * ds.value_added_share.values).sum(axis=(1, 2))
    np.testing.assert_allclose(ds.value_added_loss_total.values, va, rtol=1e-12)
    assert (ds.loss_total.values > 0).any()


def test_static_value_added_is_the_tables_own(truce_collapse):
    """value_added_share is va / x of the economy; gdp each region's sum of va, a year's worth."""
    ds = simulate(truce_collapse, paths=2, seed=1)
    eco = rk.load_economy(truce_collapse.scenario.economy)
    R, S = len(eco.regions), len(eco.sectors)
    share = (eco.value_added / eco.x).reshape(R, S).T
    np.testing.assert_allclose(ds.value_added_share.values, share, rtol=1e-15)
    np.testing.assert_allclose(ds.gdp.values, eco.value_added.reshape(R, S).sum(axis=1))
    assert ((share > 0) & (share < 1)).all()


@pytest.mark.parametrize(("resolution", "length"), [("quarter", 3), ("year", 12), ("horizon", 60)])
def test_coarser_resolutions_sum_the_months(truce_collapse, resolution, length):
    coarse = simulate(truce_collapse, paths=3, seed=4, resolution=resolution)
    monthly = simulate_monthly(truce_collapse, 4, 0, 3)
    n = 60 // length
    assert coarse.sizes["time"] == n
    assert coarse.attrs["resolution"] == resolution
    starts = np.datetime64("2026-12", "M") + np.arange(0, 60, length)
    np.testing.assert_array_equal(coarse.time.values, starts.astype("datetime64[ns]"))
    for name in ("loss", "credit_loss", "severity", "tension"):
        values = monthly[name]
        summed = values.reshape(3, n, length, *values.shape[2:]).sum(axis=2)
        assert coarse[name].dtype == np.float32
        np.testing.assert_allclose(coarse[name].values, summed, rtol=1e-6, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(coarse.weight.values, 1.0)


def test_periods_when_the_horizon_is_not_a_multiple():
    start = dt.date(2027, 11, 1)
    of_month, starts = periods(start, 7, "quarter")
    np.testing.assert_array_equal(of_month, [0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(
        starts, np.array(["2027-11-01", "2028-02-01", "2028-05-01"], dtype="datetime64[ns]")
    )
    of_month, starts = periods(start, 13, "year")
    np.testing.assert_array_equal(of_month, [0] * 12 + [1])
    np.testing.assert_array_equal(starts, np.array(["2027-11-01", "2028-11-01"], "datetime64[ns]"))
    of_month, starts = periods(start, 7, "horizon")
    np.testing.assert_array_equal(of_month, [0] * 7)
    np.testing.assert_array_equal(starts, np.array(["2027-11-01"], "datetime64[ns]"))
    of_month, starts = periods(start, 3, "month")
    np.testing.assert_array_equal(of_month, [0, 1, 2])
    assert starts.dtype == np.dtype("datetime64[ns]")


def test_short_last_period_in_the_cube(tiny_economy):
    """Horizon 7 by quarters: periods of 3, 3 and 1 months, each the sum of its months."""
    scenario = rk.Scenario(
        credit={"portfolio": "proxy"},  # the tiny economy has no library portfolio
        name="seven",
        start="2027-11",
        horizon_months=7,
        channels={
            "only": {
                "p_on": 0.3,
                "p_off": 0.2,
                "severity": {"median": 0.5, "dispersion": 0.5},
                "exposure": {"default": 0.2},
            }
        },
    )
    model = rk.compile_model(scenario, tiny_economy)
    coarse = simulate(model, paths=50, seed=6, resolution="quarter")
    monthly = simulate_monthly(model, 6, 0, 50)
    assert coarse.sizes["time"] == 3
    for name in ("loss", "severity", "tension"):
        v = monthly[name]
        summed = np.stack([v[:, 0:3].sum(1), v[:, 3:6].sum(1), v[:, 6]], axis=1)
        np.testing.assert_allclose(coarse[name].values, summed, rtol=1e-6, atol=1e-6, err_msg=name)
    assert coarse.loss.values.any()  # some path had an episode: the sums are not vacuous


def test_unknown_resolution():
    with pytest.raises(ValueError, match="resolution 'week' is not one of"):
        periods(dt.date(2027, 1, 1), 12, "week")
