"""The model in JAX: one ``jax.jit`` function per block of paths, the months a ``lax.scan``
(XLA fuses each month's elementwise work and runs the products on every core).

    from peers import jax_peer
    loss, credit = jax_peer.simulate(model, paths=100_000, seed=1)

This is the implementation a competent quant writes with JAX: the month written once, scanned
within each year (a year's mean output loss drives its credit losses), float32, compiled once
per block size; random numbers from ``jax.random`` (threefry), a key per block.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from peers import model as peer

BLOCK = 16384  # paths per call: large enough that XLA's threads share every product


@partial(jax.jit, static_argnums=(0, 2))
def _block(p: peer.Parameters, key, paths: int):
    """One block's horizon loss by node and credit loss by bank (``p`` is static: its arrays
    become the compiled function's constants)."""
    k0, k1, k2 = jax.random.split(key, 3)
    z0 = jax.random.normal(k0, (paths, peer.path_slots(p)), jnp.float32)
    z = jax.random.normal(k1, (p.horizon, paths, peer.month_slots(p)), jnp.float32)
    z_cycle = jax.random.normal(k2, (len(peer.years(p.horizon)), paths), jnp.float32)
    state, weights = peer.start(p, z0, jnp)

    def step(state, inputs):
        return peer.month(p, weights, state, *inputs, jnp)

    loss = jnp.zeros((paths, p.nodes), jnp.float32)
    credit = jnp.zeros((paths, p.to_bank.shape[1]), jnp.float32)
    for y, (t0, t1) in enumerate(peer.years(p.horizon)):
        inputs = (z[t0:t1], p.supply_left[t0:t1], p.schedule[t0:t1])
        state, q = jax.lax.scan(step, state, inputs)
        q_year = q.sum(axis=0)
        loss = loss + q_year
        credit = credit + (t1 - t0) * peer.year_credit(p, q_year / (t1 - t0), z_cycle[y], ndtr, jnp)
    return loss * p.loss_scale, credit


class _Static:
    """The parameters as a hashable static argument (by identity: one compile per model)."""

    def __init__(self, p: peer.Parameters) -> None:
        self.p = p

    def __getattr__(self, name):
        return getattr(self.p, name)


_STATIC: dict[str, _Static] = {}  # by the model's identity: a block compiles once per model


def simulate(model, paths: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``paths`` paths of a compiled riskengine ``model``: horizon loss by node (paths, N) and
    credit loss by bank (paths, B), as numpy arrays."""
    if model.identity not in _STATIC:
        _STATIC[model.identity] = _Static(peer.parameters(model, np))
    p = _STATIC[model.identity]
    key = jax.random.key(seed)
    parts = []
    for index, p0 in enumerate(range(0, paths, BLOCK)):
        size = min(BLOCK, paths - p0)
        parts.append(_block(p, jax.random.fold_in(key, index), size))
    return tuple(np.concatenate([np.asarray(x[i]) for x in parts]) for i in range(2))
