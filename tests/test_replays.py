"""Replays: the library's calibration held to history (every built-in replay), replay files as
data a user writes (their validation, sources and the CLI's exit codes), and what a replay
computes."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest
import yaml
from dask_procs import riskengine
from test_library import uncommented_numbers

import riskengine as rk
from riskengine.errors import ScenarioError
from riskengine.replay import Observation, ReplayResult, episode_model, load_replay, run_replay

REPLAYS = rk.builtin_replays()
REQUIRED = {
    "rare_earths_2025",
    "tariffs_2018",
    "rare_earths_2010",
    "chips_huawei_2020",
    "chips_china_2022",
    "sanctions_iran_2012",
}


def test_the_library_holds_the_required_replays():
    assert REQUIRED <= set(REPLAYS)


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_the_calibration_holds_every_replay(name):
    """Every observation lies in its band, and a documented gap still lies outside it (once the
    model meets it, its ``gap`` line has to go)."""
    for result in run_replay(name, backend="reference"):
        assert result.status in ("pass", "gap"), (name, result.observation.name, result.model)


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_the_cpu_kernel_replays_as_the_reference(name):
    cpu = run_replay(name, backend="cpu")
    ref = run_replay(name, backend="reference")
    for a, b in zip(cpu, ref, strict=True):
        assert a.model == pytest.approx(b.model, rel=1e-4, abs=1e-5)
        assert a.status == b.status


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_replay_files_cite_their_sources(name):
    text = REPLAYS[name].read_text(encoding="utf-8")
    assert uncommented_numbers(text) == [], f"{name}.yaml: numbers without a source comment"
    replay = load_replay(name)
    assert replay.description
    for obs in replay.observations:
        assert len(obs.source) > 20, obs.name  # a title and a year, not a placeholder


def test_only_the_tariff_war_has_a_documented_gap():
    gaps = {
        (name, obs.name)
        for name in REPLAYS
        for obs in load_replay(name).observations
        if obs.gap is not None
    }
    assert gaps == {("tariffs_2018", "world value added, 2020")}


def test_an_episode_is_the_scenario_on_its_schedules():
    replay = load_replay("rare_earths_2010")
    model = episode_model(replay)
    a = model.arrays
    assert model.start.isoformat() == "2010-09-01" and model.horizon == 4
    assert a.scheduled.all()  # every channel follows a schedule: the others stay off
    c = model.channels.index("rare_earths")
    np.testing.assert_array_equal(a.schedule[c], [0.0, 0.48, 0.74, 0.0])
    assert not a.schedule[np.arange(len(model.channels)) != c].any()
    # the channel reaches Japan only; exposures sit at their means
    exposed = a.exposure[c].reshape(len(model.regions), -1).any(axis=1)
    assert [r for r, e in zip(model.regions, exposed, strict=True) if e] == ["JPN"]
    assert not a.exposure_sigma.any()
    assert model.unit == "USD million (2011 prices)"


def test_a_replay_of_nothing_changes_nothing(tmp_path):
    path = tmp_path / "calm.yaml"
    path.write_text(
        textwrap.dedent("""\
        scenario: truce_collapse
        start: 2020-01
        horizon_months: 6
        channels: {tariffs: [{start: 2020-01, end: 2020-06, severity: 0.0}]}
        observations:
          - {name: world, measure: value_added, regions: [world], start: 2020-01, end: 2020-06,
             observed: 0.0, band: [-0.01, 0.01], source: a calm half-year}
        """)
    )
    (result,) = run_replay(path, backend="reference")
    assert result.model == 0.0 and result.passed


def test_an_output_observation_is_the_loss_over_the_baseline(tmp_path):
    """-100 x the nodes' output lost over the months / their baseline output in those months."""
    replay = load_replay("rare_earths_2025")
    model = episode_model(replay)
    ds = rk.simulate(model, paths=1, seed=0, backend="reference")
    usa = model.regions.index("USA")
    lost = float(ds.loss.values[0, 1:4, model.sectors.index("TREQ"), usa].astype(float).sum())
    base = model.arrays.loss_scale[usa * len(model.sectors) + model.sectors.index("TREQ")] * 3
    us = run_replay(replay, backend="reference")[0]
    assert us.model == pytest.approx(-100 * lost / base, rel=1e-12)
    # and the stock is what the replay says: a larger one covers the whole episode
    channel = model.channels.index("rare_earths")
    stock = model.arrays.stock_months.copy()
    stock[channel] *= 2
    larger = dataclasses.replace(model, arrays=model.arrays._replace(stock_months=stock))
    assert run_replay(replay, backend="reference", model=larger)[0].model == 0.0


def test_a_closed_gap_fails():
    obs = Observation(name="x", measure="value_added", regions=["world"], start="2020-01",
                      end="2020-02", band=(-1.0, 0.0), source="s", gap="g")  # fmt: skip
    assert ReplayResult("r", obs, -2.0).status == "gap" and ReplayResult("r", obs, -2.0).passed
    assert ReplayResult("r", obs, -0.5).status == "gap closed"
    assert not ReplayResult("r", obs, -0.5).passed


def _user_replay(tmp_path, band: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        description: a half-year of the 2018 tariffs
        scenario: truce_collapse
        start: 2019-01
        horizon_months: 6
        channels:
          tariffs: [{{start: 2019-01, end: 2019-06, severity: 0.1}}]
        observations:
          - name: US value added
            measure: value_added
            regions: [USA]
            start: 2019-01
            end: 2019-06
            band: {band}
            source: a test
        """)
    )
    return str(path)


def test_a_user_replay_runs_from_the_cli_without_code(tmp_path):
    ok = riskengine("replay", _user_replay(tmp_path, "[-1.0, 0.0]"))
    out, err = ok.communicate(timeout=240)
    assert ok.returncode == 0, err
    assert "mine" in out and "pass" in out and "1 of 1 observations hold" in out
    outside = riskengine("replay", _user_replay(tmp_path, "[0.5, 1.0]"))
    out, err = outside.communicate(timeout=240)
    assert outside.returncode == 1 and "FAIL" in out and "0 of 1" in out, err


def _observation(**changes) -> dict:
    base = {"name": "x", "measure": "value_added", "regions": ["USA"], "start": "2019-01",
            "end": "2019-01", "band": [-1, 0], "source": "s"}  # fmt: skip
    return {"observations": [base | changes]}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"channels": {"magic": []}}, "channels: ['magic'] are not channels of truce_collapse"),
        ({"scenario": "nosuch"}, "scenario: no such scenario 'nosuch'"),
        (
            _observation(measure="output", regions=None, nodes={"USA": ["NOPE"]}),
            "unknown label 'NOPE'",
        ),
        (_observation(observed=2.0), "the observed value must lie inside its own band"),
        (_observation(start="2030-01", end="2030-01"), "outside the replay's horizon"),
        ({"horizon_months": 0}, "horizon_months"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_a_bad_replay_file_is_one_line_and_exit_2(tmp_path, edit, message):
    data = yaml.safe_load(open(_user_replay(tmp_path, "[-1.0, 0.0]"), encoding="utf-8"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data | edit))
    proc = riskengine("replay", path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, out + err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_an_unknown_replay_name_lists_the_library():
    with pytest.raises(ScenarioError, match="no such replay file or built-in name"):
        load_replay("nosuch")
