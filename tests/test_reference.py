"""The numpy reference against the closed forms of MODEL.md (checks 1-7) and the semantics that
docs/model.md fixes (initial state, ramp, substitution, retaliation, credit losses).

Statistical checks use fixed seeds and a tolerance of 5 Monte Carlo standard errors; most run on
the tiny 2 x 2 economy of conftest so that they stay fast.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from scipy import stats
from scipy.special import ndtr, ndtri

from riskengine import Scenario, builtin_scenarios, compile_model, load_scenario
from riskengine.reference import simulate, simulate_block, simulate_monthly

Z_TOL = 5.0  # standard errors


def channel(**changes) -> dict:
    """A channel with loading 0, constant severity and no buffer or substitution."""
    base = {
        "p_on": 0.1,
        "p_off": 0.2,
        "loading": 0.0,
        "severity": {"median": 0.6, "dispersion": 0.0},
        "exposure": {"sectors": {"MFG": 0.3, "FIN": 0.1}, "regions": {"CHN": 0.5}},
    }
    return base | changes


def compiled(economy, horizon: int = 24, channels: dict | None = None, **fields):
    # the library's portfolio lends to the library's regions: the tiny economy's banks are
    # model v1's proxy
    fields.setdefault("credit", {"portfolio": "proxy"})
    scenario = Scenario(
        name="test",
        start="2027-01",
        horizon_months=horizon,
        channels=channels or {"only": channel()},
        **fields,
    )
    return compile_model(scenario, economy)


def on_months(model, seed: int, paths: int, name: str = "only") -> np.ndarray:
    """on[p, t]: the channel is on in month t+1 (its effective severity is positive)."""
    sev = simulate_monthly(model, seed, 0, paths)["severity"]
    return sev[:, :, model.channels.index(name)] > 0.0


def test_check1_onsets(tiny_economy):
    p, paths = 0.08, 20_000
    model = compiled(tiny_economy, 24, {"only": channel(p_on=p, p_off=0.0)})
    frac = on_months(model, 11, paths).mean(axis=0)
    for t in (1, 2, 3, 6, 12, 24):
        expected = 1.0 - (1.0 - p) ** t
        se = np.sqrt(expected * (1.0 - expected) / paths)
        assert abs(frac[t - 1] - expected) < Z_TOL * se, t


def test_check1_retaliation_lowers_the_bar(tiny_economy):
    """Channel b is on throughout; kappa[a][b] moves a's threshold down by kappa, so a's monthly
    onset probability is 1 - Phi(Phi^-1(1 - p_on) - kappa)."""
    p, kappa, paths = 0.05, 0.6, 20_000
    channels = {
        "a": channel(p_on=p, p_off=0.0),
        "b": channel(p_on=0.0, p_off=0.0, initial={"on": True, "severity": 0.5}),
    }
    model = compiled(tiny_economy, 12, channels, retaliation={"a": {"b": kappa}})
    p_eff = 1.0 - ndtr(ndtri(1.0 - p) - kappa)
    frac = on_months(model, 12, paths, "a").mean(axis=0)
    for t in (1, 4, 12):
        expected = 1.0 - (1.0 - p_eff) ** t
        se = np.sqrt(expected * (1.0 - expected) / paths)
        assert abs(frac[t - 1] - expected) < Z_TOL * se, t


def _episodes(on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first month, length, ended) of every run of on-months, path by path."""
    P, T = on.shape
    padded = np.zeros((P, T + 2), dtype=np.int8)
    padded[:, 1:-1] = on
    step = np.diff(padded.ravel())
    starts = np.flatnonzero(step == 1) + 1
    ends = np.flatnonzero(step == -1) + 1
    first_month = starts % (T + 2)
    return first_month, ends - starts, ends % (T + 2) <= T


def test_check2_episode_lengths_geometric(tiny_economy):
    p_off, T = 0.25, 240
    model = compiled(tiny_economy, T, {"only": channel(p_on=0.3, p_off=p_off)})
    first, length, ended = _episodes(on_months(model, 21, 1500))
    # Episodes starting 60 months before the end have all ended (chance 0.75**60 = 3e-8 each);
    # choosing them by their start leaves the lengths unbiased.
    keep = first <= T - 60
    assert ended[keep].all()
    length = length[keep]
    n = length.size
    assert n > 20_000
    sd = np.sqrt(1.0 - p_off) / p_off
    assert abs(length.mean() - 1.0 / p_off) < Z_TOL * sd / np.sqrt(n)
    for k in (1, 2, 3, 5):
        pk = p_off * (1.0 - p_off) ** (k - 1)
        assert abs((length == k).mean() - pk) < Z_TOL * np.sqrt(pk * (1.0 - pk) / n), k


@pytest.fixture(scope="module")
def stationary_tension(tiny_economy) -> np.ndarray:
    model = compiled(tiny_economy, 6, tension={"start": "stationary", "phi": 0.8})
    return simulate_monthly(model, 31, 0, 40_000)["tension"]


def test_check3_tension_stationary(stationary_tension):
    g = stationary_tension
    P = g.shape[0]
    for t in (0, 5):
        assert abs(g[:, t].mean()) < Z_TOL / np.sqrt(P)
        assert abs(g[:, t].var() - 1.0) < Z_TOL * np.sqrt(2.0 / P)
    assert stats.kstest(g[:, 5], "norm").pvalue > 1e-3


def test_check3_tension_autocorrelation(stationary_tension):
    g = stationary_tension
    P, phi = g.shape[0], 0.8
    for t in (0, 4):
        r = np.corrcoef(g[:, t], g[:, t + 1])[0, 1]
        assert abs(r - phi) < Z_TOL * (1.0 - phi**2) / np.sqrt(P)
    r2 = np.corrcoef(g[:, 0], g[:, 2])[0, 1]
    assert abs(r2 - phi**2) < Z_TOL * (1.0 - phi**4) / np.sqrt(P)


def test_tension_from_a_given_start(tiny_economy):
    """From g_0 = 1.5: E g_t = phi^t g_0 and var g_t = 1 - phi^(2t)."""
    phi, g0, P = 0.8, 1.5, 20_000
    model = compiled(tiny_economy, 6, tension={"start": g0, "phi": phi})
    g = simulate_monthly(model, 32, 0, P)["tension"]
    for t in range(1, 7):
        var = 1.0 - phi ** (2 * t)
        assert abs(g[:, t - 1].mean() - phi**t * g0) < Z_TOL * np.sqrt(var / P)
        assert abs(g[:, t - 1].var() - var) < Z_TOL * var * np.sqrt(2.0 / P)


def _steady(economy, horizon: int, recovery, severity: float = 0.6):
    """One channel on from month 0 for ever: constant d = E * severity on every path."""
    ch = channel(p_on=0.0, p_off=0.0, initial={"on": True, "severity": severity, "months_on": 3})
    return compiled(
        economy,
        horizon,
        {"only": ch},
        propagation={"supply_weight": 0.8, "recovery_speed": recovery},
    )


def test_check4_steady_state_full_recovery_speed(tiny_economy):
    model = _steady(tiny_economy, 40, 1.0)
    a = model.arrays
    d = a.exposure[0] * 0.6
    M = a.supply_matrix
    q_star = np.linalg.solve(np.eye(4) - M, d)
    assert q_star.max() < 1.0  # no clipping on the way

    monthly = simulate_monthly(model, 1, 0, 3)
    q = monthly["loss"].transpose(0, 1, 3, 2).reshape(3, 40, 4) / a.loss_scale
    # The recursion itself: q_1 = d, q_t = M q_{t-1} + d.
    np.testing.assert_allclose(q[:, 0], np.broadcast_to(d, (3, 4)), rtol=1e-14)
    np.testing.assert_allclose(q[:, 1], np.broadcast_to(M @ d + d, (3, 4)), rtol=1e-14)

    ds = simulate(model, paths=3, seed=1)
    expected = (tiny_economy.x / 12.0 * q_star).reshape(2, 2).T  # (sector, region)
    for p in range(3):
        np.testing.assert_allclose(ds.loss.values[p, -1], expected, rtol=1e-6)


def test_check4_geometric_approach_with_slow_recovery(tiny_economy):
    recovery = {"default": 0.3, "sectors": {"FIN": 0.5}}
    model = _steady(tiny_economy, 120, recovery)
    a = model.arrays
    d = a.exposure[0] * 0.6
    q_star = np.linalg.solve(np.eye(4) - a.supply_matrix, d)
    monthly = simulate_monthly(model, 2, 0, 1)
    q = monthly["loss"][0].transpose(0, 2, 1).reshape(120, 4) / a.loss_scale
    gap = q - q_star
    # q_t - q* = B (q_{t-1} - q*) with B = I - K + K M, from q_0 = 0.
    K = np.diag(a.recovery)
    B = np.eye(4) - K + K @ a.supply_matrix
    for t in (1, 2, 5, 10):
        np.testing.assert_allclose(gap[t - 1], -np.linalg.matrix_power(B, t) @ q_star, atol=1e-14)
    norms = np.linalg.norm(gap, axis=1)
    ratios = norms[1:60] / norms[:59]
    assert np.all(ratios < 1.0)
    rho = np.max(np.abs(np.linalg.eigvals(B)))
    assert ratios[-1] == pytest.approx(rho, rel=1e-3)
    np.testing.assert_allclose(q[-1], q_star, rtol=1e-9)


def test_inoperability_clipped_at_one(tiny_economy):
    ch = channel(
        p_on=0.0,
        p_off=0.0,
        initial={"on": True, "severity": 0.95},
        exposure={"default": 1.0},
    )
    model = compiled(tiny_economy, 6, {"only": ch}, propagation={"recovery_speed": 1.0})
    loss = simulate_monthly(model, 1, 0, 2)["loss"]
    full = (tiny_economy.x / 12.0).reshape(2, 2).T
    assert np.all(loss <= full * (1 + 1e-15))
    np.testing.assert_allclose(loss[:, -1], np.broadcast_to(full, (2, 2, 2)), rtol=1e-15)


def test_credit_loss_formula(tiny_economy):
    """Section 7, row by row, from the run's own yearly mean output losses: each month of year
    y, bank r loses LGD sum_n EAD[r, n] (Phi(Phi^-1(pd0) + beta max(qbar_n, 0)) - pd0) / 12,
    with the proxy's EAD = ead_multiple Z[(FIN, r), n] (a last year of 4 months included)."""
    model = _steady(tiny_economy, 40, 0.5)
    out = simulate_monthly(model, 1, 0, 3)
    pd0, lgd, beta = 0.01, 0.45, 6.57  # the proxy's and the calibrated defaults
    Z = tiny_economy.Z
    ead = np.stack([Z[1], Z[3]])  # FIN rows of USA and CHN, ead_multiple 1
    q = out["loss"].transpose(0, 1, 3, 2).reshape(3, 40, 4) / (tiny_economy.x / 12.0)
    for months in (slice(0, 12), slice(12, 24), slice(24, 36), slice(36, 40)):
        qbar = q[:, months].mean(axis=1)
        assert (qbar > 0.01).all()
        expected = lgd * (ndtr(ndtri(pd0) + beta * qbar) - pd0) @ ead.T / 12.0
        for t in range(months.start, months.stop):
            np.testing.assert_allclose(out["credit_loss"][:, t], expected, rtol=1e-12)


def test_check5_exposure_multipliers(tiny_economy):
    """With M = 0, K = I and a constant shock, q = min(1, E s eta): eta is read off the losses.
    Its mean is 1; log-eta correlations follow the factors (global g, regional r):
    g^2 + r^2 within a region, g^2 across regions."""
    g, r, P = 0.5, 0.6, 20_000
    sigma = np.array([0.5, 0.8, 0.5, 0.8])  # node order USA.MFG USA.FIN CHN.MFG CHN.FIN
    ch = channel(
        p_on=0.0, p_off=0.0, initial={"on": True, "severity": 0.5}, exposure={"default": 0.05}
    )
    model = compiled(
        tiny_economy,
        1,
        {"only": ch},
        exposure_uncertainty={
            "sigma": {"default": 0.5, "sectors": {"FIN": 0.8}},
            "global_loading": g,
            "regional_loading": r,
        },
        propagation={"supply_weight": 0.0, "demand_weight": 0.0, "recovery_speed": 1.0},
    )
    loss = simulate_monthly(model, 41, 0, P)["loss"][:, 0]  # (P, sector, region)
    eta = loss.transpose(0, 2, 1).reshape(P, 4) / model.arrays.loss_scale / 0.025
    assert eta.max() < 40.0  # q = 0.025 eta never clipped (chance 3e-7 per node)
    se = np.sqrt((np.exp(sigma**2) - 1.0) / P)
    assert np.all(np.abs(eta.mean(axis=0) - 1.0) < Z_TOL * se)
    xi = (np.log(eta) + sigma**2 / 2) / sigma
    assert np.all(np.abs(xi.var(axis=0) - 1.0) < Z_TOL * np.sqrt(2.0 / P))
    corr = np.corrcoef(xi.T)
    for n, m, rho in ((0, 1, g**2 + r**2), (2, 3, g**2 + r**2), (0, 2, g**2), (1, 3, g**2)):
        assert abs(corr[n, m] - rho) < Z_TOL * (1.0 - rho**2) / np.sqrt(P), (n, m)


def test_check6_no_shock_no_loss(tmp_path):
    """The default scenario with every onset probability 0: every loss is exactly 0."""
    data = yaml.safe_load(builtin_scenarios()["truce_collapse"].read_text())
    for ch in data["channels"].values():
        ch["p_on"] = 0.0
    path = tmp_path / "calm.yaml"
    path.write_text(yaml.safe_dump(data))
    ds = simulate(load_scenario(path), paths=20, seed=5)
    for name in ("loss", "credit_loss", "severity"):
        assert not ds[name].values.any(), name


def test_initial_state_and_ramp(tiny_economy):
    """A channel on at the start with months_on m is in month m + t of its episode in month t;
    ramp(k) = min(1, k / b)."""
    s, b = 0.4, 4.0
    ch = channel(
        p_on=0.0,
        p_off=0.0,
        buffer_months=b,
        initial={"on": True, "severity": s, "months_on": 1},
    )
    sev = simulate_monthly(compiled(tiny_economy, 6, {"only": ch}), 1, 0, 2)["severity"]
    expected = s * np.minimum(1.0, (1 + np.arange(1, 7)) / b)
    np.testing.assert_allclose(sev[:, :, 0], np.broadcast_to(expected, (2, 6)), rtol=1e-15)


def test_onset_ramp_and_severity_median(tiny_economy):
    """p_on = 1: every path starts an episode in month 1 (k = 1), with severity the median when
    the dispersion is 0."""
    b = 3.0
    ch = channel(p_on=1.0, p_off=0.0, buffer_months=b)
    sev = simulate_monthly(compiled(tiny_economy, 5, {"only": ch}), 1, 0, 2)["severity"]
    expected = 0.6 * np.minimum(1.0, np.arange(1, 6) / b)
    np.testing.assert_allclose(sev[:, :, 0], np.broadcast_to(expected, (2, 5)), rtol=1e-14)


def test_substitution_runs_on_calendar_months(tiny_economy):
    """sub(t) = smax / (1 + exp(-(t - tau) / w)) with t the month since the start (1..T),
    whenever the episode began."""
    smax, tau, w = 0.5, 6.0, 2.0
    ch = channel(
        p_on=0.0,
        p_off=0.0,
        initial={"on": True, "severity": 0.6},
        substitution={"max": smax, "midpoint_month": tau, "width_months": w},
    )
    sev = simulate_monthly(compiled(tiny_economy, 12, {"only": ch}), 1, 0, 1)["severity"]
    t = np.arange(1, 13)
    expected = 0.6 * (1.0 - smax / (1.0 + np.exp(-(t - tau) / w)))
    np.testing.assert_allclose(sev[0, :, 0], expected, rtol=1e-14)


def test_severity_logit_normal(tiny_economy):
    """Severity at onset: expit(logit(m) + v z), so logit(severity) ~ N(logit(m), v^2)."""
    m, v, P = 0.3, 0.8, 20_000
    ch = channel(p_on=1.0, p_off=0.0, severity={"median": m, "dispersion": v})
    sev = simulate_monthly(compiled(tiny_economy, 1, {"only": ch}), 51, 0, P)["severity"]
    x = np.log(sev[:, 0, 0] / (1.0 - sev[:, 0, 0]))
    assert abs(x.mean() - np.log(m / (1 - m))) < Z_TOL * v / np.sqrt(P)
    assert abs(x.std() - v) < Z_TOL * v / np.sqrt(2.0 * P)


def test_check7_extension_and_blocks(truce_collapse):
    small = simulate(truce_collapse, paths=6, seed=9)
    large = simulate(truce_collapse, paths=12, seed=9)
    for name in small.data_vars:
        rows = slice(0, 6) if "path" in small[name].dims else slice(None)
        np.testing.assert_array_equal(large[name].values[rows], small[name].values, err_msg=name)
    whole = simulate_block(truce_collapse, 9, 0, 12, "quarter")
    part = simulate_block(truce_collapse, 9, 5, 9, "quarter")
    for name in whole:
        np.testing.assert_array_equal(part[name], whole[name][5:9], err_msg=name)


def test_check7_seeds_differ(truce_collapse):
    a = simulate_monthly(truce_collapse, 1, 0, 4)
    b = simulate_monthly(truce_collapse, 2, 0, 4)
    assert np.all(a["tension"] != b["tension"])
    assert not np.array_equal(a["loss"], b["loss"])
    again = simulate_monthly(truce_collapse, 1, 0, 4)
    for name in a:
        np.testing.assert_array_equal(a[name], again[name])


def test_weight_is_one_without_importance_sampling(truce_collapse):
    np.testing.assert_array_equal(simulate(truce_collapse, paths=3, seed=1).weight.values, 1.0)


# --- model v2: channel kinds, stocks, diversion (docs/model.md sections 5-6) -------------------


def _always_on(severity: float, **changes) -> dict:
    return channel(p_on=0.0, p_off=0.0, initial={"on": True, "severity": severity}, **changes)


def test_a_pure_demand_shock_settles_at_leontief(tiny_economy):
    """Lost final demand dy travels upstream through A*: output falls by exactly
    dx = (I - A)^-1 dy once it has settled (no clipping, recovery speed 1)."""
    exposure = {"nodes": {"CHN": {"MFG": 0.2, "FIN": 0.05}, "USA": {"MFG": 0.1}}}
    model = compiled(tiny_economy, 120, {"only": _always_on(0.5, kind="demand", exposure=exposure)},
                     propagation={"recovery_speed": 1.0})  # fmt: skip
    dy = model.arrays.exposure[0] * 0.5 * tiny_economy.x  # a year's final demand lost
    dx = tiny_economy.leontief_inverse() @ dy
    loss = simulate_monthly(model, 1, 0, 2)["loss"][:, -1]  # (path, sector, region), a month
    np.testing.assert_allclose(loss, np.broadcast_to((dx / 12).reshape(2, 2).T, loss.shape),
                               rtol=1e-6)  # fmt: skip
    assert (dx > dy).any()  # suppliers lose beyond the direct shock


@pytest.mark.parametrize(("severity", "months"), [(1.0, 3), (0.5, 6)])
def test_a_supply_cut_loses_nothing_until_the_stocks_run_out(tiny_economy, severity, months):
    """Three months of stock cover a full cut for three months, a half cut for six."""
    ch = _always_on(severity, kind="supply", stock={"months": 3.0, "rebuild": 0.5})
    model = compiled(tiny_economy, 12, {"only": ch}, propagation={"recovery_speed": 1.0})
    loss = simulate_monthly(model, 1, 0, 3)["loss"].sum(axis=(2, 3))  # (path, month)
    assert np.all(loss[:, :months] == 0.0)
    assert np.all(loss[:, months] > 0.0)


def test_stocks_rebuild_while_nothing_is_cut(tiny_economy):
    """A full cut in months 1-2 draws 2 of 3 months of stock; months 3-4 refill 0.5 each, so a
    second full cut from month 5 is covered for months 5 and 6 and bites from month 7."""
    ch = channel(p_on=0.0, p_off=0.0, kind="supply", stock={"months": 3.0, "rebuild": 0.5},
                 schedule=[{"start": "2027-01", "end": "2027-02", "severity": 1.0},
                           {"start": "2027-05", "end": "2027-12", "severity": 1.0}])  # fmt: skip
    model = compiled(tiny_economy, 12, {"only": ch}, propagation={"recovery_speed": 1.0})
    loss = simulate_monthly(model, 1, 0, 1)["loss"].sum(axis=(2, 3))[0]
    assert np.all(loss[:6] == 0.0) and np.all(loss[6:] > 0.0)


def test_channel_effects_add_up_path_by_path_without_clips_or_stocks():
    """Linear where no clip binds and no stocks are held: the loss of all channels together is
    the sum of the losses of each channel alone (same seed, same regimes), path by path."""
    # the scenario's fields at their nominal values (its judged ranges are numbers here)
    data = load_scenario("truce_collapse").model_dump(exclude_unset=True)
    data["retaliation"] = {}
    for ch in data["channels"].values():
        ch.pop("stock", None)
    model = compile_model(Scenario(**data))
    a = model.arrays._replace(exposure=model.arrays.exposure * 0.2)  # small: no clip binds
    model = dataclasses.replace(model, arrays=a)
    whole = simulate_monthly(model, 5, 0, 40)["loss"]
    q = whole / a.loss_scale.reshape(7, 12).T  # (path, month, sector, region)
    assert 0.01 < np.abs(q).max() < 0.9
    parts = 0.0
    for c in range(len(model.channels)):
        keep = (np.arange(len(model.channels)) == c)[:, None]
        alone = dataclasses.replace(model, arrays=a._replace(exposure=a.exposure * keep))
        parts = parts + simulate_monthly(alone, 5, 0, 40)["loss"]
    np.testing.assert_allclose(whole, parts, rtol=1e-9, atol=1e-9 * np.abs(whole).max())


def test_diversion_gives_bystanders_the_diverted_sales(truce_collapse):
    """A demand cut on CHN.ELEC alone, half diverted: the ELEC nodes of the untouched regions
    gain, in proportion to their output, exactly half of what CHN.ELEC loses (no propagation)."""
    data = load_scenario("truce_collapse").model_dump(exclude_unset=True)
    tariff = data["channels"]["tariffs"]
    tariff.update(p_on=0.0, p_off=0.0, initial={"on": True, "severity": 0.5},
                  exposure={"nodes": {"CHN": {"ELEC": 0.2}}}, diversion={"share": 0.5},
                  substitution={"max": 0.0})  # fmt: skip
    data["channels"] = {"tariffs": tariff}
    data["correlation"], data["retaliation"] = {}, {}
    data["exposure_uncertainty"] = {}
    data["propagation"] = {"supply_weight": 0.0, "demand_weight": 0.0, "recovery_speed": 1.0}
    model = compile_model(Scenario(**data))
    loss = simulate_monthly(model, 1, 0, 1)["loss"][0, 3]  # (sector, region), month 4
    elec = list(model.sectors).index("ELEC")
    lost = loss[elec, model.regions.index("CHN")]
    gains = np.delete(loss[elec], model.regions.index("CHN"))
    assert lost == pytest.approx(0.2 * 0.5 * truce_collapse.arrays.loss_scale[
        model.regions.index("CHN") * 12 + elec], rel=1e-12)  # fmt: skip
    assert np.all(gains < 0)
    assert -gains.sum() == pytest.approx(0.5 * lost, rel=1e-12)
    np.testing.assert_array_equal(np.delete(loss, elec, axis=0), 0.0)
