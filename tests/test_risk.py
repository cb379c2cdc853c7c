"""Risk measures against independent computation (numpy's weighted quantile, direct integrals).

The cubes here hold known random numbers in the cube's schema (not model output), so every
figure has an obvious numpy counterpart.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rich.console import Console

import riskengine as rk
from riskengine.analysis import summaries
from riskengine.errors import CubeError
from riskengine.formatting import display_unit, format_amount
from riskengine.risk import check_levels, cumulative_loss_quantiles
from riskengine.schema import CUBE, build_dataset, periods, validate
from riskengine.testing import raise_if_dask_computes, write_cube
from riskengine.weighted import exceedance, mean_se, tail_stats, tail_weights

LEVELS = (0.9, 0.95, 0.99)


def known_cube(model, paths: int, resolution: str, weighted: bool, seed: int = 0) -> xr.Dataset:
    """A cube of lognormal losses, sparse channel activity and (optionally) random weights."""
    rng = np.random.default_rng(seed)
    T = len(periods(model.start, model.horizon, resolution)[1])
    S, R, C = len(model.sectors), len(model.regions), len(model.channels)
    B, G = len(model.banks), len(model.segments)
    severity = rng.random((paths, T, C)) * (rng.random((paths, T, C)) < 0.3)
    data = {
        "loss": rng.lognormal(0.0, 1.0, (paths, T, S, R)),
        # drawn with R columns as before the bank dim, so that the draws after it are unchanged
        "credit_loss": rng.lognormal(-2.0, 1.5, (paths, T, R))[..., :B],
        "severity": severity,
        "tension": rng.normal(size=(paths, T)),
        "weight": rng.lognormal(0.0, 0.7, paths) if weighted else np.ones(paths),
    }
    data = {k: v.astype(CUBE[k].dtype) for k, v in data.items()}
    names = ("loss_total", "credit_loss_total", "value_added_loss_total")
    data |= {name: np.empty((paths, B if name.startswith("credit") else R)) for name in names}
    segments = np.random.default_rng(seed + 1).lognormal(-2.0, 1.5, (paths, B, G))
    data["credit_loss_segment"] = segments.astype(np.float32)
    summaries(data["loss"], data["credit_loss"], model.arrays.value_added_share.reshape(R, S).T,
              data)  # fmt: skip
    return build_dataset(
        model, data, np.arange(paths), seed=seed, backend="test", resolution=resolution
    )


def es_by_integral(x: np.ndarray, w: np.ndarray, alpha: float) -> float:
    """ES as the mean of the quantile function over [alpha, 1], integrated atom by atom."""
    order = np.argsort(x)
    xs, ws = x[order], w[order] / w.sum()
    right = np.cumsum(ws)
    left = right - ws
    overlap = np.clip(np.minimum(right, 1.0) - np.maximum(left, alpha), 0.0, None)
    return float(overlap @ xs / (1.0 - alpha))


def np_var(x: np.ndarray, w: np.ndarray, alpha: float) -> float:
    return float(np.quantile(x, alpha, method="inverted_cdf", weights=w))


@pytest.fixture(scope="module", params=[False, True], ids=["unweighted", "weighted"])
def cube(request, truce_collapse):
    return known_cube(truce_collapse, paths=400, resolution="year", weighted=request.param)


@pytest.fixture(scope="module")
def summary(cube):
    return rk.risk_summary(cube, levels=LEVELS)


def columns(cube: xr.Dataset) -> dict[str, tuple[np.ndarray, dict]]:
    """Independent per-path totals of every group the summary covers, over the horizon.

    Summed in another order than riskengine's, so they may differ in the last bit: the tests
    compare to a relative 1e-12 (VaR on the same sample values is otherwise exact).
    """
    loss = cube.loss.values.astype(np.float64).sum(axis=1)  # (path, sector, region)
    credit = cube.credit_loss.values.astype(np.float64).sum(axis=1)
    out = {"total": (loss.sum(axis=(1, 2)), {}), "credit_total": (credit.sum(axis=1), {})}
    for j, r in enumerate(cube.region.values):
        out[f"region {r}"] = (loss[:, :, j].sum(axis=1), {"region": r})
    for j, b in enumerate(cube.bank.values):
        out[f"credit {b}"] = (credit[:, j], {"bank": b})
    for i, s in enumerate(cube.sector.values):
        out[f"sector {s}"] = (loss[:, i, :].sum(axis=1), {"sector": s})
    metal_chn = cube.loss.sel(sector="METAL", region="CHN").values.astype(np.float64).sum(axis=1)
    out["node METAL CHN"] = (metal_chn, {"sector": "METAL", "region": "CHN"})
    return out


def test_el_var_es_equal_independent_computation(cube, summary):
    w = cube.weight.values
    for name, (x, where) in columns(cube).items():
        group = name.split()[0]
        sel = summary.sel(where) if group == "node" else summary.sel({**where, "period": "horizon"})
        assert float(sel[f"{group}_EL"]) == pytest.approx(np.average(x, weights=w), rel=1e-12)
        for a in LEVELS:
            var = float(sel[f"{group}_VaR"].sel(level=a))
            assert var == pytest.approx(np_var(x, w, a), rel=1e-12), name
            es = float(sel[f"{group}_ES"].sel(level=a))
            assert es == pytest.approx(es_by_integral(x, w, a), rel=1e-10), name


def test_unweighted_es_is_mean_of_the_top_paths(truce_collapse):
    ds = known_cube(truce_collapse, paths=1000, resolution="horizon", weighted=False, seed=3)
    x = ds.loss.values.astype(np.float64).sum(axis=(1, 2, 3))
    s = rk.risk_summary(ds, levels=[0.99])
    assert float(s.total_ES.sel(period="horizon", level=0.99)) == pytest.approx(
        np.sort(x)[-10:].mean(), rel=1e-12
    )


def test_es_at_least_var_and_both_monotone_in_level(summary):
    for name in summary.data_vars:
        if name.endswith("_VaR"):
            var, es = summary[name], summary[name.replace("_VaR", "_ES")]
            assert bool((es >= var).all()), name
            assert bool((var.diff("level") >= 0).all()), name
            assert bool((es.diff("level") >= 0).all()), name


def test_per_year_figures_are_those_of_each_year(cube, summary):
    w = cube.weight.values
    assert list(summary.period.values) == ["horizon"] + [f"year {k}" for k in range(1, 6)]
    for k in range(5):
        x = cube.loss.values[:, k].astype(np.float64).sum(axis=(1, 2))
        year = summary.sel(period=f"year {k + 1}", level=0.95)
        assert float(year.total_VaR) == pytest.approx(np_var(x, w, 0.95), rel=1e-12)
        usa = cube.credit_loss.sel(bank="USA_banks").values[:, k].astype(np.float64)
        assert float(year.credit_VaR.sel(bank="USA_banks")) == pytest.approx(
            np_var(usa, w, 0.95), rel=1e-12
        )


def test_years_group_twelve_months_and_horizon_resolution_has_none(truce_collapse):
    monthly = known_cube(truce_collapse, paths=50, resolution="month", weighted=True)
    s = rk.risk_summary(monthly, levels=[0.9])
    year2 = monthly.loss.values[:, 12:24].astype(np.float64).sum(axis=(1, 2, 3))
    w = monthly.weight.values
    assert float(s.total_EL.sel(period="year 2")) == pytest.approx(np.average(year2, weights=w))
    whole = rk.risk_summary(
        known_cube(truce_collapse, paths=50, resolution="horizon", weighted=True), levels=[0.9]
    )
    assert list(whole.period.values) == ["horizon"]
    assert whole.attrs["per_year"].startswith("no")


def test_euler_contributions_sum_to_total_es(cube, summary):
    a = rk.attribution(cube, levels=LEVELS)
    total_es = summary.total_ES.sel(period="horizon")
    np.testing.assert_allclose(a.ES, total_es, rtol=1e-12)
    np.testing.assert_allclose(a.euler_region.sum("region"), total_es, rtol=1e-12)
    np.testing.assert_allclose(a.euler_sector.sum("sector"), total_es, rtol=1e-12)


def test_channel_attribution_equals_direct_computation(cube):
    a = rk.attribution(cube, levels=[0.95])
    w = cube.weight.values
    total = cube.loss.values.astype(np.float64).sum(axis=(1, 2, 3))
    var = np_var(total, w, 0.95)
    beyond, at = total > var, total == var  # continuous losses: one path at VaR

    def tail_mean(f: np.ndarray) -> float:
        """Acerbi-Tasche tail mean: paths beyond VaR, plus the VaR path's share beyond 95 %."""
        at_share = (w[~beyond].sum() / w.sum() - 0.95) / 0.05
        return w[beyond] @ f[beyond] / (0.05 * w.sum()) + at_share * f[at].mean()

    assert float(a.ES.sel(level=0.95)) == pytest.approx(tail_mean(total), rel=1e-12)
    for c in cube.channel.values:
        months = cube.severity.sel(channel=c).values.astype(np.float64).sum(axis=1)
        on = months > 0
        ch = a.sel(channel=c, level=0.95)
        assert float(ch.p_active) == pytest.approx(np.average(on, weights=w), rel=1e-12)
        assert float(ch.EL_active) == pytest.approx(np.average(total[on], weights=w[on]))
        assert float(ch.EL_inactive) == pytest.approx(np.average(total[~on], weights=w[~on]))
        assert float(ch.p_active_tail) == pytest.approx(tail_mean(on), rel=1e-12)
        assert float(ch.severity_months) == pytest.approx(np.average(months, weights=w))
        assert float(ch.severity_months_tail) == pytest.approx(tail_mean(months), rel=1e-12)


def test_exceedance_curve_matches_empirical(cube):
    e = rk.exceedance_curves(cube, n_points=50)
    w = cube.weight.values
    for name, (x, where) in columns(cube).items():
        group = name.split()[0]
        if group not in ("total", "region", "sector"):
            continue
        curve = e.sel(where)
        thresholds = curve[f"{group}_threshold"].values
        empirical = [np.average(x > t, weights=w) for t in thresholds]
        np.testing.assert_allclose(curve[f"{group}_probability"], empirical, atol=1e-12)
        assert bool((curve[f"{group}_lower"] <= curve[f"{group}_probability"]).all())
        assert bool((curve[f"{group}_upper"] >= curve[f"{group}_probability"]).all())
        assert thresholds[-1] == x.max()


def test_cumulative_quantiles_equal_numpy(truce_collapse):
    ds = known_cube(truce_collapse, paths=300, resolution="year", weighted=True)
    q = cumulative_loss_quantiles(ds, quantiles=[0.05, 0.5, 0.95])
    cumulative = ds.loss.sel(region="JPN").values.astype(np.float64).sum(axis=2).cumsum(axis=1)
    w = ds.weight.values
    for k in range(5):
        expected = [np_var(cumulative[:, k], w, a) for a in (0.05, 0.5, 0.95)]
        np.testing.assert_allclose(q.sel(region="JPN").isel(time=k), expected, rtol=1e-12)
    # each cumulative loss is at its period's end: 2027-12-01 ... 2031-12-01 for a 2026-12 start
    ends = q.period_end.values.astype("datetime64[M]").astype(str).tolist()
    assert ends == ["2027-12", "2028-12", "2029-12", "2030-12", "2031-12"]


# --- properties of the weighted statistics --------------------------------------------------

samples = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.floats(-1e6, 1e6)),
        arrays(np.float64, n, elements=st.floats(0.01, 100.0)),
    )
)
levels = st.lists(st.floats(0.01, 0.999), min_size=1, max_size=5).map(check_levels)


@settings(max_examples=200, deadline=None)
@given(samples, levels)
def test_properties_of_var_and_es(sample, lv):
    x, w = sample
    t = tail_stats(x, w, lv)
    for k, a in enumerate(lv):
        assert t.var[k] == np_var(x, w, a)
        assert t.es[k] == pytest.approx(es_by_integral(x, w, a), rel=1e-9, abs=1e-6)
        var, tau = tail_weights(x, w, a)
        assert var == t.var[k]
        assert tau.sum() == pytest.approx(1.0)
        assert tau @ x == pytest.approx(t.es[k], rel=1e-9, abs=1e-6)
        assert t.var_lower[k] <= t.var[k] <= t.var_upper[k]
    assert np.all(t.es >= t.var)  # exactly: ES is VaR plus a mean of non-negative excesses
    assert np.all(np.diff(t.var) >= 0)
    # Rounding errors scale with the sample's magnitude, not with ES's own (0 or subnormal).
    assert np.all(np.diff(t.es) >= -1e-12 * np.abs(x).max())


@settings(max_examples=100, deadline=None)
@given(samples)
def test_exceedance_is_one_minus_the_weighted_cdf(sample):
    x, w = sample
    e = exceedance(x, w, n_points=10)
    empirical = [np.average(x > t, weights=w) for t in e.threshold]
    np.testing.assert_allclose(e.probability, empirical, atol=1e-12)
    assert np.all(np.diff(e.threshold) >= 0) and np.all(np.diff(e.probability) <= 1e-12)


# --- standard errors are the sampling spread of the estimates --------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "importance-sampled"])
def test_standard_errors_match_the_spread_over_replications(weighted):
    """Over 800 independent samples, the mean reported se equals the estimates' std.

    Target: standard lognormal losses. Weighted: draws from a lognormal with a heavier scale
    (1.3), weighted by the likelihood ratio, as importance sampling will. The std of a std from
    800 replications has relative error about 1/sqrt(1600) = 2.5 %; Woodruff's se runs 5-8 %
    high at these sizes (measured over 1500 replications): 20 % leaves 4-5 noise errors.
    """
    rng = np.random.default_rng(42)
    n, reps, lv = 4000, 800, np.array([0.95, 0.99])
    est = {k: np.empty((reps, 2)) for k in ("var", "es", "var_se", "es_se")}
    el, el_se = np.empty(reps), np.empty(reps)
    for r in range(reps):
        if weighted:
            z = rng.normal(0.0, 1.3, n)
            w = np.exp(-0.5 * z**2 + 0.5 * (z / 1.3) ** 2) * 1.3
        else:
            z, w = rng.normal(0.0, 1.0, n), np.ones(n)
        x = np.exp(z)
        t = tail_stats(x, w, lv)
        for k in est:
            est[k][r] = getattr(t, k)
        el[r], el_se[r] = mean_se(x, w)
    for k in ("var", "es"):
        np.testing.assert_allclose(est[f"{k}_se"].mean(axis=0), est[k].std(axis=0), rtol=0.2)
    assert el_se.mean() == pytest.approx(el.std(), rel=0.1)
    # and the estimates are unbiased to within their standard error
    exact_var = np.exp([1.6448536269514722, 2.3263478740408408])
    np.testing.assert_allclose(est["var"].mean(axis=0), exact_var, rtol=0.02)


# --- streaming: every chunking gives the in-memory figures ----------------------------------

CHUNKINGS = [None, 250, 97, 13]  # None: in memory (one chunk of CHUNK_PATHS)


@pytest.fixture(scope="module")
def streamed(truce_collapse, tmp_path_factory):
    """A weighted cube with atoms (a tenth of the paths lose nothing) and its analysis at every
    chunking: in memory, and lazily from zarr stores cut into chunks of 250, 97 and 13 paths."""
    ds = known_cube(truce_collapse, paths=1000, resolution="year", weighted=True, seed=11)
    nothing = np.arange(1000) % 10 == 0
    for name in ("loss", "credit_loss", "severity"):
        ds[name].values[nothing] = 0
    ds["loss_total"].values[nothing] = 0
    ds["credit_loss_total"].values[nothing] = 0
    results = {}
    for chunk in CHUNKINGS:
        if chunk is None:
            cube = ds
        else:
            store = tmp_path_factory.mktemp("streamed") / f"c{chunk}.zarr"
            write_cube(ds.chunk({"path": chunk}), store)
            cube = xr.open_zarr(store)
        results[chunk] = rk.analyse(cube, levels=LEVELS, exceedance_points=40,
                                    fan_quantiles=(0.05, 0.5, 0.95), attribution_levels=LEVELS,
                                    activity=True)  # fmt: skip
    return ds, results


EXACT = ("_VaR", "_VaR_lower", "_VaR_upper", "_threshold")  # order statistics: the same bits


@pytest.mark.parametrize("chunk", CHUNKINGS[1:])
def test_every_chunking_gives_the_in_memory_figures(streamed, chunk):
    _, results = streamed
    for part in ("summary", "exceedance", "attribution"):
        memory, lazy = results[None][part], results[chunk][part]
        for name in memory.data_vars:
            if name.endswith(EXACT):
                np.testing.assert_array_equal(lazy[name], memory[name], err_msg=name)
            else:
                np.testing.assert_allclose(lazy[name], memory[name], rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(results[chunk]["fan"], results[None]["fan"])
    np.testing.assert_allclose(results[chunk]["activity"], results[None]["activity"], rtol=1e-12)


def test_streaming_equals_the_in_memory_reference(streamed):
    """Against riskengine.weighted on the very same per-path columns (the kernel's sums):
    quantiles and their Woodruff bounds bit for bit, every sum to rounding."""
    from riskengine.analysis import _columns, layout

    ds, results = streamed
    lay = layout(ds, ["total", "region", "sector", "node", "credit", "credit_total"])
    X = _columns(lay, {n: ds[n].values for n in lay.variables}, 0, ds.sizes["path"])
    w = ds.weight.values
    s = results[97]["summary"]
    lv = np.array(LEVELS)
    for group, g in lay.groups.items():
        index = g.offset + np.arange(g.size).reshape(g.shape)
        for pos in np.ndindex(*g.shape):
            x = X[:, index[pos]]
            where = {d: g.coords[d][i] for d, i in zip(g.dims, pos, strict=True)}
            sel = s.sel(where)
            t = tail_stats(x, w, lv)
            np.testing.assert_array_equal(sel[f"{group}_VaR"], t.var)
            np.testing.assert_array_equal(sel[f"{group}_VaR_lower"], t.var_lower)
            np.testing.assert_array_equal(sel[f"{group}_VaR_upper"], t.var_upper)
            np.testing.assert_allclose(sel[f"{group}_ES"], t.es, rtol=1e-12)
            np.testing.assert_allclose(sel[f"{group}_ES_se"], t.es_se, rtol=1e-9)
            m, se = mean_se(x, w)
            np.testing.assert_allclose(sel[f"{group}_EL"], m, rtol=1e-12)
            np.testing.assert_allclose(sel[f"{group}_EL_se"], se, rtol=1e-9)
    total = X[:, lay.groups["total"].offset]
    curve = exceedance(total, w, n_points=40)
    e = results[13]["exceedance"]
    np.testing.assert_array_equal(e.total_threshold, curve.threshold)
    for field in ("probability", "se", "lower", "upper"):
        np.testing.assert_allclose(e[f"total_{field}"], getattr(curve, field), rtol=1e-9,
                                   atol=1e-15, err_msg=field)  # fmt: skip
    a = results[250]["attribution"]
    region = X[:, lay.groups["region"].offset : lay.groups["region"].offset + 7]
    for k, alpha in enumerate(LEVELS):
        _, tau = tail_weights(total, w, alpha)
        np.testing.assert_allclose(a.euler_region.isel(level=k), tau @ region, rtol=1e-12)
        np.testing.assert_allclose(a.ES.isel(level=k), tau @ total, rtol=1e-12)


def test_the_analysis_reads_a_lazy_cube_in_a_few_passes(streamed, tmp_path):
    """Each pass is one dask compute over the chunks: a bounded number, whatever the paths."""
    ds, _ = streamed
    store = tmp_path / "c.zarr"
    write_cube(ds.chunk({"path": 100}), store)
    asked = {"levels": LEVELS, "exceedance_points": 40, "fan_quantiles": (0.05, 0.5, 0.95)}
    with raise_if_dask_computes(max_computes=8):
        rk.analyse(xr.open_zarr(store), **asked, attribution_levels=LEVELS, activity=True)


# --- input checks and the table --------------------------------------------------------------


def test_bad_levels_and_non_cubes_are_refused(cube):
    for bad in ([], [0.0], [1.0], [0.5, 1.2]):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            rk.risk_summary(cube, levels=bad)
    with pytest.raises(CubeError, match="'weight' is missing"):
        validate(cube.drop_vars("weight"))
    with pytest.raises(CubeError, match="'loss' has dims"):
        validate(cube.assign(loss=cube.loss.transpose("time", ...)))
    corrupt = cube.copy(deep=True)
    corrupt.loss[3, 1, 2, 0] = np.nan
    with pytest.raises(CubeError, match="holds NaN or infinite values"):
        rk.risk_summary(corrupt)


def test_risk_table_shows_the_summary(cube, summary):
    table = rk.risk_table(cube, levels=[0.99], summary=summary)
    assert [c.header for c in table.columns] == [
        "Region",
        "Value added EL",
        "Value added VaR 99 %",
        "Output EL",
        "Output VaR 99 %",
    ]
    cells = {col.header: list(col.cells) for col in table.columns}
    assert cells["Region"] == [*cube.region.values, "Total"]
    s = summary.sel(period="horizon", level=0.99)
    scale, unit = display_unit(summary.attrs["units"])
    assert unit == "USD bn (2023 prices)" and scale == 1e-3  # the cube is in USD million
    assert cells["Output EL"][-1] == format_amount(scale * float(s.total_EL))
    # value added lost over the horizon as % of a year's GDP, per year
    years = cube.attrs["horizon_months"] / 12
    usa = float(s.va_region_EL.sel(region="USA")) / (float(s.gdp.sel(region="USA")) * years)
    assert cells["Value added EL"][0] == format_amount(100 * usa)
    world = float(s.va_total_EL) / (float(s.gdp.sum()) * years)
    assert cells["Value added EL"][-1] == format_amount(100 * world)
    banks = rk.formatting.bank_table(cube, levels=[0.99], summary=summary)
    assert [c.header for c in banks.columns] == [
        "Bank",
        "Credit EL",
        "Credit VaR 99 %",
        "CET1 start",
        "CET1 depletion EL",
        "CET1 depletion VaR 99 %",
    ]
    cells = {col.header: list(col.cells) for col in banks.columns}
    assert cells["Bank"] == [*cube.bank.values, "All banks"]
    assert cells["Credit VaR 99 %"][0] == (
        f"{format_amount(scale * float(s.credit_VaR.sel(bank='USA_banks')))} ± "
        f"{format_amount(scale * float(s.credit_VaR_se.sel(bank='USA_banks')))}"
    )
    rwa = float(cube.rwa.sel(bank="USA_banks"))
    assert cells["CET1 depletion EL"][0] == format_amount(
        float(s.credit_EL.sel(bank="USA_banks")) * 1e4 / rwa
    )
    assert cells["CET1 start"][0] == f"{100 * float(cube.cet1.sel(bank='USA_banks')) / rwa:.2f} %"


def test_the_risk_table_of_a_run_reads_its_summaries_not_the_cube(tmp_path):
    """A run writes per-path totals beside the cube; the table after a run reads those (the
    cube's loss chunks are deleted here, and the table is the same)."""
    store = tmp_path / "run.zarr"
    rk.simulate("truce_collapse", 300, 5, store=store, block_paths=100, resolution="year")
    text = Console(width=150, file=io.StringIO())
    text.print(rk.risk_table(rk.open_run(store)))
    before = text.file.getvalue()
    shutil.rmtree(store / "loss" / "c")
    shutil.rmtree(store / "credit_loss" / "c")
    text = Console(width=150, file=io.StringIO())
    text.print(rk.risk_table(rk.open_run(store)))
    assert text.file.getvalue() == before
    # the figures per year need the cube, whose chunks are gone (they read as missing values)
    with pytest.raises(CubeError, match="NaN or infinite values"):
        rk.risk_summary(rk.open_run(store), levels=[0.99], groups=["total"])


def test_escalation_odds_closed_form(tiny_economy):
    """One channel, loading 0, p_off 0: P(bitten by month 12 k) = 1 - (1 - p_on)^(12 k)."""
    scenario = rk.Scenario(
        credit={"portfolio": "proxy"},  # the tiny economy has no library portfolio
        name="odds", start="2027-01", horizon_months=36,
        channels={"only": {"p_on": 0.03, "p_off": 0.0, "severity": {"median": 0.5},
                           "exposure": 0.1}},
    )  # fmt: skip
    model = rk.compile_model(scenario, tiny_economy)
    paths = 20_000
    for resolution in ("month", "quarter", "year"):
        ds = rk.simulate(model, paths, seed=5, backend="reference", resolution=resolution)
        odds = rk.escalation_odds(ds, years=(1, 2, 3))
        for year in (1, 2, 3):
            p = 1 - (1 - 0.03) ** (12 * year)
            got = float(odds.p_bite.sel(channel="only", year=year))
            assert abs(got - p) < 5 * np.sqrt(p * (1 - p) / paths), (resolution, year)
            assert float(odds.p_bite.sel(channel="any", year=year)) == got  # one channel
            assert (
                odds.lower.sel(channel="only", year=year)
                <= got
                <= odds.upper.sel(channel="only", year=year)
            )


def test_escalation_odds_need_periods_that_end_at_the_years(truce_collapse):
    ds = rk.simulate(truce_collapse, 20, 1, backend="reference", resolution="horizon")
    with pytest.raises(ValueError, match="ends a period of the cube"):
        rk.escalation_odds(ds, years=(1,))
    assert float(rk.escalation_odds(ds, years=(5,)).p_bite.sel(channel="any", year=5)) > 0
    with pytest.raises(ValueError, match="within the horizon"):
        rk.escalation_odds(rk.simulate(truce_collapse, 5, 1, backend="reference"), years=(6,))


def test_a_cube_without_value_added_is_refused_not_read_as_output(truce_collapse):
    """A cube written before value added was part of it (model v1) has no value_added_share:
    the value-added figures are refused in one line, never computed from gross output."""
    ds = rk.simulate(truce_collapse, 30, 2, backend="reference")
    old = ds.drop_vars(["value_added_share", "gdp", "value_added_loss_total"])
    with pytest.raises(CubeError, match="written before value added was part of the cube"):
        rk.risk_table(old)
    summary = rk.risk_summary(old, levels=[0.9], groups=["total", "region", "credit"])
    assert float(summary.total_EL.sel(period="horizon")) > 0
