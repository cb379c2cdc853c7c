"""Shared fixtures. Kernels and dask are imported lazily by the tests that need them."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

import riskengine as rk


@pytest.fixture(scope="session")
def truce_collapse():
    """The default scenario, compiled once per session."""
    return rk.compile_model(rk.load_scenario("truce_collapse"))


@pytest.fixture(scope="session")
def tiny_economy() -> rk.Economy:
    """2 regions x 2 sectors, balanced (Z 1 + Y 1 = x exactly), spectral radius of A about 0.3.

    Nodes in order: USA.MFG, USA.FIN, CHN.MFG, CHN.FIN.
    """
    Z = np.array(
        [
            [100.0, 20.0, 50.0, 5.0],
            [30.0, 10.0, 10.0, 5.0],
            [80.0, 10.0, 300.0, 40.0],
            [5.0, 5.0, 30.0, 20.0],
        ]
    )
    x = np.array([1000.0, 400.0, 1500.0, 500.0])
    Y = np.array([[700.0, 125.0], [300.0, 45.0], [170.0, 900.0], [40.0, 400.0]])
    return rk.Economy(("USA", "CHN"), ("MFG", "FIN"), Z, x, Y, "USD million", "tiny")


def _write_csv(path: Path, header: list[str], labels: list[str], values: np.ndarray) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for label, row in zip(labels, values, strict=True):
            out.writerow([label, *(f"{v:.17g}" for v in np.atleast_1d(row))])


def write_economy_folder(eco: rk.Economy, folder: Path) -> Path:
    """Write ``eco`` in the project's CSV format (see :mod:`riskengine.economy`)."""
    folder.mkdir(parents=True, exist_ok=True)
    nodes = eco.node_labels
    _write_csv(folder / "intermediate.csv", ["node", *nodes], nodes, eco.Z)
    _write_csv(folder / "output.csv", ["node", "output"], nodes, eco.x)
    if eco.Y is not None:
        _write_csv(folder / "final_demand.csv", ["node", *eco.regions], nodes, eco.Y)
    return folder


@pytest.fixture
def economy_writer() -> Callable[[rk.Economy, Path], Path]:
    """The CSV writer, for tests that build economy folders of their own."""
    return write_economy_folder


@pytest.fixture
def tiny_scenario() -> dict:
    """A small valid scenario on the tiny economy (folder ``eco`` next to the YAML file, see
    ``scenario_writer``), as a fresh dict that a test may break.

    Three channels, so that a non-positive-definite correlation matrix can be written.
    """
    channel = {
        "p_on": 0.1,
        "p_off": 0.2,
        "loading": 0.5,
        "severity": {"median": 0.5, "dispersion": 0.5},
        "buffer_months": 2,
        "exposure": {"default": 0.0, "sectors": {"MFG": 0.3}, "regions": {"CHN": 0.5}},
    }
    return {
        "name": "tiny",
        "start": "2027-01",
        "horizon_months": 12,
        "economy": "eco",
        "tension": {"start": "stationary", "phi": 0.8},
        "channels": {
            "chips": channel,
            "rare_earths": {**channel, "exposure": {"nodes": {"USA": {"FIN": 0.1}}}},
            "tariffs": channel,
        },
        "correlation": {"chips": {"rare_earths": 0.3}},
        "retaliation": {"chips": {"rare_earths": 0.2}},
        "propagation": {"downstream_weight": 0.8, "upstream_weight": 0.2},
    }


@pytest.fixture
def scenario_writer(tmp_path: Path, tiny_economy: rk.Economy) -> Callable[[dict], Path]:
    """Writes a scenario dict as ``tmp_path/scenario.yaml`` next to the tiny economy's folder."""
    write_economy_folder(tiny_economy, tmp_path / "eco")

    def write(data: dict, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
