"""The peers (benchmarks/peers) simulate the model riskengine does: with random numbers of their
own they agree with the engine in distribution, path by path totals compared by their means
(within 4 standard errors of the difference) and by a two-sample Kolmogorov-Smirnov test, on
the world's horizon loss and every bank's credit loss. ``roofline.py`` times them; a peer that
computed another model would make ``engine_vs_peers=`` meaningless."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import riskengine as rk

PATHS = 6000


@pytest.fixture(scope="module")
def engine(model) -> tuple[np.ndarray, np.ndarray]:
    ds = rk.simulate(model, PATHS, seed=11, resolution="horizon")
    loss = ds.loss.sum(["time", "sector", "region"]).values
    credit = ds.credit_loss.sum("time").transpose("path", "bank").values
    return loss, credit


def assert_agree(peer: tuple[np.ndarray, np.ndarray], engine) -> None:
    (peer_loss, peer_credit), (loss, credit) = peer, engine
    assert peer_credit.shape == credit.shape
    columns = [("world loss", peer_loss.sum(axis=1), loss)]
    columns += [(f"bank {b}", peer_credit[:, b], credit[:, b]) for b in range(credit.shape[1])]
    for name, x, y in columns:
        se = np.sqrt(x.var() / x.size + y.var() / y.size)
        assert abs(x.mean() - y.mean()) < 4 * se, (name, x.mean(), y.mean(), se)
        assert stats.ks_2samp(x, y).pvalue > 1e-3, (name, stats.ks_2samp(x, y))


def test_numpy_peer_agrees_with_the_engine_in_distribution(model, engine):
    from peers import numpy_peer

    assert_agree(numpy_peer.simulate(model, PATHS, seed=5, threads=2), engine)


def test_jax_peer_agrees_with_the_engine_in_distribution(model, engine):
    pytest.importorskip("jax", reason="the JAX peer needs the `peers` extra (jax)")
    from peers import jax_peer

    assert_agree(jax_peer.simulate(model, PATHS, seed=5), engine)


def test_the_comparison_finds_a_peer_that_leaves_out_the_stocks(model, engine, monkeypatch):
    """The test above can fail: a peer without the supply stocks (section 5) is refused."""
    from peers import model as peer_model
    from peers import numpy_peer

    parameters = peer_model.parameters

    def no_stocks(m, xp=np):
        p = parameters(m, xp)
        object.__setattr__(p, "stock_months", np.zeros_like(p.stock_months))
        return p

    monkeypatch.setattr(numpy_peer, "parameters", no_stocks)
    with pytest.raises(AssertionError):
        assert_agree(numpy_peer.simulate(model, PATHS, seed=5, threads=2), engine)
