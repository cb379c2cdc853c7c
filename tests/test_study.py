"""Studies: distributions in scenario files, designs and indices (Ishigami), the closed form of a
linear case on the real model, bitwise identity across block sizes, workers and a resume, and the
command line."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from dask_procs import riskengine, wait_for

import riskengine as rk
from riskengine.distributions import Distribution
from riskengine.errors import RunError, ScenarioError
from riskengine.scenario import builtin_scenarios
from riskengine.sensitivity import design, indices
from riskengine.studies import plan_study, point_model, study, study_indices
from riskengine.study_store import SAMPLE_DONE
from riskengine.uncertainty import field_range, find_parameters, scenario_at

pytestmark = pytest.mark.timeout(600)

SEED = 3


# --- the sensitivity machinery, with the Ishigami function plugged in as the model ----------


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def test_ishigami_indices_match_their_closed_forms_within_the_bootstrap_intervals():
    # Closed forms for a = 7, b = 0.1, x_i ~ U(-pi, pi) (Ishigami and Homma 1990; Sobol' 1999).
    a, b = 7.0, 0.1
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * math.pi**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    s1 = np.array([v1 / var, v2 / var, 0.0, 0.0])
    st = np.array([(v1 + v13) / var, v2 / var, v13 / var, 0.0])
    np.testing.assert_allclose(s1[:3], [0.314, 0.442, 0.0], atol=1e-3)
    np.testing.assert_allclose(st[2], 0.244, atol=1e-3)
    d = design(("x1", "x2", "x3", "dummy"), "sobol", 4096, seed=SEED)
    y = ishigami(-math.pi + 2 * math.pi * d.unit)
    ix = indices(d, y)
    assert np.all(np.abs(ix.S1.values - s1) <= ix.S1_conf.values + 1e-12), ix
    assert np.all(np.abs(ix.ST.values - st) <= ix.ST_conf.values + 1e-12), ix
    assert abs(float(ix.ST.sel(parameter="dummy"))) < 1e-3  # a parameter the model ignores
    assert float(ix.ST.sel(parameter="x3")) > 0.2 and abs(float(ix.S1.sel(parameter="x3"))) < 0.05
    # the bootstrap is seeded: the same inputs give the same intervals
    xr.testing.assert_identical(ix, indices(d, y))


def test_morris_screening_ranks_the_ignored_input_last():
    d = design(("x1", "x2", "x3", "dummy"), "morris", 40, seed=SEED)
    assert d.unit.shape == (40 * 5, 4)
    ix = indices(d, ishigami(-math.pi + 2 * math.pi * d.unit))
    assert float(ix.mu_star.sel(parameter="dummy")) == 0.0
    assert min(ix.mu_star.values[:3]) > 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((("a",), "lhs", 8), "design 'lhs' is unknown"),
        (((), "sobol", 8), "no uncertain parameter"),
        ((("a",), "sobol", 12), "samples 12: a Sobol design needs a power of 2 (e.g. 8 or 16)"),
        ((("a",), "sobol", 1), "samples must be an integer >= 2"),
    ],
)
def test_bad_designs_are_refused(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        design(*args, seed=0)


# --- distributions ------------------------------------------------------------------------


def test_distributions_map_the_unit_interval_within_their_bounds():
    u = np.linspace(0, 1, 101)
    tri = Distribution(dist="triangular", low=0.01, mode=0.02, high=0.05)
    assert tri.ppf(0).item() == 0.01 and tri.ppf(1).item() == 0.05
    assert np.all(np.diff(tri.ppf(u)) >= 0)
    normal = Distribution(dist="normal", mean=0.9, sd=0.1).bounded(0.0, 1.0, "phi")
    x = normal.ppf(u)
    assert x.min() >= 0.0 and x.max() <= 1.0 and normal.ppf(1).item() == 1.0
    logn = Distribution(dist="lognormal", median=1.0, sigma=0.5)
    np.testing.assert_allclose(logn.ppf(0.5), 1.0)
    mean, var = logn.moments()  # untruncated: exp(s^2/2), (exp(s^2) - 1) exp(s^2)
    np.testing.assert_allclose(mean, math.exp(0.125), rtol=1e-4)
    np.testing.assert_allclose(var, (math.exp(0.25) - 1) * math.exp(0.25), rtol=1e-3)
    beta = Distribution(dist="beta", a=2, b=5)
    np.testing.assert_allclose(beta.moments(), (2 / 7, 10 / (49 * 8)), rtol=1e-8)


def test_field_ranges_come_from_the_scenario_schema():
    assert field_range(("tension", "phi")) == (0.0, 1.0, False, True)
    assert field_range(("tension", "start")) == (-10.0, 10.0, False, False)
    assert field_range(("propagation", "recovery_speed", "default")) == (0.0, 1.0, True, False)
    region = ("channels", "x", "exposure", "regions", "USA")
    assert field_range(region) == (0.0, math.inf, False, False)
    assert field_range(("correlation", "a", "b")) == (-1.0, 1.0, True, True)
    assert field_range(("channels", "x", "schedule", 0, "severity")) == (0.0, 1.0, False, False)


def _library_data(name: str = "truce_collapse") -> dict:
    return yaml.safe_load(builtin_scenarios()[name].read_text())


def test_a_scenario_with_distributions_runs_its_nominal_values_exactly():
    """truce_collapse writes its judged ranges with nominal = the value a plain run used before:
    its model is the model of the same file with each distribution replaced by that number."""
    sc = rk.load_scenario("truce_collapse")
    assert len(sc.parameters) == 10
    plain, found = find_parameters(_library_data(), "truce_collapse")
    assert [p.name for p in found] == [p.name for p in sc.parameters]
    assert plain["tension"]["phi"] == 0.9 and plain["channels"]["chips"]["p_on"] == 0.02
    a = rk.compile_model(sc).arrays
    b = rk.compile_model(rk.Scenario.model_validate(plain)).arrays
    for name, x in a._asdict().items():
        np.testing.assert_array_equal(x, getattr(b, name), err_msg=name)


def _write(tmp_path, data: dict, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["channels"]["chips"].update(p_on={"dist": "gamma", "a": 1}),
            "channels.chips.p_on.dist: Input should be 'uniform'",
        ),
        (
            lambda d: d["channels"]["chips"].update(p_on={"dist": "triangular", "low": 0.1}),
            "a triangular distribution needs low, mode, high",
        ),
        (
            lambda d: d["channels"]["chips"].update(
                p_on={"dist": "uniform", "low": 0.5, "high": 1.5}
            ),
            "channels.chips.p_on: the uniform distribution on [0.5, 1.5] leaves the valid range "
            "[0, 1]; narrow low and high",
        ),
        (
            lambda d: d["channels"]["chips"].update(p_on={"dist": "normal", "mean": 5, "sd": 0.1}),
            "puts almost no probability",
        ),
        (
            lambda d: d.update(description={"dist": "uniform", "low": 0, "high": 1}),
            "description: not a scenario number",
        ),
        (
            lambda d: d["channels"]["chips"].update(
                p_on={"dist": "uniform", "low": 0.1, "high": 0.2, "sd": 1}
            ),
            "a uniform distribution takes low, high (and nominal), not sd",
        ),
        (
            lambda d: d.update(
                uncertainty={
                    "groups": {
                        "g": {
                            "scale": ["channels.chips.buffer_months"],
                            "by": {"dist": "uniform", "low": 0.5, "high": 2},
                        }
                    }
                }
            ),
            "uncertainty.groups.g.scale.0: 'channels.chips.buffer_months' is not given in the file",
        ),
        (
            lambda d: d.update(
                uncertainty={
                    "groups": {
                        "g": {
                            "scale": ["tension.phi"],
                            "by": {"dist": "uniform", "low": 0.5, "high": 2},
                        }
                    }
                }
            ),
            "uncertainty.groups.g: scales tension.phi, which tension.phi sets already",
        ),
        (
            lambda d: d.update(
                uncertainty={
                    "groups": {
                        "g": {
                            "scale": ["tension"],
                            "by": {"dist": "uniform", "low": 0.5, "high": 2, "nominal": 1.2},
                        }
                    }
                }
            ),
            "uncertainty.groups.g.by.nominal: a group's factor is 1 in a plain run; drop nominal",
        ),
        (
            lambda d: d.update(
                uncertainty={
                    "groups": {
                        "g": {
                            "scale": ["channels.chips.p_off"],
                            "by": {"dist": "uniform", "low": 0.5, "high": 50},
                        }
                    }
                }
            ),
            "uncertainty.groups.g (its factor keeps every value it scales valid): the uniform "
            "distribution on [0.5, 50] leaves the valid range [0, 33.3333]",
        ),
        (
            lambda d: d.update(uncertainty={"exposure": "inner"}),
            "uncertainty.exposure: Input should be 'outer' or 'per_path'",
        ),
    ],
)
def test_bad_distributions_are_one_line_errors_naming_the_field(tmp_path, edit, message):
    data = _library_data()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(ScenarioError) as err:
        rk.load_scenario(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(path))


def test_a_group_scales_every_value_it_names_and_is_truncated_to_keep_them_valid(tmp_path):
    data = _library_data()
    data["uncertainty"] = {"groups": {"re_exposure": {
        "scale": ["channels.rare_earths.exposure"],
        "by": {"dist": "lognormal", "median": 1.0, "sigma": 0.5}}}}  # fmt: skip
    sc = rk.load_scenario(_write(tmp_path, data))
    group = sc.parameters[-1]
    assert group.name == "re_exposure" and group.is_factor
    # the largest rare-earth exposure is TREQ 0.35 (times region factors <= 1): k <= 1 / 0.35
    assert group.distribution.high == pytest.approx(1 / 0.35)
    values = [p.distribution.nominal_value for p in sc.parameters[:-1]] + [2.0]
    point = scenario_at(sc, sc.parameters, values)
    e = point.channels["rare_earths"].exposure
    assert e.sectors["TREQ"] == 0.7 and e.sectors["CHEM"] == 0.1 and e.regions["CHN"] == 0.2
    # a factor at its top keeps every exposure in [0, 1]
    top = scenario_at(sc, sc.parameters, [*values[:-1], group.values(np.array(1.0)).item()])
    assert rk.compile_model(top).arrays.exposure.max() <= 1.0


# --- the linear case on the real model ------------------------------------------------------


def _linear_scenario(tmp_path):
    """truce_collapse at its nominal values without stocks or per-path exposure multipliers,
    with one uniform factor k_c in [0.5, 1.5] on each channel's exposure table."""
    data, _ = find_parameters(_library_data(), "truce_collapse")
    for c in data["channels"].values():
        c.pop("stock", None)
    data.pop("exposure_uncertainty")
    data["uncertainty"] = {"exposure": "per_path", "groups": {
        f"k_{c}": {"scale": [f"channels.{c}.exposure"],
                   "by": {"dist": "uniform", "low": 0.5, "high": 1.5}}
        for c in data["channels"]}}  # fmt: skip
    return rk.load_scenario(_write(tmp_path, data, "linear.yaml"))


def test_linear_case_indices_equal_their_closed_form(tmp_path):
    """Where no clip binds and no stocks are held, EL is linear in the exposure factors k_c:
    EL(k) = sum_c k_c EL_c, so S_c = EL_c^2 Var(k_c) / sum_c EL_c^2 Var(k_c) (first-order and
    total alike: no interactions)."""
    sc = _linear_scenario(tmp_path)
    paths = 300
    ds = study(sc, samples=64, paths=paths, seed=SEED)
    plan = plan_study(sc, 64, seed=SEED)
    names = [p.name for p in plan.parameters]
    assert names == [f"k_{c}" for c in sc.channels]
    el_c = []
    for j in range(len(names)):  # EL of each channel's exposure alone (k_c = 1, others 0)
        one = scenario_at(sc, plan.parameters, np.eye(len(names))[j])
        run = rk.simulate(one, paths, SEED, resolution="horizon")
        el_c.append(float(run.loss_total.sum("region").mean()))
    el_c = np.array(el_c)
    k = ds.value.values
    # linear path by path in the factors (common random numbers): EL at every point
    np.testing.assert_allclose(ds.total_EL.values, k @ el_c, rtol=1e-5)
    var_k = np.array([p.distribution.moments()[1] for p in plan.parameters])
    np.testing.assert_allclose(var_k, 1 / 12, rtol=1e-9)
    closed = el_c**2 * var_k / np.sum(el_c**2 * var_k)
    ix = study_indices(ds, ["total_EL"])
    for stat in ("S1", "ST"):
        got, half = ix[f"total_EL_{stat}"].values, ix[f"total_EL_{stat}_conf"].values
        assert np.all(np.abs(got - closed) <= half), (stat, got, closed, half)
    assert closed.max() > 0.5  # the test has a dominant channel to find


# --- one dask job: bitwise across block sizes, workers, schedulers and a resume --------------


@pytest.fixture(scope="module")
def reference_study():
    return study("truce_collapse", samples=2, paths=400, seed=SEED, block_paths=400)


def test_study_figures_are_the_risk_measures_of_the_points_run(reference_study):
    plan = plan_study("truce_collapse", 2, seed=SEED)
    assert reference_study.sizes["sample"] == 2 * (len(plan.parameters) + 2) == 32
    i = 5
    run = rk.simulate(point_model(plan, i), 400, SEED, resolution="horizon")
    s = rk.risk_summary(run, (0.95, 0.99, 0.995), per_year=False)
    point = reference_study.sel(sample=i)
    for group in ("total", "region", "va_total", "credit"):
        for stat in ("EL", "EL_se", "VaR", "ES", "ES_se"):
            expected = s[f"{group}_{stat}"]
            expected = expected.sel(period="horizon") if "period" in expected.dims else expected
            np.testing.assert_allclose(point[f"{group}_{stat}"].values,
                                       expected.transpose(*point[f"{group}_{stat}"].dims).values,
                                       rtol=1e-9, err_msg=f"{group}_{stat}")  # fmt: skip
    # outer exposure: the points run without per-path multipliers
    assert not point_model(plan, i).arrays.exposure_sigma.any()
    np.testing.assert_array_equal(reference_study.value.values, plan.values)


def test_a_study_is_bitwise_identical_across_block_sizes_and_in_a_store(reference_study, tmp_path):
    store = tmp_path / "s.zarr"
    other = study("truce_collapse", samples=2, paths=400, seed=SEED, block_paths=170, store=store)
    xr.testing.assert_identical(other, reference_study)
    assert (store / SAMPLE_DONE).is_dir()
    with pytest.raises(rk.StoreError, match="a study store exists there"):
        study("truce_collapse", samples=2, paths=400, seed=SEED, store=store)
    with pytest.raises(rk.StoreError, match="cannot resume: the study differs"):
        study("truce_collapse", samples=2, paths=401, seed=SEED, store=store, resume=True)
    xr.testing.assert_identical(rk.open_study(store), reference_study)  # refused: untouched


@pytest.mark.cluster
def test_a_study_is_bitwise_identical_on_local_worker_processes(reference_study):
    from riskengine.cluster import local_cluster

    with local_cluster(2) as client:
        on_cluster = study("truce_collapse", samples=2, paths=400, seed=SEED, client=client,
                           block_paths=100)  # fmt: skip
    xr.testing.assert_identical(on_cluster, reference_study)


def test_cubes_on_request_are_the_runs_of_the_points(tmp_path):
    folder = tmp_path / "cubes"
    ds = study("truce_collapse", samples=2, paths=50, seed=SEED, design_method="morris",
               cubes=folder, cube_samples=[1, 4], cube_resolution="horizon")  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["sample-00001.zarr", "sample-00004.zarr"]
    cube = rk.open_run(folder / "sample-00004.zarr")
    el = float(cube.loss_total.sum("region").mean())
    np.testing.assert_allclose(el, ds.total_EL.sel(sample=4).item(), rtol=1e-12)


def test_sigkill_mid_study_then_resume_gives_the_same_results(tmp_path):
    store = tmp_path / "study.zarr"
    args = ["study", "truce_collapse", "--samples", "2", "--paths", "3000", "--seed", SEED,
            "--block-paths", "3000", "--out", store]  # fmt: skip

    def done() -> int:
        flags = store / SAMPLE_DONE
        return int(zarr.open_array(flags, mode="r")[:].sum()) if flags.is_dir() else 0

    first = riskengine(*args, env={"NUMBA_NUM_THREADS": "1"})
    try:
        wait_for(lambda: done() >= 1 or first.poll() is not None, 240, "a point written")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        first.kill()
    kept = done()
    assert 1 <= kept < 32
    proc = riskengine(*args, "--resume")
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err
    assert f"resuming: {kept} of 32 blocks already done" in out
    expected = study("truce_collapse", samples=2, paths=3000, seed=SEED)
    xr.testing.assert_identical(rk.open_study(store), expected)


# --- the command line ---------------------------------------------------------------------


def test_cli_validate_names_the_judged_ranges():
    proc = riskengine("validate", "truce_collapse")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "10 judged ranges (plain runs use their nominal values; `riskengine study` draws " in out
    assert "tension.start, tension.phi, channels.rare_earths.p_on" in out


def test_cli_study_then_report(tmp_path):
    store = tmp_path / "s.zarr"
    proc = riskengine("study", "truce_collapse", "--samples", "2", "--paths", "200", "--out",
                      store, "--design", "morris")  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "which judgements matter (30 points x 200 paths, morris design)" in out
    assert "channels.rare_earths.p_on" in out
    proc = riskengine("report", store)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = tmp_path / "s-report"
    assert sorted(p.name for p in report.iterdir()) == ["index.html", "indices.png",
                                                        "wheatsheaf.png"]  # fmt: skip
    page = (report / "index.html").read_text()
    assert "Which judgements matter" in page and "tension.phi" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "3"], "samples 3: a Sobol design needs a power of 2"),
        (["--samples", "2", "--exposure", "inner"], "exposure 'inner' is unknown"),
        (["--samples", "2", "--levels", "1.5"], "--levels '1.5'"),
        (["--samples", "2", "--paths", "0"], "paths must be a positive integer"),
    ],
)
def test_cli_study_bad_input_exits_2_with_one_line(tmp_path, args, message):
    store = tmp_path / "s.zarr"
    argv = ["study", "truce_collapse", "--paths", "10", "--out", store, *args]
    proc = riskengine(*argv)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1
    assert not store.exists()


def test_a_scenario_without_uncertainty_is_refused_for_a_study(tmp_path):
    data, _ = find_parameters(_library_data(), "truce_collapse")
    data.pop("exposure_uncertainty")
    with pytest.raises(RunError, match="no uncertain parameter"):
        plan_study(rk.load_scenario(_write(tmp_path, data)), 4, exposure="per_path")
