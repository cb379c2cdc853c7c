"""The model (MODEL.md sections 1-7) over a set of lanes, written once for the CPU and CUDA kernels.

These are plain Python functions on scalars and arrays, with no allocation, so that
:func:`riskengine.kernels.targets.compile_functions` can compile the same source with
``numba.njit`` and with ``numba.cuda.jit(device=True)``.

Lanes: every state array has the paths of one set of lanes on its **last** axis, ``L`` of them,
lane ``i`` holding path ``paths[i]``. The CPU kernel runs a chunk of 32 paths as 32 lanes: each
function's innermost loop then runs over the lanes, a fixed count of contiguous elements that the
compiler vectorizes (Philox, Box-Muller, the regimes, the state update: all across paths). The
CUDA kernel runs one path per thread with ``L = 1``, a block's threads sharing their products
(``cuda``). A lane's numbers never depend on the other
lanes' values; where a target's product gives a column's bits by its position (BLAS), a path's
bits depend on its lane, which the CPU kernel takes from the path's group alone (``cpu``).

The month loop, :func:`simulate_lanes`, is written once here for every target: per set of lanes
it calls

1. :func:`init_lanes` and :func:`init_weights` once: initial regimes, ``g_0`` and the exposure
   weights ``E * eta``;
2. each month ``t``: :func:`month_step` (tension, latents, regimes, effective severity, their
   period sums), :func:`direct_shocks` (supply cuts net of stocks; lost sales net of
   diversion), :func:`propagate` twice (``ma = W a`` downstream, ``mb = D b`` upstream), then
   :func:`update_lanes` (the shocks clipped, the two states, the output loss ``q``'s period
   and year sums); in the quiet months before any lane's first shock (every effective
   severity 0) only :func:`month_step` runs: the rest would change no bit;
3. at each period's end: :func:`period_losses`, :func:`add_summaries` (the horizon's totals by
   region), :func:`write_period` for each lane, and the period sums set back to 0; at each
   year's end (twelve months from the start, or the horizon's end), :func:`write_year`, the
   year's mean ``q`` per node that the credit stage (:mod:`riskengine.kernels.credit`) reads;
   at the horizon's end, :func:`write_summaries`.

A target supplies only what differs: the state's allocation and the lanes' grid (the CPU kernel
runs chunks of 32 lanes in a ``prange``, the CUDA kernel one lane per thread), and its own
products: :func:`propagate` is a loop here (the reference for both), which the CPU kernel
replaces with a single BLAS product over a chunk and the CUDA kernel with a tiled product over
a block's paths, and the CUDA kernel decides the quiet-month skip (:func:`_all_zero`) for a
whole block (``targets.compile_functions(..., replace=...)``).

Random numbers follow the slot layout of :mod:`riskengine.kernels.rng`. A severity is drawn
(out of the vectorized loops) only for the lanes whose channel starts an episode, and
exposures that are zero draw nothing; neither changes any number.

Precision: the state ``q`` and its update are float32, like the propagation product, the
expensive part (16 lanes to a vector instead of 8); draws, regimes, direct shocks and every period
and year sum are float64. Regimes are held as 0.0/1.0 and months as float64 counts (exact), so
that the regime update is arithmetic, not branches.

This module imports numpy, math and the rng module only.
"""

from __future__ import annotations

import math

import numpy as np

from riskengine.kernels.rng import (
    MASK32,
    SHIFT32,
    box_muller,
    cos_sin_turns,
    log_uniform,
    normal,
    philox4x32,
    philox_round,
)

__all__ = [
    "FUNCTIONS",
    "OUT_OF_LINE",
    "STATE",
    "direct_shocks",
    "init_lanes",
    "init_weights",
    "month_step",
    "period_losses",
    "propagate",
    "simulate_lanes",
    "update_lanes",
    "write_period",
    "write_year",
]

# The names of a set of lanes' state arrays, in the order of the tuple ``simulate_lanes`` takes
# (each target allocates it: cpu.chunk_state, the CUDA kernel's local arrays).
STATE = (
    "g", "on", "severity", "months_on", "head", "weights", "z", "scratch", "e", "supply",
    "demand", "stock", "a", "b", "ma", "mb", "q_sum", "year_sum", "sev_sum", "g_sum",
    "values", "loss_sum", "va_sum", "log_weight",
)  # fmt: skip


def _pair(k0, k1, path, month, pair):
    """The two normals of slots ``2 pair`` (cos) and ``2 pair + 1`` (sin), as rng lays them out."""
    p = np.uint64(path)
    w0, w1, w2, w3 = philox4x32(
        p & MASK32, p >> SHIFT32, np.uint64(month), np.uint64(pair // 2), k0, k1
    )
    if pair % 2 == 0:
        return box_muller(w0, w1)
    return box_muller(w2, w3)


def _draw_pairs(k0, k1, paths, month, pairs, z):
    """Slots ``0 .. 2 pairs - 1`` of ``month`` into ``z[slot, lane]`` (lane ``i``: path
    ``paths[i]``)."""
    L = z.shape[1]
    for pair in range(pairs):
        for i in range(L):
            z_cos, z_sin = _pair(k0, k1, paths[i], month, pair)
            z[2 * pair, i] = z_cos
            z[2 * pair + 1, i] = z_sin


def init_lanes(km, k0, k1, paths, g, on, severity, months_on, head, log_weight):
    """Start the lanes' regimes: as the scenario sets them, ``g_0``, and the log likelihood
    ratio of the tilted month-0 slots (section 8; 0 without a tilt).

    ``head`` (``2 + C F`` rows: whole normal pairs) receives month 0's first slots (``g_0`` when
    stationary, then ``zf[c, f]`` at row ``1 + c F + f``), tilted, which
    :func:`init_weights` reads.
    """
    C, F = km.exposure.shape[0], km.factor_loadings.shape[1]
    L = g.shape[0]
    for c in range(C):
        for i in range(L):
            on[c, i] = 1.0 if km.initial_on[c] else 0.0
            severity[c, i] = km.initial_severity[c]
            months_on[c, i] = km.initial_months_on[c]
    _draw_pairs(k0, k1, paths, 0, (2 + C * F) // 2, head)
    # Section 8: a mean shift mu of a normal has the likelihood ratio exp(-mu z + mu^2 / 2) at
    # the shifted value z (adding a zero shift changes no number).
    tilt = km.tilt_head
    for i in range(L):
        log_weight[i] = 0.0
    for s in range(tilt.shape[0]):
        mu = tilt[s]
        for i in range(L):
            head[s, i] += mu
            log_weight[i] += -mu * head[s, i] + 0.5 * mu * mu
    for i in range(L):
        g[i] = head[0, i] if km.tension_stationary else km.tension_start


def init_weights(km, k0, k1, paths, head, weights):
    """The lanes' exposure weights: ``weights[k, i]`` is ``E[c, n] eta[c, n]`` of the
    ``k``-th nonzero exposure (``km.exposure_channel[k]``, ``km.exposure_node[k]``), from the
    factors :func:`init_lanes` left in ``head`` and month 0's idiosyncratic slots."""
    # Arrays are read into locals once: each read of a tuple field costs numba a reference count.
    exposure = km.exposure
    loadings = km.factor_loadings
    idiosyncratic_sd = km.idiosyncratic_sd
    exposure_sigma = km.exposure_sigma
    channel_of = km.exposure_channel
    node_of = km.exposure_node
    C, N = exposure.shape
    F = loadings.shape[1]
    L = weights.shape[1]
    # xi, then E eta, in passes over the lanes: the draws vectorize, the exponentials (libm)
    # do not and run in a pass of their own.
    for k in range(channel_of.shape[0]):
        c = channel_of[k]
        n = node_of[k]
        slot = 1 + C * F + c * N + n
        for i in range(L):
            z_cos, z_sin = _pair(k0, k1, paths[i], 0, slot // 2)
            weights[k, i] = idiosyncratic_sd[n] * (z_cos if slot % 2 == 0 else z_sin)
        for f in range(F):
            for i in range(L):
                weights[k, i] += loadings[n, f] * head[1 + c * F + f, i]
        sigma = exposure_sigma[n]
        for i in range(L):
            weights[k, i] = exposure[c, n] * math.exp(sigma * weights[k, i] - 0.5 * sigma**2)


def month_step(
    km, k0, k1, paths, t, g, on, severity, months_on, z, scratch, e, g_sum, sev_sum, log_weight
):  # fmt: skip
    """Month ``t`` (0-based; rng month ``t + 1``) of sections 1-4 for every lane.

    Updates ``g`` and the regimes in place, writes the effective severities into ``e`` (C, L)
    and adds ``g`` and ``e`` to their period sums. The month's tilt (section 8) shifts the
    tension and channel innovations, and a severity draw at an onset; ``log_weight`` gains
    their log likelihood ratios. ``z`` (``C + 2`` rows: whole normal pairs
    for slots ``0 .. C``) and ``scratch`` (C, L) are work space.
    """
    loading = km.loading
    idiosyncratic = km.idiosyncratic_loading
    chol = km.chol
    retaliation = km.retaliation
    threshold_on = km.threshold_on
    threshold_off = km.threshold_off
    buffer_months = km.buffer_months
    supply_left = km.supply_left
    C = loading.shape[0]
    L = g.shape[0]
    month = t + 1
    _draw_pairs(k0, k1, paths, month, (C + 2) // 2, z)  # slots 0..C: tension, innovations
    tilt = km.tilt_monthly
    for s in range(C + 1):
        mu = tilt[t, s]
        for i in range(L):
            z[s, i] += mu
            log_weight[i] += -mu * z[s, i] + 0.5 * mu * mu
    phi = km.tension_phi
    innovation_sd = km.tension_innovation_sd
    for i in range(L):
        g[i] = phi * g[i] + innovation_sd * z[0, i]
        g_sum[i] += g[i]
    # Retaliation lowers the onset bar by last month's regimes: all bars before any update.
    for c in range(C):
        for i in range(L):
            scratch[c, i] = 0.0
        for c2 in range(C):
            for i in range(L):
                scratch[c, i] += retaliation[c, c2] * on[c2, i]
    # The latents (L zc) go into e until the effective severities replace them; lanes are the
    # innermost loop everywhere, which is what the compiler vectorizes.
    for c in range(C):
        for i in range(L):
            e[c, i] = 0.0
        for c2 in range(c + 1):
            for i in range(L):
                e[c, i] += chol[c, c2] * z[1 + c2, i]
    for c in range(C):
        for i in range(L):
            u = loading[c] * g[i] + idiosyncratic[c] * e[c, i]
            was_on = on[c, i]
            stays = was_on * (u >= threshold_off[c])
            starts = (1.0 - was_on) * (u > threshold_on[c] - scratch[c, i])
            on[c, i] = stays + starts
            months_on[c, i] = (months_on[c, i] + 1.0) * stays + starts
            scratch[c, i] = starts
    # Severity draws at onsets: rare, so out of the vectorized loops. An unused severity slot
    # takes no part in the likelihood ratio (it changes no number).
    for c in range(C):
        mu = tilt[t, 1 + C + c]
        for i in range(L):
            if scratch[c, i] != 0.0:
                zs = normal(k0, k1, paths[i], month, 1 + C + c) + mu
                log_weight[i] += -mu * zs + 0.5 * mu * mu
                x = km.severity_logit_median[c] + km.severity_dispersion[c] * zs
                severity[c, i] = 1.0 / (1.0 + math.exp(-x))
    for c in range(C):
        b = buffer_months[c]
        left = supply_left[c, t]
        if km.scheduled[c]:  # the channel follows its schedule (observed, net of substitution)
            for i in range(L):
                e[c, i] = km.schedule[c, t]
        elif b > 0.0:
            for i in range(L):
                ramp = min(1.0, months_on[c, i] / b)
                e[c, i] = on[c, i] * severity[c, i] * ramp * left
        else:
            for i in range(L):
                e[c, i] = on[c, i] * severity[c, i] * 1.0 * left
        for i in range(L):
            sev_sum[c, i] += e[c, i]


def direct_shocks(km, weights, e, stock, supply, demand):
    """Section 5: this month's direct shocks over the nonzero exposures ``k`` (channel c, node
    n, weight ``E[c, n] eta[c, n]``).

    A supply channel's cut is drawn from the buyer's stock first (``stock[k]``, months of
    normal use, rebuilt at ``km.stock_rebuild`` months a month while the channel cuts nothing,
    up to its level at the start); only what the stock cannot cover is added to
    ``supply[n]``: ``sum weights * uncovered``. A demand (or finance) channel's lost sales are
    added to ``demand[n]``, less the share diverted to bystander nodes (``km.diversion_*``).

    ``supply`` and ``demand`` are zero on entry, and left unclipped: :func:`update_lanes`
    reads them as ``min(1, supply)`` and ``clip(demand, -1, 1)`` and sets them back to zero in
    the same pass (one pass over the lanes' nodes a month instead of three).
    """
    channel_of = km.exposure_channel
    node_of = km.exposure_node
    kind = km.kind
    full = km.exposure_stock
    rebuild = km.stock_rebuild
    first = km.diversion_first
    gains_to = km.diversion_node
    coef = km.diversion_coef
    L = supply.shape[1]
    # Exposures are ordered by channel, so each node's sum runs over channels in order.
    for k in range(channel_of.shape[0]):
        c = channel_of[k]
        n = node_of[k]
        if kind[c] == 0:
            for i in range(L):
                need = e[c, i]
                draw = min(stock[k, i], need)
                refill = rebuild[c] * (need == 0.0)  # only in months the channel cuts nothing
                stock[k, i] = min(full[k], stock[k, i] - draw + refill)
                supply[n, i] += weights[k, i] * (need - draw)
        else:
            for i in range(L):
                demand[n, i] += weights[k, i] * e[c, i]
            for j in range(first[k], first[k + 1]):
                m = gains_to[j]
                for i in range(L):
                    demand[m, i] -= coef[j] * (weights[k, i] * e[c, i])


def propagate(propagation, q, mq):
    """``mq = M q`` in float32: the reference of the targets' products (the CPU kernel's BLAS
    product over a chunk, the CUDA kernel's tiled product over a block, which sums in this
    order)."""
    N, L = q.shape
    for n in range(N):
        for i in range(L):
            acc = np.float32(0.0)
            for m in range(N):
                acc += propagation[n, m] * q[m, i]
            mq[n, i] = acc


def update_lanes(km, a, b, ma, mb, supply, demand, q_sum, year_sum):
    """Section 6's update of the two states (float32) and the period and year sums of the
    output loss ``q = clip(a + b, -1, 1)``.

    ``a`` answers supply shocks (``ma = W a``), ``b`` demand shocks (``mb = D b``); the month's
    direct shocks are ``min(1, supply)`` and ``clip(demand, -1, 1)``, both set back to zero
    here for the next month's :func:`direct_shocks`.
    """
    N, L = q_sum.shape
    recovery = km.recovery
    one = np.float32(1.0)
    for n in range(N):
        k = np.float32(recovery[n])
        for i in range(L):
            shock_a = np.float32(min(1.0, supply[n, i]))
            shock_b = np.float32(min(1.0, max(-1.0, demand[n, i])))
            supply[n, i] = 0.0
            demand[n, i] = 0.0
            a_new = a[n, i] + k * (ma[n, i] + shock_a - a[n, i])
            b_new = b[n, i] + k * (mb[n, i] + shock_b - b[n, i])
            a[n, i] = a_new
            b[n, i] = b_new
            q32 = min(max(a_new + b_new, -one), one)
            q_sum[n, i] += np.float64(q32)
            year_sum[n, i] += np.float64(q32)


def period_losses(km, q_sum, values):
    """The period's loss of every lane in the cube's (sector, region) order: ``values[s R + r]``
    (float32, the cube's type) is node ``r S + s``'s ``q`` summed times ``x / 12``."""
    cube_node = km.cube_node
    loss_scale = km.loss_scale
    L = q_sum.shape[1]
    for m in range(cube_node.shape[0]):
        n = cube_node[m]
        scale = loss_scale[n]
        for i in range(L):
            values[m, i] = q_sum[n, i] * scale


def add_summaries(values, va_share, loss_sum, va_sum):
    """Add a period to each lane's horizon totals by region (the run's summaries), from the
    float32 values the cube receives, in the cube's (period, sector) order: the same sums, bit
    for bit, as ``riskengine.kernels.analysis.path_columns`` takes of the cube. ``va_share``
    is each cell's value-added share, in the cube's (sector, region) order."""
    R, L = loss_sum.shape
    S = values.shape[0] // R
    for s in range(S):
        for r in range(R):
            share = va_share[s * R + r]
            for i in range(L):
                v = np.float64(values[s * R + r, i])
                loss_sum[r, i] += v
                va_sum[r, i] += v * share


def write_summaries(
    i, row, loss_sum, va_sum, log_weight, loss_total, va_total, log_weight_out
):  # fmt: skip
    """Write lane ``i``'s horizon totals and log likelihood ratio into ``row``."""
    for r in range(loss_sum.shape[0]):
        loss_total[row, r] = loss_sum[r, i]
        va_total[row, r] = va_sum[r, i]
    log_weight_out[row] = log_weight[i]


def write_year(i, row, year, months, year_sum, year_q):
    """Write lane ``i``'s mean ``q`` per node over the ``months`` months of ``year`` into
    ``year_q[row, year]`` (float32), the credit stage's input."""
    for n in range(year_sum.shape[0]):
        year_q[row, year, n] = np.float32(year_sum[n, i] / months)


def write_period(i, row, period, values, sev_sum, g_sum, loss, severity, tension):
    """Write lane ``i``'s period into ``row`` and ``period`` of the cube's arrays.

    ``values`` holds the losses from :func:`period_losses`. Indices, not per-lane views: a view
    costs numba a reference count.
    """
    S, R = loss.shape[2], loss.shape[3]
    for s in range(S):
        for r in range(R):
            loss[row, period, s, r] = values[s * R + r, i]
    for c in range(sev_sum.shape[0]):
        severity[row, period, c] = sev_sum[c, i]
    tension[row, period] = g_sum[i]


def _all_zero(e):
    """Whether every element of the 2-d array ``e`` is 0."""
    for c in range(e.shape[0]):
        for i in range(e.shape[1]):
            if e[c, i] != 0.0:
                return False
    return True


def _zero_rows(a):
    """Set every element of the 2-d array ``a`` to 0 (a loop: CUDA's local arrays take no
    slice assignment)."""
    for n in range(a.shape[0]):
        for i in range(a.shape[1]):
            a[n, i] = 0.0


def simulate_lanes(
    km, k0, k1, paths, p0, n_rows, period_of_month, supply_matrix, demand_matrix, state, cube,
    skip_quiet,
):  # fmt: skip
    """The model's month loop for one set of lanes, written once for every target.

    Lane ``i`` runs path ``paths[i]`` from month 1 to the horizon and writes each period's sums
    into row ``paths[i] - p0`` of the cube arrays when that row lies in ``[0, n_rows)``; other
    lanes are computed and not written (the CPU kernel forms its chunks within groups of paths
    aligned on global path indices, so a chunk may hold paths outside the block).

    Parameters
    ----------
    km
        The kernels' model (:class:`riskengine.kernels.layout.KernelModel`).
    k0, k1
        The seed's two key words (``rng.split_seed``).
    paths
        int64, the lanes' global path indices.
    p0, n_rows
        The block's first path and its number of paths.
    period_of_month
        int64, one entry per month: its period (``riskengine.schema.periods``).
    supply_matrix, demand_matrix
        ``W`` and ``D`` in float32, as the target's ``propagate`` takes them (the CUDA kernel's
        tiled product takes each with its shared panel and tile: ``(M, panel, tile)``).
    state
        The lanes' arrays, in the order of :data:`STATE`; overwritten.
    cube
        ``(loss, severity, tension, loss_total, value_added_loss_total, year_q, log_weight)``
        in the cube's layout (rows = the block's paths): the cube, the run's per-path
        summaries, each path's mean ``q`` per year and node (P, years, N) for the credit stage,
        and its log likelihood ratio (P,) under the model's tilt (section 8).
    skip_quiet
        Skip the quiet months (below); False only to show that skipping changes nothing.

    Returns
    -------
    int
        The months skipped: in the months before the first month in which some lane has a
        nonzero effective severity, the direct shocks, products and state update are not
        computed (they would change no number, the model's weights and matrices being finite;
        ``tests/test_kernels_cpu.py`` compares the cube with and without the skip bit for
        bit).
    """
    (g, on, sev, months_on, head, weights, z, scratch, e, supply, demand, stock, a, b, ma, mb,
     q_sum, year_sum, sev_sum, g_sum, values, loss_sum, va_sum, log_weight) = state  # fmt: skip
    loss, severity, tension, loss_total, va_total, year_q, log_weight_out = cube
    L = g.shape[0]
    init_lanes(km, k0, k1, paths, g, on, sev, months_on, head, log_weight)
    init_weights(km, k0, k1, paths, head, weights)
    full = km.exposure_stock
    for k in range(full.shape[0]):
        for i in range(L):
            stock[k, i] = full[k]
    _zero_rows(a)
    _zero_rows(b)
    _zero_rows(supply)  # direct_shocks adds into them; update_lanes sets them back to zero
    _zero_rows(demand)
    _zero_rows(q_sum)
    _zero_rows(year_sum)
    _zero_rows(sev_sum)
    _zero_rows(loss_sum)
    _zero_rows(va_sum)
    for i in range(L):
        g_sum[i] = 0.0
    T = period_of_month.shape[0]
    quiet = skip_quiet  # no lane has had a shock yet: a = b = 0, every stock full, no loss
    skipped = 0
    for t in range(T):
        month_step(
            km, k0, k1, paths, t, g, on, sev, months_on, z, scratch, e, g_sum, sev_sum, log_weight
        )  # fmt: skip
        if quiet:
            quiet = _all_zero(e)
        if quiet:
            # Exact: with every effective severity 0 and nothing before, direct_shocks would
            # add signed zeros and refill full stocks, both products would be zero and
            # update_lanes would leave a = b = +0 and add +0 to the sums. Not one bit moves.
            skipped += 1
        else:
            direct_shocks(km, weights, e, stock, supply, demand)
            propagate(supply_matrix, a, ma)
            propagate(demand_matrix, b, mb)
            update_lanes(km, a, b, ma, mb, supply, demand, q_sum, year_sum)
        if t == T - 1 or period_of_month[t + 1] != period_of_month[t]:
            period = period_of_month[t]
            period_losses(km, q_sum, values)
            add_summaries(values, km.va_share, loss_sum, va_sum)
            for i in range(L):
                row = paths[i] - p0
                if 0 <= row < n_rows:
                    write_period(i, row, period, values, sev_sum, g_sum, loss, severity, tension)
            _zero_rows(q_sum)
            _zero_rows(sev_sum)
            for i in range(L):
                g_sum[i] = 0.0
        if t == T - 1 or (t + 1) % 12 == 0:
            months = np.float64(t % 12 + 1)
            for i in range(L):
                row = paths[i] - p0
                if 0 <= row < n_rows:
                    write_year(i, row, t // 12, months, year_sum, year_q)
            _zero_rows(year_sum)
    for i in range(L):
        row = paths[i] - p0
        if 0 <= row < n_rows:
            write_summaries(
                i, row, loss_sum, va_sum, log_weight, loss_total, va_total, log_weight_out
            )  # fmt: skip
    return skipped


# Called at onsets only: the CPU kernel keeps it out of line (see targets.compile_functions).
OUT_OF_LINE = ("normal",)

# Callees before callers: the order in which targets.compile_functions builds them.
FUNCTIONS = (
    philox_round,
    philox4x32,
    log_uniform,
    cos_sin_turns,
    box_muller,
    normal,
    _pair,
    _draw_pairs,
    init_lanes,
    init_weights,
    month_step,
    direct_shocks,
    propagate,
    update_lanes,
    period_losses,
    write_period,
    add_summaries,
    write_summaries,
    write_year,
    _all_zero,
    _zero_rows,
    simulate_lanes,
)
