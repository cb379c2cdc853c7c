"""The model of MODEL.md sections 1-7 in plain numpy, written to be read: the tests' oracle.

Every fast path (the CPU and CUDA kernels, the engine) must equal this module for the same seed.
It is vectorized over paths only, loops over months, and computes in float64 throughout; the
cube's float32 is applied at the very end. The per-path summaries of a block are summed from
its cube arrays by :func:`riskengine.analysis.summaries`, as for every backend.

This module imports numpy, scipy.special, xarray and riskengine's own modules.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import expit, ndtr

from riskengine.analysis import summaries
from riskengine.compile import CompiledModel, compile_model
from riskengine.kernels import rng
from riskengine.scenario import Scenario
from riskengine.schema import VARIABLES, build_dataset, cube_shapes, periods

__all__ = [
    "credit_monthly",
    "draws",
    "monthly_from_normals",
    "simulate",
    "simulate_block",
    "simulate_block_into",
    "simulate_monthly",
]


def _exposure_multipliers(a, z0: np.ndarray) -> np.ndarray:
    """eta[p, c, n] (section 5) from the per-path draws z0[p, slot] of month 0."""
    C, N = a.exposure.shape
    F = a.factor_loadings.shape[1]
    zf = z0[:, 1 : 1 + C * F].reshape(-1, C, F)
    ze = z0[:, 1 + C * F : 1 + C * F + C * N].reshape(-1, C, N)
    xi = np.einsum("nf,pcf->pcn", a.factor_loadings, zf) + a.idiosyncratic_sd * ze
    sigma = a.exposure_sigma
    return np.exp(sigma * xi - 0.5 * sigma**2)


def draws(model: CompiledModel, seed: int, paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The untilted normals of the global path indices ``paths``: month 0's slots
    (P, path_slots) and the monthly slots (P, T, monthly_slots), as
    :mod:`riskengine.kernels.rng` lays them out."""
    C, N = model.arrays.exposure.shape
    F = model.arrays.factor_loadings.shape[1]
    z0 = rng.normals(seed, paths, [0], rng.path_slots(C, F, N))[:, 0, :]
    z = rng.normals(seed, paths, np.arange(1, model.horizon + 1), rng.monthly_slots(C))
    return z0, z


def simulate_monthly(model: CompiledModel, seed: int, p0: int, p1: int) -> dict[str, np.ndarray]:
    """Paths ``[p0, p1)`` at monthly resolution, float64, in the cube's layout.

    Returns
    -------
    dict
        ``loss`` (P, T, S, R), ``credit_loss`` (P, T, B), ``severity`` (P, T, C),
        ``tension`` (P, T), ``weight`` (P,), and the horizon's ``credit_loss_segment``
        (P, B, G), all float64.
    """
    z0, z = draws(model, seed, np.arange(p0, p1))
    out = monthly_from_normals(model, z0, z)
    credit, segment, log_ratio = credit_monthly(model, seed, p0, out.pop("q"))
    out["credit_loss"], out["credit_loss_segment"] = credit, segment
    out["weight"] = np.exp(out.pop("log_weight") + log_ratio)
    del out["on"]
    return out


def monthly_from_normals(model: CompiledModel, z0: np.ndarray, z: np.ndarray) -> dict:
    """Sections 1-7 (without credit) of paths whose untilted normals are ``z0`` (P, path_slots)
    and ``z`` (P, T, monthly_slots): the model as a function of its random numbers.

    The model's tilt (section 8, zero unless set) shifts the normals before they are used, and
    ``log_weight`` is the log likelihood ratio of the shifted ones; ``q`` (P, T, N) is each
    month's output loss per node (the credit stage's input) and ``on`` (P, T, C) each channel's
    regime. The reverse stress test evaluates paths through this function.
    """
    a = model.arrays
    T, C = model.horizon, len(model.channels)
    R, S = len(model.regions), len(model.sectors)
    N = R * S
    P = z0.shape[0]
    # Section 8: a mean shift mu of a normal z has the likelihood ratio exp(-mu z + mu^2 / 2)
    # at the shifted value. g_0's slot counts only when it is drawn (stationary tension); a
    # severity slot only in its channel's onset months (an unused slot changes no number, and
    # leaving its factor out keeps the estimate unbiased with a smaller variance).
    head = a.tilt_head.copy()
    if not a.tension_stationary:
        head[0] = 0.0
    z0 = z0.copy()
    z0[:, : head.size] += head
    log_w = np.zeros(P)
    for s in range(head.size):
        log_w += -head[s] * z0[:, s] + 0.5 * head[s] ** 2
    z = z + a.tilt_monthly[None, :, :]
    eta = _exposure_multipliers(a, z0)  # (P, C, N)
    shock_weights = a.exposure[None, :, :] * eta  # E[c, n] * eta[p, c, n]

    phi = a.tension_phi
    g = z0[:, 0].copy() if a.tension_stationary else np.full(P, a.tension_start)
    on = np.broadcast_to(a.initial_on, (P, C)).copy()
    sev = np.broadcast_to(a.initial_severity, (P, C)).copy()
    k = np.broadcast_to(a.initial_months_on, (P, C)).copy()
    supply_state = np.zeros((P, N))  # inoperability from supply shocks (a)
    demand_state = np.zeros((P, N))  # inoperability from demand shocks (b)
    stock = np.broadcast_to(a.stock_months, (P, C, N)).copy()
    is_supply = a.kind == 0
    idio = np.sqrt(1.0 - a.loading**2)
    off_diag = a.retaliation * (1.0 - np.eye(C))

    out = {
        "loss": np.zeros((P, T, S, R)),
        "severity": np.zeros((P, T, C)),
        "tension": np.zeros((P, T)),
        "q": np.zeros((P, T, N)),
        "on": np.zeros((P, T, C), dtype=bool),
    }
    for t in range(T):
        zg, zc, zs = z[:, t, 0], z[:, t, 1 : 1 + C], z[:, t, 1 + C : 1 + 2 * C]
        mu = a.tilt_monthly[t]
        for s in range(1 + C):
            log_w += -mu[s] * z[:, t, s] + 0.5 * mu[s] ** 2
        # 1. tension
        g = phi * g + np.sqrt(1.0 - phi**2) * zg
        # 2. channel latents: u = a g + sqrt(1 - a^2) (L zc)
        u = a.loading * g[:, None] + idio * (zc @ a.chol.T)
        # 3. regimes, with retaliation lowering the onset bar of channels still off
        bar = a.threshold_on - on.astype(np.float64) @ off_diag.T
        starts = ~on & (u > bar)
        stops = on & (u < a.threshold_off)
        for c in range(C):
            mu_s = mu[1 + C + c]
            log_w += starts[:, c] * (-mu_s * zs[:, c] + 0.5 * mu_s**2)
        new_sev = expit(a.severity_logit_median + a.severity_dispersion * zs)
        sev = np.where(starts, new_sev, sev)
        k = np.where(starts, 1, np.where(on & ~stops, k + 1, 0))
        on = (on & ~stops) | starts
        # 4. effective severity
        ramp = np.where(
            a.buffer_months > 0, np.minimum(1.0, k / np.maximum(a.buffer_months, 1e-300)), 1.0
        )
        e = on * sev * ramp * a.supply_left[:, t]
        # a scheduled channel follows its schedule instead of its regimes: the severity
        # observed month by month, already net of any substitution
        e = np.where(a.scheduled, a.schedule[:, t], e)
        # 5. direct shocks: supply cuts drawn from stocks first; lost sales, less diversion
        need = np.broadcast_to(e[:, :, None], stock.shape)
        draw = np.minimum(stock, need)
        # stocks rebuild only in months the channel cuts nothing
        rebuilt = stock - draw + a.stock_rebuild[:, None] * (e[:, :, None] == 0.0)
        stock = np.where(is_supply[:, None], np.minimum(a.stock_months, rebuilt), stock)
        uncovered = need - draw
        supply = np.einsum("pcn,pcn->pn", shock_weights[:, is_supply], uncovered[:, is_supply])
        supply = np.minimum(1.0, supply)
        lost = shock_weights[:, ~is_supply] * e[:, ~is_supply, None]  # (P, C_d, N)
        gained = np.einsum("cmn,pcn->pm", a.diversion[~is_supply], lost)
        demand = np.clip(lost.sum(axis=1) - gained, -1.0, 1.0)
        # 6. propagation: downstream for supply, upstream (Leontief) for demand
        supply_state = supply_state + a.recovery * (
            supply_state @ a.supply_matrix.T + supply - supply_state
        )
        demand_state = demand_state + a.recovery * (
            demand_state @ a.demand_matrix.T + demand - demand_state
        )
        q = np.clip(supply_state + demand_state, -1.0, 1.0)
        # 7. losses (an output gain is a negative loss)
        out["loss"][:, t] = (q * a.loss_scale).reshape(P, R, S).transpose(0, 2, 1)
        out["severity"][:, t] = e
        out["tension"][:, t] = g
        out["q"][:, t] = q
        out["on"][:, t] = on
    out["log_weight"] = log_w
    return out


def credit_monthly(
    model: CompiledModel, seed: int, p0: int, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Section 7's credit losses of paths ``p0 ..`` from their monthly output losses ``q``
    (P, T, N): each bank's monthly credit loss (P, T, B), the horizon's by bank and segment
    (P, B, G), and the log likelihood ratio of the tilted credit-cycle factors (P,). A year's
    PDs read the year's mean ``q`` (twelve months from the start)."""
    a = model.arrays
    P, T, _ = q.shape
    B, G = len(model.banks), len(model.segments)
    K = a.credit_bank.shape[0]
    Y = (T + 11) // 12
    rho = a.credit_rho
    log_ratio = np.zeros(P)
    if np.any(rho > 0.0):
        z = rng.normals(seed, np.arange(p0, p0 + P), [rng.CREDIT_MONTH], Y)[:, 0, :]
        for y in range(Y):
            mu = a.tilt_cycle[y]
            z[:, y] += mu
            log_ratio += -mu * z[:, y] + 0.5 * mu * mu
    else:
        z = np.zeros((P, Y))
    to_bank = np.zeros((K, B))
    to_bank[np.arange(K), a.credit_bank] = 1.0
    # The baseline through the same Phi as the stressed PD: a driver of 0 loses exactly 0.
    base = ndtr(a.credit_probit)
    credit = np.zeros((P, T, B))
    segment = np.zeros((P, B, G))
    for y in range(Y):
        months = slice(12 * y, min(T, 12 * y + 12))
        q_year = q[:, months].mean(axis=1)
        drivers = np.maximum(np.concatenate([q_year, q_year @ a.region_weight.T], axis=1), 0.0)
        d = drivers[:, a.credit_driver]
        shifted = a.credit_probit + a.credit_beta * d - np.sqrt(rho) * z[:, y, None]
        loss = a.credit_scale * (ndtr(shifted / np.sqrt(1.0 - rho)) - base)  # a month, (P, K)
        credit[:, months] = (loss @ to_bank)[:, None, :]
        n_months = months.stop - months.start
        np.add.at(segment, (slice(None), a.credit_bank, a.credit_segment), loss * n_months)
    return credit, segment, log_ratio


def simulate_block_into(
    model: CompiledModel,
    seed: int,
    p0: int,
    p1: int,
    period_of_month: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    """Paths ``[p0, p1)`` summed into periods, written into ``out`` (every variable of
    :data:`riskengine.schema.VARIABLES`, in the cube's layout and dtypes; see
    :func:`riskengine.backends.block_arrays`): the reference's form of the block contract."""
    monthly = simulate_monthly(model, seed, p0, p1)
    n_periods = int(period_of_month[-1]) + 1
    for name, values in monthly.items():
        if name in ("weight", "credit_loss_segment"):
            out[name][...] = values
            continue
        summed = np.zeros((values.shape[0], n_periods, *values.shape[2:]))
        np.add.at(summed, (slice(None), period_of_month), values)
        out[name][...] = summed.astype(np.float32)
    S, R = len(model.sectors), len(model.regions)
    summaries(out["loss"], out["credit_loss"], model.arrays.value_added_share.reshape(R, S).T, out)


def simulate_block(
    model: CompiledModel, seed: int, p0: int, p1: int, resolution: str = "month"
) -> dict[str, np.ndarray]:
    """Paths ``[p0, p1)`` summed into periods, in new arrays in the cube's layout and dtypes.

    This is the block contract every backend meets (see :mod:`riskengine.backends`).
    """
    period_of_month, starts = periods(model.start, model.horizon, resolution)
    out = {
        name: np.empty(shape, dtype=VARIABLES[name].dtype)
        for name, shape in cube_shapes(model, p1 - p0, len(starts)).items()
    }
    simulate_block_into(model, seed, p0, p1, period_of_month, out)
    return out


def simulate(
    scenario: Scenario | CompiledModel,
    paths: int,
    seed: int,
    resolution: str = "month",
) -> xr.Dataset:
    """Simulate ``paths`` paths with the reference model into an in-memory cube.

    Parameters
    ----------
    scenario
        A loaded scenario (or an already compiled model).
    paths
        Number of paths, simulated as paths ``0..paths-1``.
    seed
        In [0, 2**64).
    resolution
        ``month``, ``quarter``, ``year`` or ``horizon``: values are sums over each period.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> ds = simulate(load_scenario("truce_collapse"), paths=4, seed=1)
    >>> dict(ds.sizes)
    {'path': 4, 'time': 60, 'sector': 12, 'region': 7, 'bank': 6, 'channel': 4, 'segment': 15}
    """
    if paths <= 0:
        raise ValueError(f"paths must be a positive integer, got {paths}")
    model = scenario if isinstance(scenario, CompiledModel) else compile_model(scenario)
    data = simulate_block(model, seed, 0, paths, resolution)
    return build_dataset(
        model, data, np.arange(paths), seed=seed, backend="reference", resolution=resolution
    )
