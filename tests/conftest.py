"""Shared fixtures. Kernels and dask are imported lazily by the tests that need them."""

from __future__ import annotations

import pytest

import riskengine as rk


@pytest.fixture(scope="session")
def truce_collapse():
    """The default scenario, compiled once per session."""
    return rk.compile_model(rk.load_scenario("truce_collapse"))
