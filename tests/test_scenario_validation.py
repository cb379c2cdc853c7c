"""Every kind of bad input, through the real command line: exit code 2, one line on stderr naming
the field (as a YAML path) or the file, no traceback, nothing on disk changed; and the Python API
raises :class:`ScenarioError` with the same message."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from riskengine import ScenarioError, compile_model, load_scenario


def _channel(**changes) -> dict:
    channel = {
        "p_on": 0.1,
        "p_off": 0.2,
        "loading": 0.5,
        "severity": {"median": 0.5, "dispersion": 0.5},
        "buffer_months": 2,
        "exposure": {"default": 0.0, "sectors": {"MFG": 0.3}, "regions": {"CHN": 0.5}},
    }
    return channel | changes


# A small valid scenario on the tiny economy (conftest), whose folder ``eco`` sits next to the
# YAML file. Three channels, so that a non-positive-definite correlation matrix can be written.
BASE = {
    "name": "tiny",
    "start": "2027-01",
    "horizon_months": 12,
    "economy": "eco",
    "tension": {"start": "stationary", "phi": 0.8},
    "channels": {
        "chips": _channel(),
        "rare_earths": _channel(exposure={"nodes": {"USA": {"FIN": 0.1}}}),
        "tariffs": _channel(),
    },
    "correlation": {"chips": {"rare_earths": 0.3}},
    "retaliation": {"chips": {"rare_earths": 0.2}},
    "propagation": {"supply_weight": 0.8, "demand_weight": 1.0},
    "credit": {"portfolio": "book.csv", "capital": "capital.csv"},
}
# Its credit portfolio and capital, written next to it.
BOOK = (
    "bank,region,segment,ead,pd,lgd\nNorth,USA,MFG,100,0.01,0.4\nNorth,CHN,households,50,0.02,0.2\n"
)
CAPITAL = "bank,cet1,rwa\nNorth,12,100\n"


def _write(name: str, text: str) -> Callable[[Path], None]:
    """A file edit that writes ``text`` as ``name`` in the case's folder."""
    return lambda folder: (folder / name).write_text(text)


def _set(dotted: str, value) -> Callable[[dict], None]:
    """An edit that sets ``dotted`` (a YAML path) to ``value``, creating mappings on the way."""

    def edit(data: dict) -> None:
        *head, last = dotted.split(".")
        for key in head:
            data = data.setdefault(key, {})
        data[last] = value

    return edit


def _drop(dotted: str) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        *head, last = dotted.split(".")
        for key in head:
            data = data[key]
        del data[last]

    return edit


def _replace_in(file: str, old: str, new: str) -> Callable[[Path], None]:
    """An edit of a file of the tmp folder (the economy's CSVs, or the scenario text)."""

    def edit(folder: Path) -> None:
        text = (folder / file).read_text()
        assert old in text, f"{old!r} not in {file}"
        (folder / file).write_text(text.replace(old, new, 1))

    return edit


@dataclass(frozen=True)
class Case:
    """One bad input: an edit of the scenario dict and/or of the files, and what the message
    must name."""

    names: str
    scenario: Callable[[dict], None] | None = None
    files: Callable[[Path], None] | None = None
    target: str = "scenario.yaml"


CASES = {
    # unknown names
    "unknown_sector": Case(
        "channels.chips.exposure.sectors.ELEKTRO",
        _set("channels.chips.exposure.sectors.ELEKTRO", 1),
    ),
    "unknown_region": Case(
        "channels.chips.exposure.regions.RUS", _set("channels.chips.exposure.regions.RUS", 0.5)
    ),
    "unknown_node_sector": Case(
        "channels.rare_earths.exposure.nodes.USA.BANK",
        _set("channels.rare_earths.exposure.nodes.USA.BANK", 0.1),
    ),
    "unknown_bank_sector": Case(
        "credit.proxy.bank_sector",
        _set("credit", {"portfolio": "proxy", "proxy": {"bank_sector": "BANKS"}}),
    ),
    "unknown_channel_correlation": Case(
        "correlation.chips.dollar", _set("correlation.chips.dollar", 0.2)
    ),
    "unknown_channel_retaliation": Case(
        "retaliation.dollar", _set("retaliation.dollar", {"chips": 0.2})
    ),
    # probabilities and other values out of range
    "p_on_above_one": Case("channels.chips.p_on", _set("channels.chips.p_on", 1.5)),
    "p_off_negative": Case("channels.tariffs.p_off", _set("channels.tariffs.p_off", -0.1)),
    "lgd_above_one": Case("credit.lgd", _set("credit.lgd", 2.0)),
    "exposure_above_one": Case(
        "channels.chips.exposure: value 3 at node USA.MFG",
        _set("channels.chips.exposure.sectors.MFG", 3.0),
    ),
    "starts_on_without_severity": Case(
        "channels.chips.initial", _set("channels.chips.initial", {"on": True})
    ),
    # correlation matrices that are not correlation matrices
    "correlation_of_one": Case(
        "correlation.chips.rare_earths", _set("correlation.chips.rare_earths", 1.0)
    ),
    "correlation_not_positive_definite": Case(
        "correlation: the matrix over channels chips, rare_earths, tariffs is not positive",
        _set(
            "correlation",
            {"chips": {"rare_earths": 0.9, "tariffs": 0.9}, "rare_earths": {"tariffs": -0.9}},
        ),
    ),
    "correlation_given_twice": Case(
        "correlation.rare_earths.chips: given twice (0.3 and 0.5)",
        _set("correlation.rare_earths", {"chips": 0.5}),
    ),
    "correlation_given_twice_first_zero": Case(
        "correlation.rare_earths.chips: given twice (0.0 and 0.4)",
        _set("correlation", {"chips": {"rare_earths": 0.0}, "rare_earths": {"chips": 0.4}}),
    ),
    # propagation that does not die out
    "spectral_radius_above_one": Case(
        "propagation.supply_weight: the operator has spectral radius",
        _set("propagation.supply_weight", 10.0),
    ),
    # economy tables
    "negative_output": Case(
        "economy: economy 'eco': gross output of USA.FIN is -400",
        files=_replace_in("eco/output.csv", "USA.FIN,400", "USA.FIN,-400"),
    ),
    "intermediate_row_too_short": Case(
        "eco/intermediate.csv: row 'USA.MFG' has 3 values",
        files=_replace_in("eco/intermediate.csv", "USA.MFG,100,", "USA.MFG,"),
    ),
    "output_missing_a_node": Case(
        "eco/output.csv: needs columns node,output",
        files=_replace_in("eco/output.csv", "CHN.FIN,500\n", ""),
    ),
    "final_demand_wrong_rows": Case(
        "eco/final_demand.csv: rows must be the nodes",
        files=_replace_in("eco/final_demand.csv", "CHN.FIN,", "CHN.BANK,"),
    ),
    "non_numeric_flow": Case(
        "eco/intermediate.csv: row 'USA.FIN', column 'USA.MFG': 'thirty' is not a finite number",
        files=_replace_in("eco/intermediate.csv", "USA.FIN,30,", "USA.FIN,thirty,"),
    ),
    # missing files
    "missing_scenario_file": Case("nowhere.yaml: no such scenario file", target="nowhere.yaml"),
    "missing_economy_folder": Case("economy: economy 'atlantis'", _set("economy", "atlantis")),
    "missing_intermediate_csv": Case(
        "eco/intermediate.csv: file not found",
        files=lambda folder: (folder / "eco" / "intermediate.csv").unlink(),
    ),
    "missing_portfolio": Case(
        "credit.portfolio: ", _set("credit.portfolio", "exposures.csv"), files=None
    ),
    "portfolio_wrong_columns": Case(
        "credit.portfolio: ", files=_write("book.csv", "bank,region,sector,ead,pd,lgd\n")
    ),
    "portfolio_unknown_segment": Case(
        "row 1, column 'segment': unknown segment 'AGR'",
        files=_write("book.csv", "bank,region,segment,ead,pd,lgd\nN,USA,AGR,1,0.01,0.4\n"),
    ),
    "capital_without_the_bank": Case(
        "no row for bank 'North' of the portfolio",
        files=_write("capital.csv", "bank,cet1,rwa\nSouth,1,10\n"),
    ),
    # the file itself
    "invalid_yaml": Case(
        "scenario.yaml: line 3: mapping values are not allowed here; fix it there",
        files=_replace_in("scenario.yaml", "horizon_months: 12", "  horizon_months: 12"),
    ),
    "not_a_mapping": Case(
        "scenario.yaml: expected a mapping",
        files=lambda folder: (folder / "scenario.yaml").write_text("- chips\n- tariffs\n"),
    ),
    "unknown_top_level_field": Case("chanels: unknown field", _set("chanels", {})),
    "unknown_nested_field": Case(
        "channels.chips.p_onn: unknown field", _set("channels.chips.p_onn", 0.1)
    ),
    "missing_field": Case("channels.chips.p_on: missing", _drop("channels.chips.p_on")),
    # hostile input: no silent numbers
    "nan_tension_start": Case(
        "tension.start: Input should be a finite number", _set("tension.start", float("nan"))
    ),
    "inf_tension_start": Case(
        "tension.start: Input should be a finite number", _set("tension.start", float("inf"))
    ),
    "huge_tension_start": Case(
        "tension.start: Input should be less than or equal to 10", _set("tension.start", 1e308)
    ),
    "nan_exposure": Case(
        "channels.chips.exposure.sectors.MFG: Input should be a finite number",
        _set("channels.chips.exposure.sectors.MFG", float("nan")),
    ),
    "nan_midpoint": Case(
        "channels.chips.substitution.midpoint_month: Input should be a finite number",
        _set("channels.chips.substitution.midpoint_month", float("nan")),
    ),
    "nan_retaliation": Case(
        "retaliation.chips.rare_earths: Input should be a finite number",
        _set("retaliation.chips.rare_earths", float("nan")),
    ),
    "nan_pd0": Case(
        "credit.proxy.pd0.default: Input should be a finite number",
        _set("credit.proxy.pd0", float("nan")),
    ),
    "start_beyond_the_time_axis": Case(
        "start: 2290-01 with a horizon of 12 months does not fit the cube's time axis",
        _set("start", "2290-01"),
    ),
    "start_before_the_time_axis": Case("start: 1600-01 with a horizon", _set("start", "1600-01")),
    "duplicate_key": Case(
        "scenario.yaml: line 11: key 'p_on' is given twice",
        files=_replace_in("scenario.yaml", "    p_on: 0.1\n", "    p_on: 0.1\n    p_on: 0.2\n"),
    ),
    "binary_scenario": Case(
        "scenario.yaml: not UTF-8 text (byte 1)",
        files=lambda folder: (folder / "scenario.yaml").write_bytes(b"\x00\xff\xfe\x00" * 64),
    ),
    "utf16_scenario": Case(
        "scenario.yaml: not UTF-8 text",
        files=lambda folder: (folder / "scenario.yaml").write_text(
            (folder / "scenario.yaml").read_text(), encoding="utf-16"
        ),
    ),
    "nul_in_scenario": Case(
        "scenario.yaml: holds NUL characters",
        files=_replace_in("scenario.yaml", "name: tiny", "name: ti\x00ny"),
    ),
    "integer_top_level_key": Case("scenario.yaml: 1: unknown field", _set("1", 2)),
    "internal_top_level_key": Case(
        "scenario.yaml: source_path: unknown field", _set("source_path", "/etc")
    ),
    "name_on_two_lines": Case("name: give a name of 1 to 200 printable", _set("name", "a\nb")),
    "binary_csv": Case(
        "eco/output.csv: not UTF-8 text",
        files=lambda folder: (folder / "eco" / "output.csv").write_bytes(bytes(range(256))),
    ),
    "huge_csv_field": Case(
        "eco/output.csv: not a readable CSV table (field larger than field limit",
        files=_replace_in("eco/output.csv", "USA.FIN,400", "USA.FIN," + "4" * 200_000),
    ),
    "inf_in_portfolio": Case(
        "row 3, column 'ead': 'inf' is not a number",
        files=_write("book.csv", BOOK + "North,CHN,MFG,inf,0.01,0.4\n"),
    ),
    "ead_beyond_1e15": Case(
        "row 1, column 'ead': '1e300' is not a number in [0, 1e+15]",
        files=_write("book.csv", "bank,region,segment,ead,pd,lgd\nNorth,USA,MFG,1e300,0.01,0.4\n"),
    ),
    "sensitivity_too_large": Case(
        "credit.sensitivity.corporate: Input should be less than or equal to 100",
        _set("credit.sensitivity.corporate", 2000.0),
    ),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "riskengine.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _prepare(case: Case | None, folder: Path, economy, economy_writer) -> Path:
    """Write the tiny economy and the base scenario into ``folder``, then break them."""
    data = copy.deepcopy(BASE)
    if case is not None and case.scenario is not None:
        case.scenario(data)
    economy_writer(economy, folder / "eco")
    (folder / "book.csv").write_text(BOOK)
    (folder / "capital.csv").write_text(CAPITAL)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    if case is not None and case.files is not None:
        case.files(folder)
    return folder / (case.target if case is not None else "scenario.yaml")


@dataclass(frozen=True)
class Outcome:
    target: Path
    before: dict[str, bytes]
    after: dict[str, bytes]
    proc: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, tiny_economy, economy_writer) -> dict[str, Outcome]:
    """Every selected case in its own folder, run through the CLI four at a time: each run is
    mostly interpreter start-up, so the set takes a fraction of the time it would one by one."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "module", None) is request.module and item.originalname == "test_bad_input"
    }
    folders = {name: tmp_path_factory.mktemp(name) for name in CASES if name in selected}
    targets = {
        name: _prepare(CASES[name], folder, tiny_economy, economy_writer)
        for name, folder in folders.items()
    }
    before = {name: _snapshot(folder) for name, folder in folders.items()}
    with ThreadPoolExecutor(4) as pool:
        procs = dict(zip(targets, pool.map(_validate, targets.values()), strict=True))
    return {
        name: Outcome(targets[name], before[name], _snapshot(folders[name]), procs[name])
        for name in folders
    }


def test_the_base_scenario_is_valid(tmp_path, tiny_economy, economy_writer):
    """Every case below breaks exactly one thing of this scenario."""
    proc = _validate(_prepare(None, tmp_path, tiny_economy, economy_writer))
    assert proc.returncode == 0, proc.stderr
    assert "tiny: valid" in proc.stdout
    assert "2 regions x 2 sectors = 4 nodes" in proc.stdout
    assert "book.csv: 1 banks (North), 2 classes, with capital" in proc.stdout


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name: str, outcomes):
    out = outcomes[name]
    proc = out.proc
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert CASES[name].names in lines[0]
    assert out.after == out.before

    with pytest.raises(ScenarioError) as err:
        compile_model(load_scenario(out.target))
    assert lines[0] == f"error: {err.value}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # click spells the argument 'scenario' or 'SCENARIO' depending on the version.
        (["validate"], "error: missing argument 'scenario'."),
        (["frobnicate"], "error: no such command 'frobnicate'."),
        (["validate", "truce_collapse", "--fast"], "error: no such option: --fast"),
    ],
)
def test_bad_arguments(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "riskengine.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert [line.lower() for line in proc.stderr.splitlines()] == [message]


def test_yaml_paths_name_the_scenario_file(tmp_path, tiny_economy, economy_writer):
    """Messages found in the scenario (schema) and in compile (economy checks) both start with
    the scenario's path, so that a user checking many files knows which one is wrong."""
    for name in ("p_on_above_one", "unknown_sector"):
        path = _prepare(CASES[name], tmp_path, tiny_economy, economy_writer)
        with pytest.raises(ScenarioError, match=rf"^({path}|{path.resolve()}): "):
            compile_model(load_scenario(path))
