"""The credit stage (MODEL.md section 7): each path's yearly output losses to banks' credit losses.

The month loop (:func:`riskengine.kernels.step.simulate_lanes`) writes, for every path and year
of the horizon (twelve months from the start; the last year may be shorter), each node's mean
output loss over the year's months: ``year_q`` (paths, years, nodes), float32. This stage, run on
the host after every target's kernel (CPU and CUDA alike), turns them into credit losses:

* the **drivers** of a year: each node's ``max(year_q, 0)`` and each region's value added lost
  as a share of its GDP, ``max(sum_n w[r, n] year_q[n], 0)`` with ``w[r, n] = v_n / GDP_r``;
* each **class** k of the portfolio (rows of one bank with the same driver, PD, sensitivity and
  correlation) has the year's PD
  ``Phi((Phi^-1(pd_k) + beta_k d - sqrt(rho_k) Z_y) / sqrt(1 - rho_k))``, with ``Z_y`` the path's
  credit-cycle factor of year y (standard normal, drawn only when some rho > 0), and loses
  ``scale_k (PD - Phi(Phi^-1(pd_k)))`` a month, ``scale_k = sum EAD LGD / 12``;
* a bank's monthly credit loss of the year is the sum over its classes, in class order; a
  period's credit loss the sum of its months' (float64, month by month, in month order), written
  as float32; the horizon totals per bank sum those float32 values (the analysis' sums of the
  cube, bit for bit); the totals per bank and segment are float64 sums cast to float32.

A class whose driver is 0 and whose rho is 0 loses exactly 0 and is skipped. ``Phi`` is
``erfc(-x / sqrt 2) / 2``; the reference (:mod:`riskengine.reference`) computes the same in numpy
with ``scipy.special.ndtr``.

This module imports numpy, math, numba and the kernels' targets module.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from riskengine.kernels import rng
from riskengine.kernels.targets import CPU_OPTIONS, cached

__all__ = ["CreditModel", "book_credit", "credit_model", "cycle_factors", "phi", "years"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


class CreditModel(NamedTuple):
    """The credit stage's arrays: K classes, R regions, N nodes."""

    driver: np.ndarray  # (K,) int64: node n < N, or N + r for region r's value added lost
    probit: np.ndarray  # (K,) Phi^-1(pd)
    beta: np.ndarray  # (K,) probit shift per unit of the driver
    sqrt_rho: np.ndarray  # (K,) sqrt(rho)
    inv_sqrt_1m_rho: np.ndarray  # (K,) 1 / sqrt(1 - rho)
    scale: np.ndarray  # (K,) sum of EAD * LGD / 12 over the class's rows
    bank: np.ndarray  # (K,) int64
    segment: np.ndarray  # (K,) int64
    region_weight: np.ndarray  # (R, N) v_n / GDP_r for the nodes of region r, else 0
    cycle_tilt: np.ndarray  # (Y,) mean shift of each year's factor Z_y (section 8)


def credit_model(arrays) -> CreditModel:
    """The credit stage's arrays from a compiled model's ``ModelArrays``."""
    a = arrays
    return CreditModel(
        driver=np.ascontiguousarray(a.credit_driver, dtype=np.int64),
        probit=np.ascontiguousarray(a.credit_probit, dtype=np.float64),
        beta=np.ascontiguousarray(a.credit_beta, dtype=np.float64),
        sqrt_rho=np.sqrt(a.credit_rho),
        inv_sqrt_1m_rho=1.0 / np.sqrt(1.0 - a.credit_rho),
        scale=np.ascontiguousarray(a.credit_scale, dtype=np.float64),
        bank=np.ascontiguousarray(a.credit_bank, dtype=np.int64),
        segment=np.ascontiguousarray(a.credit_segment, dtype=np.int64),
        region_weight=np.ascontiguousarray(a.region_weight, dtype=np.float64),
        cycle_tilt=np.ascontiguousarray(a.tilt_cycle, dtype=np.float64),
    )


def years(horizon: int) -> int:
    """Years of a horizon of ``horizon`` months (the last one may be shorter)."""
    return (horizon + 11) // 12


def cycle_factors(
    cm: CreditModel, seed: int, p0: int, p1: int, n_years: int
) -> tuple[np.ndarray, np.ndarray]:
    """``Z[p, y]``, the credit-cycle factor of path ``p0 + p`` in year ``y``, and each path's
    log likelihood ratio of them (P,).

    The factors are standard normals from month :data:`riskengine.kernels.rng.CREDIT_MONTH`,
    slot ``y``, shifted by the model's tilt ``mu_y`` (section 8), whose ratio is
    ``sum_y (-mu_y Z_y + mu_y^2 / 2)``; zeros and a ratio of 0 (nothing drawn) when every class
    has rho = 0.
    """
    P = p1 - p0
    if not np.any(cm.sqrt_rho > 0.0):
        return np.zeros((P, n_years)), np.zeros(P)
    z = rng.normals(seed, np.arange(p0, p1), [rng.CREDIT_MONTH], n_years)[:, 0, :]
    log_ratio = np.zeros(P)
    for y in range(n_years):
        mu = cm.cycle_tilt[y]
        z[:, y] += mu
        log_ratio += -mu * z[:, y] + 0.5 * mu * mu
    return z, log_ratio


def phi(x):
    """The standard normal CDF."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


_phi = numba.njit(inline="always", **CPU_OPTIONS)(phi)


def _book_credit(cm, year_q, cycle_z, period_of_month, credit, credit_total, credit_segment):
    """Book a block's credit losses (see the module's docstring).

    Parameters
    ----------
    cm : CreditModel
    year_q : ndarray (P, Y, N) float32
        Each path's mean output loss per node and year.
    cycle_z : ndarray (P, Y) float64
        The paths' credit-cycle factors (zeros where no class has rho > 0).
    period_of_month : ndarray (T,) int64
    credit, credit_total, credit_segment : ndarray
        Outputs: ``credit_loss`` (P, n_periods, B) float32, ``credit_loss_total`` (P, B) float64,
        ``credit_loss_segment`` (P, B, G) float32; overwritten.
    """
    P, Y, N = year_q.shape
    R = cm.region_weight.shape[0]
    K = cm.driver.shape[0]
    n_periods, B = credit.shape[1], credit.shape[2]
    G = credit_segment.shape[2]
    T = period_of_month.shape[0]
    base = np.empty(K)
    for k in range(K):
        base[k] = _phi(cm.probit[k])
    for p in numba.prange(P):
        drivers = np.empty(N + R)
        month_credit = np.empty(B)
        acc = np.zeros((n_periods, B))
        seg = np.zeros((B, G))
        for y in range(Y):
            for n in range(N):
                drivers[n] = max(np.float64(year_q[p, y, n]), 0.0)
            for r in range(R):
                u = 0.0
                for n in range(N):
                    u += cm.region_weight[r, n] * np.float64(year_q[p, y, n])
                drivers[N + r] = max(u, 0.0)
            z = cycle_z[p, y]
            first = 12 * y
            last = min(T, first + 12)
            months = np.float64(last - first)
            for b in range(B):
                month_credit[b] = 0.0
            for k in range(K):
                d = drivers[cm.driver[k]]
                if d == 0.0 and cm.sqrt_rho[k] == 0.0:
                    continue  # PD at its baseline: exactly no loss
                c = (cm.probit[k] + cm.beta[k] * d - cm.sqrt_rho[k] * z) * cm.inv_sqrt_1m_rho[k]
                loss = cm.scale[k] * (_phi(c) - base[k])
                month_credit[cm.bank[k]] += loss
                seg[cm.bank[k], cm.segment[k]] += loss * months
            for t in range(first, last):
                for b in range(B):
                    acc[period_of_month[t], b] += month_credit[b]
        for b in range(B):
            total = 0.0
            for q in range(n_periods):
                v = np.float32(acc[q, b])
                credit[p, q, b] = v
                total += np.float64(v)
            credit_total[p, b] = total
            for g in range(G):
                credit_segment[p, b, g] = np.float32(seg[b, g])


book_credit = cached(numba.njit(parallel=True, **CPU_OPTIONS)(_book_credit))
