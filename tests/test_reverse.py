"""Reverse stress testing (docs/model.md section 11): the design point of a linear Gaussian loss
is its closed form; on the library the answer loses X, is at least as likely as every path of an
ordinary run that does, and is stored with its parameters; bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dask_procs import riskengine

from riskengine.backends import run_block
from riskengine.errors import RunError
from riskengine.kernels import rng
from riskengine.reverse import design_point, path_loss, reverse_stress
from riskengine.tilt import Tilt

SEED = 20261203


@pytest.mark.parametrize("dim", [2, 40])
def test_linear_gaussian_design_point_is_the_closed_form(dim):
    """L = b'z: the nearest point with L >= X is z* = X b / |b|^2, from any feasible start."""
    gen = np.random.default_rng(dim)
    b = gen.normal(size=dim)
    X = 4.0 * np.linalg.norm(b)  # a 4-sigma loss
    starts = gen.normal(size=(5000, dim)) * 3.0
    found = design_point(lambda Z: Z @ b, X, starts)
    np.testing.assert_allclose(found.z, X * b / (b @ b), rtol=1e-6, atol=1e-8)
    assert found.loss >= X
    assert found.norm2 == pytest.approx(16.0, rel=1e-6)
    assert found.start_norm2 >= found.norm2


def test_no_feasible_start_is_refused():
    with pytest.raises(RunError, match="no path of the run loses"):
        design_point(lambda Z: Z.sum(axis=1), 100.0, np.zeros((3, 2)))


@pytest.fixture(scope="module")
def answer(truce_collapse):
    """A 95 % tail loss of truce_collapse, searched from 2,000 paths."""
    block = run_block(truce_collapse, SEED, 0, 2000, "horizon", "cpu")
    threshold = float(np.quantile(block["loss_total"].sum(axis=1), 0.95))
    return reverse_stress(truce_collapse, threshold, seed=SEED, paths=2000, rounds=4), block


def test_library_answer_loses_x_and_beats_every_path_of_the_run(truce_collapse, answer):
    result, block = answer
    X = result.threshold
    # the point's loss, recomputed from its normals by the reference model
    assert path_loss(truce_collapse)(result.point.z[None, :])[0] >= X
    assert result.point.loss >= X
    # every path of the run that loses X (clearly, beyond the kernel's float32 rounding) is
    # at most as likely: its normals are at least as far from the origin
    L = block["loss_total"].sum(axis=1)
    losing = np.flatnonzero(L >= X * (1 + 1e-5))
    C, N = truce_collapse.arrays.exposure.shape
    F = truce_collapse.arrays.factor_loadings.shape[1]
    z0 = rng.normals(SEED, losing, [0], rng.path_slots(C, F, N))[:, 0, :]
    zm = rng.normals(SEED, losing, np.arange(1, 61), rng.monthly_slots(C))
    norm2 = (z0**2).sum(axis=1) + (zm**2).sum(axis=(1, 2))
    assert result.point.norm2 <= norm2.min()
    assert result.point.norm2 < 0.5 * norm2.min()  # and the search moved well beyond the start
    assert result.log_likelihood_ratio == pytest.approx(-0.5 * result.point.norm2)


def test_the_story_is_the_path(truce_collapse, answer):
    result, _ = answer
    s = result.story
    assert sum(s["loss_by_region"].values()) == pytest.approx(result.point.loss, rel=1e-12)
    assert s["distance"] == pytest.approx(np.sqrt(result.point.norm2))
    assert set(s["channels"]) == set(truce_collapse.channels)
    active = [c for c, ch in s["channels"].items() if ch["episodes"]]
    assert active  # a tail loss needs at least one episode
    for ch in s["channels"].values():
        for e in ch["episodes"]:
            assert 0 < e["peak_severity"] <= 1 and e["months"] >= 1


def test_region_and_bad_input(truce_collapse):
    with pytest.raises(RunError, match="--region MARS: unknown"):
        reverse_stress(truce_collapse, 1.0, region="MARS", paths=10)
    with pytest.raises(RunError, match="positive loss"):
        reverse_stress(truce_collapse, -1.0, paths=10)
    with pytest.raises(RunError, match="no path of 100 loses"):
        reverse_stress(truce_collapse, 1e12, paths=100)
    with pytest.raises(RunError, match="seed must lie in"):
        reverse_stress(truce_collapse, 1.0, seed=-1, paths=10)


def test_cli_reverse_writes_the_answer_and_its_tilt(tmp_path, truce_collapse):
    out = tmp_path / "answer"
    args = ("reverse", "truce_collapse", "--loss", "4000", "--region", "EU27_GBR", "--paths",
            "2000", "--seed", "5", "--out", out)  # fmt: skip
    proc = riskengine(*args)
    text, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "the most likely path losing at least 4,000 USD bn" in text
    doc = json.loads((out / "result.json").read_text())
    assert doc["region"] == "EU27_GBR" and doc["seed"] == 5 and doc["paths"] == 2000
    assert doc["story"]["loss_by_region"]["EU27_GBR"] >= 4_000_000  # USD million
    assert (out / "path.png").stat().st_size > 10_000
    tilt = Tilt.from_json((out / "tilt.json").read_text())
    assert tilt.apply(truce_collapse).identity != truce_collapse.identity
    again = riskengine(*args)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 2 and "already holds an answer" in err
    assert err.strip().count("\n") == 0
    bad = riskengine("reverse", "truce_collapse", "--loss", "1e12", "--paths", "50", "--out",
                     tmp_path / "none")  # fmt: skip
    _, err = bad.communicate(timeout=300)
    assert bad.returncode == 2 and "lower --loss" in err and err.strip().count("\n") == 0
    many = riskengine("reverse", "truce_collapse", "--loss", "1", "--paths", "2000000")
    _, err = many.communicate(timeout=300)
    assert many.returncode == 2 and "--paths 2000000" in err
