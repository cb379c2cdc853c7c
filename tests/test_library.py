"""The built-in scenario library: every file loads, compiles and keeps the four channels; every
number carries its source comment; the scenarios are ordered by severity as their names promise.

The comment rule (also stated in docs/calibration.md): a line that sets a key to a number, or to a
flow mapping holding a number (``sectors: {FIN: 0.5}``), must carry a ``#`` comment on that line,
or sit directly inside a block whose parent line (the nearest less-indented line above) carries
one. Dates and strings are not numbers; YAML comments never contain the value itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import riskengine as rk
from riskengine.reference import simulate

LIBRARY = rk.builtin_scenarios()
CHANNELS = {"rare_earths", "chips", "dollar", "tariffs"}
REQUIRED = {
    "truce_holds",
    "truce_collapse",
    "rare_earth_cutoff",
    "chip_war",
    "dollar_sanctions",
    "full_decoupling",
}
# The premise of each scenario: which channels are on in its start month.
STARTS_ON = {
    "truce_holds": set(),
    "truce_collapse": set(),
    "rare_earth_cutoff": {"rare_earths"},
    "chip_war": {"chips"},
    "dollar_sanctions": {"dollar"},
    "full_decoupling": CHANNELS,
}

_NUMBER = r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_NUMERIC_LINE = re.compile(rf"^\s*[\w\"']+:\s*({_NUMBER}\s*(#.*)?$|\{{[^#]*:\s*{_NUMBER})")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def uncommented_numbers(text: str) -> list[int]:
    """Line numbers (1-based) of numeric lines that break the comment rule of this module."""
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        if not _NUMERIC_LINE.match(line) or "#" in line:
            continue
        parents = (
            p
            for p in reversed(lines[:i])
            if p.strip() and not p.lstrip().startswith("#") and _indent(p) < _indent(line)
        )
        if "#" not in next(parents, ""):
            bad.append(i + 1)
    return bad


def test_library_holds_the_required_scenarios():
    assert REQUIRED <= set(LIBRARY)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_scenario_compiles_with_the_four_channels(name):
    sc = rk.load_scenario(name)
    model = rk.compile_model(sc)
    assert sc.name == name
    assert set(sc.channels) == CHANNELS
    for operator in (model.arrays.supply_matrix, model.arrays.demand_matrix):
        assert np.max(np.abs(np.linalg.eigvals(operator))) < 1.0
    # every channel hits some node, so that each scenario exercises each channel
    assert np.all(model.arrays.exposure.max(axis=1) > 0.0)


@pytest.mark.parametrize("name", sorted(STARTS_ON))
def test_scenario_premise_sets_the_initial_states(name):
    sc = rk.load_scenario(name)
    assert {c for c, ch in sc.channels.items() if ch.initial.on} == STARTS_ON[name]
    assert all(0.0 < ch.initial.severity <= 1.0 for ch in sc.channels.values() if ch.initial.on)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_number_carries_a_comment(name):
    text = LIBRARY[name].read_text()
    assert uncommented_numbers(text) == [], f"{name}.yaml: numbers without a source comment"


def test_comment_rule_flags_a_bare_number():
    text = "a:\n  b: 0.5\nc: 1  # judgement\nd:  # source\n  e: 2\nf: {x: 0.1}\ng: 2026-12\n"
    assert uncommented_numbers(text) == [2, 6]


def test_cli_lists_the_whole_library():
    result = subprocess.run(
        [sys.executable, "-c", "from riskengine.cli import main; main()", "scenarios"],
        capture_output=True,
        text=True,
        check=True,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert set(LIBRARY) <= listed
    assert "(invalid" not in result.stdout


def test_mean_loss_orders_truce_holds_collapse_decoupling():
    paths, seed = 400, 7
    totals = {}
    for name in ("truce_holds", "truce_collapse", "full_decoupling"):
        ds = simulate(rk.load_scenario(name), paths=paths, seed=seed)
        totals[name] = ds.loss.sum(("time", "sector", "region")).values.astype(np.float64)
    for low, high in (("truce_holds", "truce_collapse"), ("truce_collapse", "full_decoupling")):
        a, b = totals[low], totals[high]
        se = np.sqrt(a.var(ddof=1) / paths + b.var(ddof=1) / paths)
        assert b.mean() - a.mean() > 5.0 * se, (low, high)


def _quoted_odds() -> dict[tuple[str, str], list[float]]:
    """The odds table of docs/calibration.md: (scenario, channel) -> % by years 1, 3, 5."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "calibration.md").read_text()
    block = text.split("<!-- build:odds -->")[1].split("<!-- /build:odds -->")[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[2].endswith("%"):
            channel = "any" if cells[1] == "at least one" else cells[1].strip("`")
            rows[cells[0], channel] = [float(c.rstrip(" %")) for c in cells[2:]]
    return rows


@pytest.mark.parametrize("name", ["truce_collapse", "truce_holds"])
def test_quoted_escalation_odds_are_the_engines(name):
    """docs/calibration.md's odds (made with the reference) recomputed by the CPU engine."""
    quoted = _quoted_odds()
    ds = rk.simulate(rk.load_scenario(name), paths=2000, seed=0, backend="cpu")
    odds = rk.escalation_odds(ds, years=(1, 3, 5)).p_bite
    for channel in odds.channel.values:
        engine = [100 * float(v) for v in odds.sel(channel=channel)]
        assert np.allclose(engine, quoted[name, str(channel)], atol=0.5), (name, channel)


def test_truce_holds_reads_as_a_truce():
    """Most paths see no escalation in year 1, and dollar sanctions stay a tail in both."""
    quoted = _quoted_odds()
    assert quoted["truce_holds", "any"][0] < 20
    assert quoted["truce_holds", "any"][2] < quoted["truce_collapse", "any"][0]
    assert quoted["truce_holds", "dollar"][2] < 5 and quoted["truce_collapse", "dollar"][2] < 15
