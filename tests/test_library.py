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
    assert np.max(np.abs(np.linalg.eigvals(model.arrays.propagation))) < 1.0
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
