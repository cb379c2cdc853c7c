"""The trade-war model as a quant would write it without riskengine: docs/model.md sections 1-7,
vectorized over a batch of paths, float32, one function per month over an array module ``xp``
(``numpy`` or ``jax.numpy``), so that the numpy peer loops over it and the JAX peer scans it.

It reads the model's parameters (the economy, the channels, the credit book) from a compiled
riskengine model, as a peer would read the same published tables; everything else is its own:
its random numbers (``numpy.random.Generator`` or ``jax.random``), its layout, its arithmetic.
It does not do importance sampling (the model's tilt must be zero) and returns only what a risk
table needs: each path's horizon loss by node and credit loss by bank.

The peers agree with riskengine in distribution, not bit for bit (benchmarks/test_peers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Parameters:
    """The model's parameters in the peers' layout: float32, supply and demand channels apart,
    each product's operator transposed for ``state @ operator``."""

    horizon: int
    phi: Any  # tension's AR(1) coefficient
    g_sd: Any  # sqrt(1 - phi^2)
    g_start: Any
    stationary: bool
    loading: Any  # (C,) the channels' loading on tension
    idio: Any  # (C,) sqrt(1 - loading^2)
    chol_t: Any  # (C, C) L^T of the channels' correlation
    threshold_on: Any  # (C,)
    threshold_off: Any  # (C,)
    retaliation_t: Any  # (C, C) retaliation off the diagonal, transposed
    sev_median: Any  # (C,) severity's logit median
    sev_sd: Any  # (C,) and dispersion
    buffer: Any  # (C,) months of ramp (0: none)
    initial_on: Any  # (C,) bool
    initial_severity: Any  # (C,)
    initial_months_on: Any  # (C,)
    scheduled: Any  # (C,) bool: the channel follows its schedule
    supply_left: Any  # (T, C)
    schedule: Any  # (T, C)
    exposure: Any  # (C, N)
    factor_loadings: Any  # (N, F)
    idiosyncratic_sd: Any  # (N,) or scalar
    exposure_sigma: Any  # (N,)
    supply: Any  # (Cs,) indices of the supply channels
    demand: Any  # (Cd,) indices of the others
    stock_months: Any  # (Cs, N)
    stock_rebuild: Any  # (Cs, 1)
    diverted: Any  # (D,) the entries of lost (P, Cd * N) that any buyer diverts
    diversion_t: Any  # (D, N): gained = lost[:, diverted] @ diversion_t (most are zero)
    supply_t: Any  # (N, N) W^T
    demand_t: Any  # (N, N) D^T
    recovery: Any  # (N,)
    loss_scale: Any  # (N,)
    region_weight_t: Any  # (N, R)
    credit_driver: Any  # (K,) column of [q, q @ region_weight^T] driving each exposure
    credit_probit: Any  # (K,)
    credit_beta: Any  # (K,)
    credit_rho: Any  # (K,)
    credit_scale: Any  # (K,)
    to_bank: Any  # (K, B) one-hot

    @property
    def channels(self) -> int:
        return len(self.loading)

    @property
    def factors(self) -> int:
        return self.factor_loadings.shape[1]

    @property
    def nodes(self) -> int:
        return self.exposure.shape[1]


def parameters(model, xp=np) -> Parameters:
    """The parameters of a compiled riskengine model (``model.arrays``), as ``xp`` arrays."""
    a = model.arrays
    if a.tilt_head.any() or a.tilt_monthly.any() or a.tilt_cycle.any():
        raise ValueError("the peers simulate untilted models only")
    f32 = np.float32
    C, N = a.exposure.shape
    supply = np.flatnonzero(a.kind == 0)
    demand = np.flatnonzero(a.kind != 0)
    K, B = a.credit_bank.shape[0], int(a.credit_bank.max()) + 1
    to_bank = np.zeros((K, B), f32)
    to_bank[np.arange(K), a.credit_bank] = 1.0
    # gained[m] = sum over c, n of diversion[c, m, n] lost[c, n]: the rows of lost's (c, n) that
    # divert anything (65 of 168 x 84 entries are nonzero in the default economy)
    diversion = a.diversion[demand].transpose(0, 2, 1).reshape(len(demand) * N, N)
    diverted = np.flatnonzero(np.abs(diversion).sum(axis=1))
    values = {
        "horizon": model.horizon,
        "phi": f32(a.tension_phi),
        "g_sd": f32(np.sqrt(1.0 - a.tension_phi**2)),
        "g_start": f32(a.tension_start),
        "stationary": bool(a.tension_stationary),
        "loading": a.loading,
        "idio": np.sqrt(1.0 - a.loading**2),
        "chol_t": a.chol.T,
        "threshold_on": a.threshold_on,
        "threshold_off": a.threshold_off,
        "retaliation_t": (a.retaliation * (1.0 - np.eye(C))).T,
        "sev_median": a.severity_logit_median,
        "sev_sd": a.severity_dispersion,
        "buffer": a.buffer_months,
        "initial_on": np.asarray(a.initial_on, bool),
        "initial_severity": a.initial_severity,
        "initial_months_on": a.initial_months_on,
        "scheduled": np.asarray(a.scheduled, bool),
        "supply_left": a.supply_left.T,
        "schedule": a.schedule.T,
        "exposure": a.exposure,
        "factor_loadings": a.factor_loadings,
        "idiosyncratic_sd": a.idiosyncratic_sd,
        "exposure_sigma": a.exposure_sigma,
        "supply": supply,
        "demand": demand,
        "stock_months": np.broadcast_to(a.stock_months, (C, N))[supply],
        "stock_rebuild": np.asarray(a.stock_rebuild)[supply][:, None],
        "diverted": diverted,
        "diversion_t": diversion[diverted],
        "supply_t": a.supply_matrix.T,
        "demand_t": a.demand_matrix.T,
        "recovery": a.recovery,
        "loss_scale": a.loss_scale,
        "region_weight_t": a.region_weight.T,
        "credit_driver": a.credit_driver,
        "credit_probit": a.credit_probit,
        "credit_beta": a.credit_beta,
        "credit_rho": a.credit_rho,
        "credit_scale": a.credit_scale,
        "to_bank": to_bank,
    }
    converted = {}
    for field in fields(Parameters):
        value = values[field.name]
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "f":
                value = value.astype(f32)
            value = xp.asarray(np.ascontiguousarray(value))
        converted[field.name] = value
    return Parameters(**converted)


def path_slots(p: Parameters) -> int:
    """Normals a path draws once: tension's start, the exposure factors and idiosyncrasies."""
    return 1 + p.channels * p.factors + p.channels * p.nodes


def month_slots(p: Parameters) -> int:
    """Normals a path draws each month: tension, a latent and a severity per channel."""
    return 1 + 2 * p.channels


def start(p: Parameters, z0, xp):
    """The state before month 1 of a batch of paths whose once-drawn normals are ``z0`` (P,
    :func:`path_slots`), and the paths' shock weights (exposure x its multiplier, section 5) of
    the supply channels (P, Cs, N) and of the others (P, Cd, N)."""
    P, C, F, N = z0.shape[0], p.channels, p.factors, p.nodes
    zf = z0[:, 1 : 1 + C * F].reshape(P, C, F)
    ze = z0[:, 1 + C * F :].reshape(P, C, N)
    xi = xp.einsum("nf,pcf->pcn", p.factor_loadings, zf) + p.idiosyncratic_sd * ze
    eta = xp.exp(p.exposure_sigma * xi - 0.5 * p.exposure_sigma**2)
    weights = p.exposure * eta  # (P, C, N)
    weights = (weights[:, p.supply], weights[:, p.demand])  # apart once, not every month
    g = z0[:, 0] if p.stationary else xp.full((P,), p.g_start, xp.float32)
    on = xp.broadcast_to(p.initial_on, (P, C))
    severity = xp.broadcast_to(p.initial_severity, (P, C))
    months_on = xp.broadcast_to(p.initial_months_on, (P, C)).astype(xp.float32)
    stock = xp.broadcast_to(p.stock_months, (P, *p.stock_months.shape))
    a = xp.zeros((P, N), xp.float32)
    b = xp.zeros((P, N), xp.float32)
    return (g, on, severity, months_on, stock, a, b), weights


def month(p: Parameters, weights, state, z, supply_left, schedule, xp):
    """One month of a batch of paths: the new state and each path's output loss per node ``q``
    (P, N). ``z`` (P, :func:`month_slots`) are the month's normals; ``supply_left`` and
    ``schedule`` (C,) the month's column of each."""
    g, on, severity, months_on, stock, a, b = state
    C = p.channels
    zg, zc, zs = z[:, 0], z[:, 1 : 1 + C], z[:, 1 + C :]
    # 1-3: tension, the channels' latents, their regimes (retaliation lowers the bar of the
    # channels still off)
    g = p.phi * g + p.g_sd * zg
    u = p.loading * g[:, None] + p.idio * (zc @ p.chol_t)
    bar = p.threshold_on - on.astype(xp.float32) @ p.retaliation_t
    starts = ~on & (u > bar)
    stops = on & (u < p.threshold_off)
    drawn = 1.0 / (1.0 + xp.exp(-(p.sev_median + p.sev_sd * zs)))
    severity = xp.where(starts, drawn, severity)
    months_on = xp.where(starts, 1.0, xp.where(on & ~stops, months_on + 1.0, 0.0))
    on = (on & ~stops) | starts
    # 4: effective severity, ramped over the buffer months
    ramp = xp.where(p.buffer > 0, xp.minimum(1.0, months_on / xp.maximum(p.buffer, 1e-30)), 1.0)
    e = xp.where(p.scheduled, schedule, on * severity * ramp * supply_left)
    # 5: supply cuts are drawn from stocks first (rebuilt in months with no cut); lost sales,
    # less what is diverted to other buyers
    need = e[:, p.supply, None]
    drawn_stock = xp.minimum(stock, need)
    uncovered = need - drawn_stock
    stock = xp.minimum(p.stock_months, stock - drawn_stock + p.stock_rebuild * (need == 0.0))
    supply = xp.minimum(1.0, (weights[0] * uncovered).sum(axis=1))
    lost = weights[1] * e[:, p.demand, None]
    gained = lost.reshape(lost.shape[0], -1)[:, p.diverted] @ p.diversion_t
    demand = xp.clip(lost.sum(axis=1) - gained, -1.0, 1.0)
    # 6: propagation, downstream for supply and upstream for demand
    a = a + p.recovery * (a @ p.supply_t + supply - a)
    b = b + p.recovery * (b @ p.demand_t + demand - b)
    q = xp.clip(a + b, -1.0, 1.0)
    return (g, on, severity, months_on, stock, a, b), q


def year_credit(p: Parameters, q_year, z_cycle, ndtr, xp):
    """A month's credit loss by bank (P, B) in a year whose mean output loss per node is
    ``q_year`` (P, N), ``z_cycle`` (P,) the year's credit-cycle normal (section 7)."""
    drivers = xp.maximum(xp.concatenate([q_year, q_year @ p.region_weight_t], axis=1), 0.0)
    d = drivers[:, p.credit_driver]
    rho = p.credit_rho
    shifted = p.credit_probit + p.credit_beta * d - xp.sqrt(rho) * z_cycle[:, None]
    # The baseline PD through the same call as the stressed one, so that a driver of 0 loses
    # exactly 0 (XLA would fold a constant baseline at compile time, a few ulps apart).
    baseline = xp.broadcast_to(p.credit_probit, shifted.shape)
    stressed, base = ndtr(xp.stack([shifted / xp.sqrt(1.0 - rho), baseline]))
    return (p.credit_scale * (stressed - base)) @ p.to_bank


def years(horizon: int) -> list[tuple[int, int]]:
    """The months ``[t0, t1)`` of each year of the horizon."""
    return [(t0, min(horizon, t0 + 12)) for t0 in range(0, horizon, 12)]
