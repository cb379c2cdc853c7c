"""Shared fixtures. Kernels and dask are imported lazily by the tests that need them."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import riskengine as rk

# Under CI the property tests draw the same examples every run: a failure reproduces, and no
# run passes or fails by the luck of the draw. Locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def truce_collapse():
    """The default scenario, compiled once per session."""
    return rk.compile_model(rk.load_scenario("truce_collapse"))


@pytest.fixture(scope="session")
def tiny_economy() -> rk.Economy:
    """2 regions x 2 sectors, balanced (Z 1 + Y 1 = x exactly), spectral radius of A 0.234.

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


@pytest.fixture(scope="session")
def economy_writer() -> Callable[[rk.Economy, Path], Path]:
    """The CSV writer, for tests that build economy folders of their own."""
    return write_economy_folder
