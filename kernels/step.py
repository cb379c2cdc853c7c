"""One path of the model (MODEL.md sections 1-7), written once for the CPU and CUDA kernels.

These are plain Python functions on scalars and 1-D/2-D arrays, with no allocation, so that
:func:`riskengine.kernels.targets.compile_functions` can compile the same source with
``numba.njit`` and with ``numba.cuda.jit(device=True)``. The kernels allocate each path's state
and call, per path:

1. :func:`init_path` once: initial regimes, ``g_0`` and the exposure weights ``E * eta``;
2. each month ``t``: :func:`month_step` (tension, latents, regimes, effective severity),
   :func:`direct_shock`, then the propagation product ``mq = M q`` (batched through BLAS on the
   CPU, :func:`propagate` on CUDA), then :func:`update_path` (inoperability, period sums);
3. at each period's end: :func:`write_period` and the credit product (:func:`credit_losses`
   on CUDA, BLAS on the CPU).

Random numbers follow the slot layout of :mod:`riskengine.kernels.rng`; a draw is turned into a
normal only when the model uses it (``g_0`` when stationary, exposures that are not zero, a
severity when its channel starts), which changes no number and saves most of the Box-Muller work.

Precision: the state ``q`` is float32 (the propagation is a float32 product, the expensive part);
every other quantity, the update of ``q`` and the period sums are float64. Credit losses are
linear in ``pd - pd0``, so the kernels sum ``pd - pd0`` per node over the period and apply the
(R, N) credit matrix once per period (:func:`credit_losses`).

This module imports numpy, math, the rng module and layout's ``CREDIT_DEGREE`` only.
"""

from __future__ import annotations

import math

import numpy as np

from riskengine.kernels.layout import CREDIT_DEGREE
from riskengine.kernels.rng import (
    MASK32,
    SHIFT32,
    box_muller,
    normal,
    philox4x32,
    philox_round,
)

__all__ = [
    "FUNCTIONS",
    "OUT_OF_LINE",
    "credit_losses",
    "direct_shock",
    "init_path",
    "month_step",
    "propagate",
    "update_path",
    "write_period",
]


def _pair(k0, k1, path, month, pair):
    """The two normals of slots ``2 pair`` (cos) and ``2 pair + 1`` (sin), as rng lays them out."""
    p = np.uint64(path)
    w0, w1, w2, w3 = philox4x32(
        p & MASK32, p >> SHIFT32, np.uint64(month), np.uint64(pair // 2), k0, k1
    )
    if pair % 2 == 0:
        return box_muller(w0, w1)
    return box_muller(w2, w3)


def _exposure_weight(km, c, n, z, zf):
    """``E[c, n] * eta[c, n]`` (section 5) from the idiosyncratic draw ``z`` and ``zf[c]``."""
    loadings = km.factor_loadings
    xi = km.idiosyncratic_sd[n] * z
    for f in range(loadings.shape[1]):
        xi += loadings[n, f] * zf[c, f]
    sigma = km.exposure_sigma[n]
    return km.exposure[c, n] * math.exp(sigma * xi - 0.5 * sigma**2)


def init_path(km, k0, k1, path, on, severity, months_on, weights, zf):
    """Start one path: regimes from the scenario, exposure weights ``E[c, n] * eta[c, n]``.

    ``weights`` (C, N) and ``zf`` (C, F) are written; returns ``g_0``. Slots are visited in
    order and each Box-Muller pair is computed once; exposures that are 0 draw nothing.
    """
    # Arrays are read into locals once: each read of a tuple field costs numba a reference count.
    exposure = km.exposure
    C, N = exposure.shape
    F = km.factor_loadings.shape[1]
    for c in range(C):
        on[c] = km.initial_on[c]
        severity[c] = km.initial_severity[c]
        months_on[c] = km.initial_months_on[c]
    g0 = km.tension_start
    last = -1
    z_cos = z_sin = 0.0
    for slot in range(0 if km.tension_stationary else 1, 1 + C * F):
        if slot // 2 != last:
            last = slot // 2
            z_cos, z_sin = _pair(k0, k1, path, 0, last)
        z = z_cos if slot % 2 == 0 else z_sin
        if slot == 0:
            g0 = z
        else:
            zf[(slot - 1) // F, (slot - 1) % F] = z
    for c in range(C):
        for n in range(N):
            weights[c, n] = 0.0
            if exposure[c, n] != 0.0:
                slot = 1 + C * F + c * N + n
                if slot // 2 != last:
                    last = slot // 2
                    z_cos, z_sin = _pair(k0, k1, path, 0, last)
                z = z_cos if slot % 2 == 0 else z_sin
                weights[c, n] = _exposure_weight(km, c, n, z, zf)
    return g0


def month_step(km, k0, k1, path, t, g, on, severity, months_on, zc, e):
    """Month ``t`` (0-based; rng month ``t + 1``) of sections 1-4; returns ``g_t``.

    Updates the regimes in place and writes the effective severities into ``e`` (C,);
    ``zc`` (C,) is scratch for the channel innovations.
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
    month = t + 1
    zg = 0.0
    for pair in range((C + 2) // 2):  # slots 0..C: tension and channel innovations
        z_cos, z_sin = _pair(k0, k1, path, month, pair)
        if pair == 0:
            zg = z_cos
        else:
            zc[2 * pair - 1] = z_cos
        if 2 * pair + 1 <= C:
            zc[2 * pair] = z_sin
    g = km.tension_phi * g + km.tension_innovation_sd * zg
    # Retaliation lowers the onset bar by last month's regimes: keep the amounts in e until
    # each channel's new effective severity replaces them.
    for c in range(C):
        lower = 0.0
        for c2 in range(C):
            if on[c2]:
                lower += retaliation[c, c2]
        e[c] = lower
    for c in range(C):
        latent = 0.0
        for c2 in range(c + 1):
            latent += chol[c, c2] * zc[c2]
        u = loading[c] * g + idiosyncratic[c] * latent
        if on[c]:
            if u < threshold_off[c]:
                on[c] = False
                months_on[c] = 0
            else:
                months_on[c] += 1
        elif u > threshold_on[c] - e[c]:
            on[c] = True
            months_on[c] = 1
            zs = normal(k0, k1, path, month, 1 + C + c)
            x = km.severity_logit_median[c] + km.severity_dispersion[c] * zs
            severity[c] = 1.0 / (1.0 + math.exp(-x))
        else:
            months_on[c] = 0
        if on[c]:
            b = buffer_months[c]
            ramp = min(1.0, months_on[c] / b) if b > 0.0 else 1.0
            e[c] = severity[c] * ramp * supply_left[c, t]
        else:
            e[c] = 0.0
    return g


def direct_shock(km, weights, e, d):
    """Section 5: ``d[n] = min(1, sum_c weights[c, n] * e[c])``."""
    C, N = weights.shape
    for n in range(N):
        d[n] = 0.0
    for c in range(C):
        if e[c] != 0.0:
            for n in range(N):
                d[n] += weights[c, n] * e[c]
    for n in range(N):
        d[n] = min(1.0, d[n])


def propagate(propagation_t, q, mq):
    """``mq = M q`` in float32, one path (the CPU kernel batches this product through BLAS)."""
    N = q.shape[0]
    for n in range(N):
        acc = np.float32(0.0)
        for m in range(N):
            acc += propagation_t[m, n] * q[m]
        mq[n] = acc


def update_path(km, q, mq, d, q_sum, dpd_sum):
    """Section 6's update of ``q`` (float32) and the period sums of ``q`` and ``pd - pd0``.

    ``pd - pd0 = q * G(q)`` with ``G`` the node's piecewise cubic (see ``layout``). The update
    of ``q`` is a loop of its own, so that the CPU compiler vectorizes it.
    """
    N = q.shape[0]
    recovery = km.recovery
    for n in range(N):
        q_old = np.float64(q[n])
        q_new = q_old + recovery[n] * (np.float64(mq[n]) + d[n] - q_old)
        q32 = np.float32(min(max(q_new, 0.0), 1.0))
        q[n] = q32
        q_sum[n] += np.float64(q32)
    poly = km.credit_poly
    table = km.credit_table
    # Unsigned indices and a fixed degree: no negative-index wraparound to check and a Horner
    # chain the compiler unrolls, which halves this loop's time on the CPU.
    pieces = np.uint64(poly.shape[1])
    last = pieces - np.uint64(1)
    for n in range(N):
        qv = np.float64(q[n])
        x = qv * np.float64(pieces)
        j = min(np.uint64(x), last)
        local = 2.0 * (x - np.float64(j)) - 1.0
        u = np.uint64(table[n])
        g = poly[u, j, 0]
        for k in range(1, CREDIT_DEGREE + 1):
            g = g * local + poly[u, j, k]
        dpd_sum[n] += qv * g


def credit_losses(credit_scale, dpd_sum, out):
    """``out[r] = sum_n credit_scale[r, n] * dpd_sum[n]`` (CUDA; the CPU batches it via BLAS)."""
    R, N = credit_scale.shape
    for r in range(R):
        acc = 0.0
        for n in range(N):
            acc += credit_scale[r, n] * dpd_sum[n]
        out[r] = acc


def write_period(km, q_sum, sev_sum, loss, severity):
    """Write one path's period sums of loss and severity in the cube's layout and reset them.

    ``loss`` is the path's (S, R) slice of the period; node ``n = r * S + s``.
    """
    loss_scale = km.loss_scale
    S, R = loss.shape
    # Written in the cube's order (contiguous stores into the large output), read strided.
    for s in range(S):
        for r in range(R):
            n = r * S + s
            loss[s, r] = q_sum[n] * loss_scale[n]
    for n in range(q_sum.shape[0]):
        q_sum[n] = 0.0
    for c in range(sev_sum.shape[0]):
        severity[c] = sev_sum[c]
        sev_sum[c] = 0.0


# Called at onsets only: the CPU kernel keeps it out of line (see targets.compile_functions).
OUT_OF_LINE = ("normal",)

# Callees before callers: the order in which targets.compile_functions builds them.
FUNCTIONS = (
    philox_round,
    philox4x32,
    box_muller,
    normal,
    _pair,
    _exposure_weight,
    init_path,
    month_step,
    direct_shock,
    propagate,
    update_path,
    credit_losses,
    write_period,
)
