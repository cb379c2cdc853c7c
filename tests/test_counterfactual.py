"""Paired counterfactuals and Shapley attribution (docs/model.md section 10): additivity in the
linear case, Shapley values that sum to the total, paired against unpaired standard errors,
common random numbers, the command line, the report and bad input."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import xarray as xr
from dask_procs import riskengine

import riskengine as rk
from riskengine.counterfactual import counterfactual, open_comparison, shapley, switched_off
from riskengine.errors import RunError
from riskengine.scenario import Scenario

SEED = 20261203


@pytest.fixture(scope="module")
def linear():
    """truce_collapse without stocks or retaliation and at a fifth of its exposure: no clip
    binds, so channel effects add up path by path (docs/model.md, closed form 7)."""
    data = rk.load_scenario("truce_collapse").model_dump(exclude_unset=True)
    data["retaliation"] = {}
    for ch in data["channels"].values():
        ch.pop("stock", None)
    model = rk.compile_model(Scenario(**data))
    a = model.arrays._replace(exposure=model.arrays.exposure * 0.2)
    return dataclasses.replace(model, arrays=a)


def test_channel_off_differences_add_up_to_the_total_path_by_path(linear):
    channels = list(linear.channels)
    ds = counterfactual(linear, 300, SEED, off=channels, shapley_values=True)
    base = ds.loss_total.sel(variant="base").values
    parts = sum(base - ds.loss_total.sel(variant=f"off:{c}").values for c in channels)
    np.testing.assert_allclose(parts, base, rtol=2e-5, atol=2e-5 * np.abs(base).max())
    # linear: each channel's Shapley value of the output losses' EL is its own effect, base -
    # off (credit losses are not linear in the output loss: the PDs are probits)
    output = ds.figure.values[ds.figure.values != "credit"]
    np.testing.assert_allclose(
        ds.shapley_EL.sel(figure=output).values,
        ds.difference_EL.sel(variant=[f"off:{c}" for c in channels], figure=output).values,
        rtol=1e-4,
    )


def test_shapley_values_sum_to_the_total(truce_collapse):
    ds = counterfactual(truce_collapse, 400, SEED, shapley_values=True)
    assert ds.attrs["shapley"] == "exact over all 16 subsets"
    for m in ("EL", "VaR", "ES"):
        total = ds[m].sel(variant="base")  # v(none) = 0: no channel hits anything
        np.testing.assert_allclose(ds[f"shapley_{m}"].sum("channel"), total, rtol=1e-12)
    per_path = ds.shapley_loss.sum("channel").values
    np.testing.assert_allclose(per_path, ds.loss_total.sel(variant="base").sum("region"),
                               rtol=1e-12, atol=1e-6)  # fmt: skip
    # sampled orders (forced here with fewer channels than the exact limit) telescope too
    sampled = counterfactual(truce_collapse, 400, SEED, shapley_values=True, exact_up_to=2)
    assert sampled.attrs["shapley"].startswith("64 random orders")
    np.testing.assert_allclose(sampled.shapley_VaR.sum("channel"),
                               ds.VaR.sel(variant="base"), rtol=1e-12)  # fmt: skip


def test_shapley_over_every_order_is_the_subset_formula():
    """The average over all C! orders equals the exact formula over subsets (C = 3)."""
    gen = np.random.default_rng(1)
    names = ["a", "b", "c"]
    values = {frozenset(s): gen.normal(size=2) for k in range(4)
              for s in itertools.combinations(names, k)}  # fmt: skip
    orders = np.array(list(itertools.permutations(range(3))))
    assert len(orders) == math.factorial(3)
    np.testing.assert_allclose(shapley(values, names, orders), shapley(values, names))


def test_paired_standard_error_is_a_tenth_of_the_unpaired(truce_collapse):
    """Common random numbers: a channel's effect on a region's EL is estimated from the paths'
    differences, whose spread is far below two independent runs'. For the dollar and chips
    channels on the United States' loss the paired standard error is under a tenth of the
    unpaired one (docs/model.md section 10 gives every channel's ratio)."""
    ds = counterfactual(truce_collapse, 4000, SEED, off=["dollar", "chips"])
    ratio = ds.difference_EL_se / ds.difference_EL_se_unpaired
    for v in ("off:dollar", "off:chips"):
        assert ratio.sel(variant=v, figure="USA") < 0.1, v
    assert ratio.sel(variant="off:dollar", figure="total") < 0.15


def test_a_variant_is_a_plain_run_of_the_switched_off_model(truce_collapse):
    """Every variant runs paths 0..P-1 of the seed: the base equals a plain run's per-path
    summaries bit for bit, a channel switched off equals the run of that model, and the block
    size changes nothing."""
    ds = counterfactual(truce_collapse, 96, SEED, off="tariffs", block_paths=17)
    plain = rk.simulate(truce_collapse, 96, SEED, resolution="horizon")
    assert np.array_equal(ds.loss_total.sel(variant="base").values,
                          plain.loss_total.values.astype(np.float64))  # fmt: skip
    off = rk.simulate(switched_off(truce_collapse, ["tariffs"]), 96, SEED, resolution="horizon")
    assert np.array_equal(ds.credit_loss_total.sel(variant="off:tariffs").values,
                          off.credit_loss_total.values)  # fmt: skip
    # the switched-off channel's regimes run as before: its severity is unchanged
    assert np.array_equal(off.severity.values, plain.severity.values)
    other = counterfactual(truce_collapse, 96, SEED, off=["tariffs"], block_paths=40)
    for name in ds.data_vars:
        assert np.array_equal(ds[name].values, other[name].values), name


@pytest.mark.cluster
def test_a_comparison_is_bitwise_identical_on_local_worker_processes(truce_collapse):
    from riskengine.cluster import local_cluster

    threads = counterfactual(truce_collapse, 200, SEED, off=["chips"], shapley_values=True)
    with local_cluster(2) as client:
        procs = counterfactual(truce_collapse, 200, SEED, off=["chips"], shapley_values=True,
                               client=client, block_paths=64)  # fmt: skip
    xr.testing.assert_identical(procs, threads)


def test_against_a_second_scenario(truce_collapse):
    ds = counterfactual(truce_collapse, 200, SEED, against="truce_holds")
    assert ds.variant.values.tolist() == ["base", "against:truce_holds"]
    holds = rk.simulate("truce_holds", 200, SEED, resolution="horizon")
    np.testing.assert_allclose(
        ds.EL.sel(variant="against:truce_holds", figure="total"),
        holds.loss_total.sum("region").mean(),
        rtol=1e-9,
    )


def test_bad_comparisons_are_refused(truce_collapse):
    with pytest.raises(RunError, match="--off silver: the scenario has no such channel"):
        counterfactual(truce_collapse, 10, off=["silver"])
    with pytest.raises(RunError, match="nothing to compare"):
        counterfactual(truce_collapse, 10)
    with pytest.raises(RunError, match="twice"):
        counterfactual(truce_collapse, 10, off=["dollar", "dollar"])
    short = rk.load_scenario("truce_holds").model_copy(update={"horizon_months": 24})
    with pytest.raises(RunError, match="start or horizon differs"):
        counterfactual(truce_collapse, 10, against=short)
    zero = rk.Tilt.zeros(truce_collapse)
    tilted = rk.Tilt(zero.head + 0.5, zero.monthly, zero.cycle).apply(truce_collapse)
    with pytest.raises(RunError, match="untilted"):
        counterfactual(tilted, 10, off=["dollar"])


def test_cli_compare_and_report(tmp_path):
    store = tmp_path / "cmp.zarr"
    args = ("compare", "truce_collapse", "--paths", "300", "--out", store, "--off", "dollar",
            "--shapley", "--seed", "3")  # fmt: skip
    proc = riskengine(*args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Shapley attribution of the total output loss" in out
    assert "off:dollar" in out
    ds = open_comparison(store)
    assert ds.sizes["channel"] == 4 and ds.attrs["paths"] == 300
    # the store is not replaced without --overwrite, and an unknown channel is one line
    before = sorted(p.name for p in store.iterdir())
    again = riskengine(*args)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 2 and err.strip().count("\n") == 0
    assert "a comparison store exists there; use --overwrite to replace it" in err
    assert sorted(p.name for p in store.iterdir()) == before
    bad = riskengine("compare", "truce_collapse", "--paths", "10", "--out", tmp_path / "b.zarr",
                     "--off", "silver")  # fmt: skip
    _, err = bad.communicate(timeout=300)
    assert bad.returncode == 2 and "silver" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "b.zarr").exists()
    report = riskengine("report", store, "--out", tmp_path / "rep")
    out, err = report.communicate(timeout=300)
    assert report.returncode == 0, err
    assert (tmp_path / "rep" / "waterfall.png").stat().st_size > 10_000
    assert "Shapley waterfall" in (tmp_path / "rep" / "index.html").read_text()


def test_the_bootstrap_statistics_are_the_risk_measures_at_equal_weights():
    """The bootstrap's vectorised VaR and ES equal riskengine.weighted.tail_stats with weights
    1, the statistics every risk measure reports."""
    from riskengine.counterfactual import _var_es
    from riskengine.weighted import tail_stats

    gen = np.random.default_rng(3)
    x = np.concatenate([gen.lognormal(size=(997, 3)), np.zeros((3, 3))])  # an atom at 0
    levels = np.array([0.5, 0.95, 0.99, 0.999])
    var, es = _var_es(x.T, levels)
    for j in range(3):
        t = tail_stats(x[:, j], np.ones(len(x)), levels)
        np.testing.assert_array_equal(var[j], t.var)
        np.testing.assert_allclose(es[j], t.es, rtol=1e-12)
