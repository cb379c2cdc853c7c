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

A class whose driver is 0 and whose rho is 0 loses exactly 0 (+0, which changes no sum).

The stage books :data:`CREDIT_LANES` paths at a time, their values on the last axis of its work
arrays (as the month loop's chunks hold theirs), one batch per iteration of a parallel loop:
every step is then a loop over contiguous lanes that the compiler vectorizes, and the scratch
space is allocated once per batch, not per path. Each lane's sums run in the order of one
path's alone, so the losses are the same bit for bit whatever the batch.

``Phi``, the standard normal CDF, is :func:`phi_into`: a batch's classes and lanes of one year
in passes that the compiler vectorizes (libm's ``erfc``, one call per class, cost about 15 ns
and was the stage's largest cost). It writes ``Phi(x) = erfc(|x| / sqrt 2) / 2`` (or one minus
that, for ``x > 0``) as ``exp(-z^2 + h(u)) / (z + 3)`` with ``z = |x| / sqrt 2`` and ``u = (z - 3) /
(z + 3)`` in ``[-1, 1)``, where ``h(u) = log((z + 3) erfcx(z))`` is smooth on the whole range
(it tends to ``-log(sqrt pi)`` as ``z`` grows) and is a polynomial of degree 24 in ``u``:
:data:`PHI_COEFFICIENTS`, the degree-24 Chebyshev interpolant of ``h`` from
``scipy.special.erfcx``, in the power basis (the sum of their magnitudes is 1.16, so Horner's
rule loses nothing). ``z^2`` is split into an exact square of ``z`` rounded to float32 and a
small rest, so that ``exp`` (its own: ``2^n`` times a degree-13 Taylor polynomial, the power of
two built from its bits) keeps its relative accuracy far into the tail. Against
``scipy.special.ndtr``, which the reference (:mod:`riskengine.reference`) uses, the error is at
most 3e-15 absolute over the whole line and 5e-13 relative where ``Phi > 1e-300``
(``tests/test_credit.py``, which also refits the coefficients); below about ``2^-1028`` it is
0, and a NaN stays NaN.

This module imports numpy, math, numba and the kernels' targets module.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from riskengine.kernels import rng
from riskengine.kernels.targets import CPU_OPTIONS, cached

__all__ = [
    "PHI_COEFFICIENTS",
    "CreditModel",
    "book_credit",
    "credit_model",
    "cycle_factors",
    "phi_into",
    "years",
]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)

# h(u) = log((z + 3) erfcx(z)), u = (z - 3) / (z + 3): power-basis coefficients of its degree-24
# Chebyshev interpolant on [-1, 1] (see the module's docstring; tests/test_credit.py refits them).
PHI_COEFFICIENTS = np.array(
    [
        0.07139642724694233,
        -0.8225221340194188,
        0.21128598913601657,
        -0.02254118221658287,
        -0.020113320409481446,
        0.011957869681143207,
        -8.396694068541909e-05,
        -0.0028001959433500137,
        0.0009273601805181309,
        0.00045062048169159264,
        -0.00037524824151794747,
        -2.1711371055504474e-05,
        0.00010670186056273147,
        -1.950770422878206e-05,
        -2.3832576805151858e-05,
        1.0330027532540983e-05,
        3.850166381083452e-06,
        -3.437226471048813e-06,
        -1.9045703104718006e-07,
        8.831575270923164e-07,
        -1.4690261449903497e-07,
        -1.6857237991144131e-07,
        5.837925437966445e-08,
        1.7909187663872553e-08,
        -8.569835037181435e-09,
    ]
)
_PHI_SHIFT = 3.0
_EVEN = np.ascontiguousarray(PHI_COEFFICIENTS[0::2])  # h = even(u^2) + u odd(u^2): two chains
_ODD = np.ascontiguousarray(PHI_COEFFICIENTS[1::2])
_LOG2E = 1.0 / math.log(2.0)
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts: n * _LN2_HI is exact for |n| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_TWO52_PLUS_BIAS = 2.0**52 + 1023.0  # n + this: a double whose low bits are n + 1023
_TWO52_BITS = int(np.array([2.0**52]).view(np.int64)[0])
_INV_FACTORIAL = np.array([1.0 / math.factorial(j) for j in range(14)])

CREDIT_LANES = 32  # paths booked together, on the last axis of the work arrays


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
    region_first: np.ndarray  # (R + 1,) region r's nonzero weights: [first[r], first[r + 1])
    region_node: np.ndarray  # their nodes, ascending within a region
    region_weight: np.ndarray  # their weights v_n / GDP_r
    cycle_tilt: np.ndarray  # (Y,) mean shift of each year's factor Z_y (section 8)


def credit_model(arrays) -> CreditModel:
    """The credit stage's arrays from a compiled model's ``ModelArrays``."""
    a = arrays
    # A region's value added lost sums only its nonzero weights (the other nodes' terms are
    # signed zeros, which change no sum).
    nonzero = a.region_weight != 0.0
    return CreditModel(
        driver=np.ascontiguousarray(a.credit_driver, dtype=np.int64),
        probit=np.ascontiguousarray(a.credit_probit, dtype=np.float64),
        beta=np.ascontiguousarray(a.credit_beta, dtype=np.float64),
        sqrt_rho=np.sqrt(a.credit_rho),
        inv_sqrt_1m_rho=1.0 / np.sqrt(1.0 - a.credit_rho),
        scale=np.ascontiguousarray(a.credit_scale, dtype=np.float64),
        bank=np.ascontiguousarray(a.credit_bank, dtype=np.int64),
        segment=np.ascontiguousarray(a.credit_segment, dtype=np.int64),
        region_first=np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int64),
        region_node=np.nonzero(nonzero)[1].astype(np.int64),
        region_weight=np.ascontiguousarray(a.region_weight[nonzero], dtype=np.float64),
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


@numba.njit(inline="always", **CPU_OPTIONS)
def phi_into(x, out, work, power):
    """``out[k] = Phi(x[k])``, the standard normal CDF, for every ``k`` (see the module's
    docstring); ``work`` and ``power`` (float64, as long as ``x``) are scratch space.

    Written as three loops without calls or branches, which the compiler vectorizes.
    """
    bits = power.view(np.int64)
    for k in range(x.shape[0]):
        z = min(abs(x[k]) * _INV_SQRT2, 40.0)  # erfc(40) underflows: no larger z matters
        inv = 1.0 / (z + _PHI_SHIFT)
        u = (z - _PHI_SHIFT) * inv
        uu = u * u
        even = _EVEN[_EVEN.shape[0] - 1]
        odd = _ODD[_ODD.shape[0] - 1]
        for j in range(_EVEN.shape[0] - 2, -1, -1):
            even = even * uu + _EVEN[j]
        for j in range(_ODD.shape[0] - 2, -1, -1):
            odd = odd * uu + _ODD[j]
        # exp(-z^2 + h) with z^2 = zh^2 (exact) + (z - zh)(z + zh): y_hi + y_lo
        zh = np.float64(np.float32(z))
        y_hi = -(zh * zh)
        y_lo = even + u * odd - (z - zh) * (z + zh)
        n = np.floor((y_hi + y_lo) * _LOG2E + 0.5)  # a float: NaN stays NaN
        normal = n >= -1022.0  # below, Phi is under about 2^-1028 and taken as 0
        n = max(n, -1022.0)
        r = ((y_hi - n * _LN2_HI) + y_lo) - n * _LN2_LO
        e = _INV_FACTORIAL[13]
        for j in range(12, -1, -1):
            e = e * r + _INV_FACTORIAL[j]
        work[k] = e * inv if normal else 0.0
        power[k] = n + _TWO52_PLUS_BIAS
    for k in range(x.shape[0]):
        bits[k] = (bits[k] - _TWO52_BITS) << 52  # the bits of 2^n
    for k in range(x.shape[0]):
        tail = 0.5 * (work[k] * power[k])  # Phi(-|x|)
        out[k] = 1.0 - tail if x[k] > 0.0 else (tail if x[k] == x[k] else x[k])


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
    P = year_q.shape[0]
    K = cm.driver.shape[0]
    base = np.empty(K)
    phi_into(cm.probit, base, np.empty(K), np.empty(K))
    for batch in numba.prange((P + CREDIT_LANES - 1) // CREDIT_LANES):
        p0 = batch * CREDIT_LANES
        _book_lanes(
            cm, base, year_q, cycle_z, period_of_month, p0, min(CREDIT_LANES, P - p0), credit,
            credit_total, credit_segment,
        )  # fmt: skip


@numba.njit(**CPU_OPTIONS)
def _book_lanes(
    cm, base, year_q, cycle_z, period_of_month, p0, lanes, credit, credit_total, credit_segment
):  # fmt: skip
    """Paths ``p0 .. p0 + lanes - 1`` of :func:`_book_credit`, on the last axis of every work
    array, so that each step is a loop over contiguous lanes that the compiler vectorizes and
    one :func:`phi_into` call takes the year's every class and lane. Each lane's sums run in
    the same order as one path's alone (classes in order, months in order), so a path's bits
    do not depend on the lanes beside it."""
    Y, N = year_q.shape[1], year_q.shape[2]
    R = cm.region_first.shape[0] - 1
    K = cm.driver.shape[0]
    n_periods, B = credit.shape[1], credit.shape[2]
    G = credit_segment.shape[2]
    T = period_of_month.shape[0]
    q = np.empty((N, lanes))
    drivers = np.empty((N + R, lanes))
    argument = np.empty(K * lanes)
    pd = np.empty(K * lanes)
    work = np.empty(K * lanes)
    power = np.empty(K * lanes)
    month_credit = np.empty((B, lanes))
    acc = np.zeros((n_periods, B, lanes))
    seg = np.zeros((B, G, lanes))
    for y in range(Y):
        for i in range(lanes):
            for n in range(N):
                q[n, i] = np.float64(year_q[p0 + i, y, n])
        for n in range(N):
            for i in range(lanes):
                drivers[n, i] = max(q[n, i], 0.0)
        for r in range(R):
            for i in range(lanes):
                drivers[N + r, i] = 0.0
            for j in range(cm.region_first[r], cm.region_first[r + 1]):
                w = cm.region_weight[j]
                node = cm.region_node[j]
                for i in range(lanes):
                    drivers[N + r, i] += w * q[node, i]
            for i in range(lanes):
                drivers[N + r, i] = max(drivers[N + r, i], 0.0)
        for k in range(K):
            d = cm.driver[k]  # an index, not a row: a view would cost a reference count
            probit, beta = cm.probit[k], cm.beta[k]
            sqrt_rho, inv = cm.sqrt_rho[k], cm.inv_sqrt_1m_rho[k]
            for i in range(lanes):
                argument[k * lanes + i] = (
                    probit + beta * drivers[d, i] - sqrt_rho * cycle_z[p0 + i, y]
                ) * inv
        phi_into(argument, pd, work, power)
        first = 12 * y
        last = min(T, first + 12)
        months = np.float64(last - first)
        for b in range(B):
            for i in range(lanes):
                month_credit[b, i] = 0.0
        for k in range(K):
            d = cm.driver[k]
            b, g = cm.bank[k], cm.segment[k]
            scale, at_base, fixed = cm.scale[k], base[k], cm.sqrt_rho[k] == 0.0
            for i in range(lanes):
                # A class with no driver and no cycle is at its baseline PD: exactly no loss
                # (+0, which changes no sum).
                quiet = fixed and drivers[d, i] == 0.0
                loss = 0.0 if quiet else scale * (pd[k * lanes + i] - at_base)
                month_credit[b, i] += loss
                seg[b, g, i] += loss * months
        for t in range(first, last):
            period = period_of_month[t]
            for b in range(B):
                for i in range(lanes):
                    acc[period, b, i] += month_credit[b, i]
    for i in range(lanes):
        p = p0 + i
        for b in range(B):
            total = 0.0
            for s in range(n_periods):
                v = np.float32(acc[s, b, i])
                credit[p, s, b] = v
                total += np.float64(v)
            credit_total[p, b] = total
            for g in range(G):
                credit_segment[p, b, g] = np.float32(seg[b, g, i])


book_credit = cached(numba.njit(parallel=True, **CPU_OPTIONS)(_book_credit))
