"""The analysis' loops over one chunk of paths: per-path columns, moments, histograms, values
in brackets, and tail sums. :mod:`riskengine.analysis` maps them over the chunks of a cube and
combines their results; these functions hold no state and see one chunk at a time.

Every loop runs path by path in a fixed order, so that a path's column values, and every
chunk's contribution, do not depend on how the paths are cut into chunks. Sums are float64.

Columns (:func:`path_columns`) are laid out by an int64 ``layout`` array of offsets into the
column matrix (``-1``: not asked for), in the order of :data:`LAYOUT`.

This module imports numba and numpy; its functions are compiled with the package's jit options
and cached like the kernels (:func:`riskengine.kernels.targets.cached`).
"""

from __future__ import annotations

import numba
import numpy as np

from riskengine.kernels.targets import CPU_OPTIONS, cached

__all__ = [
    "LAYOUT",
    "collect",
    "histograms",
    "moments",
    "path_columns",
    "summary_columns",
    "tail_sums",
]

# Offsets in ``layout``: where each group of columns starts in the column matrix.
LAYOUT = (
    "va_total",  # (period,): value added lost, all regions; the sum of va_region's columns
    "va_region",  # (period, region): loss x value-added share, summed over (time, sector)
    "total",  # (period,): loss summed over nodes; the sum of the region columns
    "region",  # (period, region)
    "sector",  # (period, sector)
    "node",  # (sector, region), over the horizon
    "credit",  # (period, bank)
    "credit_total",  # (period,)
    "cumulative",  # (time, region): loss up to each period's end
    "severity_months",  # (channel,): sum over time of the effective severity
    "ever_active",  # (channel,): 1 where the channel bit at some time of the path
    "total_if_active",  # (channel,): the horizon's total where the channel bit, else 0
    "active",  # (time, channel): 1 where the channel's severity is positive in the period
)


def _jit(fn):
    return cached(numba.njit(**CPU_OPTIONS)(fn))


@_jit
def path_columns(loss, credit, severity, va_share, year_of_time, n_periods, layout, out):
    """Fill ``out`` (paths, K) with the columns asked for by ``layout`` from one chunk's cube
    arrays: ``loss`` (p, T, S, R), ``credit`` (p, T, B), ``severity`` (p, T, C), float32.

    ``year_of_time[t]`` is the analysis period (1, 2, ...) of time step t, or 0 where the cube
    has no years (resolution ``horizon``); period 0 is the horizon. A region's loss in a period
    is summed over (time, sector) in that order, and its value added lost the same way from
    ``loss x va_share`` ((S, R)); the totals are the sums of the regions.
    """
    P, T, S, R = loss.shape
    B = credit.shape[2]
    C = severity.shape[2]
    va_total, va_region = layout[0], layout[1]
    total, region, sector, node = layout[2], layout[3], layout[4], layout[5]
    cred, cred_total, cumulative = layout[6], layout[7], layout[8]
    sev_months, ever_active, if_active, active = layout[9], layout[10], layout[11], layout[12]
    by_va = np.zeros((n_periods, R))
    by_region = np.zeros((n_periods, R))
    by_sector = np.zeros((n_periods, S))
    by_credit = np.zeros((n_periods, B))
    running = np.zeros(R)
    for i in range(P):
        by_va[:] = 0.0
        by_region[:] = 0.0
        by_sector[:] = 0.0
        by_credit[:] = 0.0
        running[:] = 0.0
        if node >= 0:
            for k in range(S * R):
                out[i, node + k] = 0.0
        for t in range(T):
            y = year_of_time[t]
            for s in range(S):
                for r in range(R):
                    v = np.float64(loss[i, t, s, r])
                    va = v * va_share[s, r]
                    by_va[0, r] += va
                    by_region[0, r] += v
                    by_sector[0, s] += v
                    if y > 0:
                        by_va[y, r] += va
                        by_region[y, r] += v
                        by_sector[y, s] += v
                    if node >= 0:
                        out[i, node + s * R + r] += v
            for b in range(B):
                c = np.float64(credit[i, t, b])
                by_credit[0, b] += c
                if y > 0:
                    by_credit[y, b] += c
            if cumulative >= 0:
                for r in range(R):
                    part = 0.0
                    for s in range(S):
                        part += np.float64(loss[i, t, s, r])
                    running[r] += part
                    out[i, cumulative + t * R + r] = running[r]
            if active >= 0:
                for c in range(C):
                    out[i, active + t * C + c] = 1.0 if severity[i, t, c] > 0 else 0.0
        for q in range(n_periods):
            all_va = 0.0
            all_regions = 0.0
            all_credit = 0.0
            for r in range(R):
                all_va += by_va[q, r]
                all_regions += by_region[q, r]
                if va_region >= 0:
                    out[i, va_region + q * R + r] = by_va[q, r]
                if region >= 0:
                    out[i, region + q * R + r] = by_region[q, r]
            for b in range(B):
                all_credit += by_credit[q, b]
                if cred >= 0:
                    out[i, cred + q * B + b] = by_credit[q, b]
            if va_total >= 0:
                out[i, va_total + q] = all_va
            if total >= 0:
                out[i, total + q] = all_regions
            if cred_total >= 0:
                out[i, cred_total + q] = all_credit
            if sector >= 0:
                for s in range(S):
                    out[i, sector + q * S + s] = by_sector[q, s]
        horizon_total = 0.0
        for r in range(R):
            horizon_total += by_region[0, r]
        for c in range(C):
            acc = 0.0
            for t in range(T):
                acc += np.float64(severity[i, t, c])
            if sev_months >= 0:
                out[i, sev_months + c] = acc
            if ever_active >= 0:
                out[i, ever_active + c] = 1.0 if acc > 0 else 0.0
            if if_active >= 0:
                out[i, if_active + c] = horizon_total if acc > 0 else 0.0


@_jit
def summary_columns(loss_total, credit_total, va_loss_total, layout, out):
    """The horizon's value-added, region, total, credit and credit-total columns from a run's
    per-path summaries ((p, R) float64 each, credit (p, B)), summed as :func:`path_columns`
    sums them, so that both give the same bits."""
    P, R = loss_total.shape
    B = credit_total.shape[1]
    va_total, va_region, total, region = layout[0], layout[1], layout[2], layout[3]
    cred, cred_total = layout[6], layout[7]
    for i in range(P):
        all_va = 0.0
        all_regions = 0.0
        all_credit = 0.0
        for r in range(R):
            all_va += va_loss_total[i, r]
            all_regions += loss_total[i, r]
            if va_region >= 0:
                out[i, va_region + r] = va_loss_total[i, r]
            if region >= 0:
                out[i, region + r] = loss_total[i, r]
        for b in range(B):
            all_credit += credit_total[i, b]
            if cred >= 0:
                out[i, cred + b] = credit_total[i, b]
        if va_total >= 0:
            out[i, va_total] = all_va
        if total >= 0:
            out[i, total] = all_regions
        if cred_total >= 0:
            out[i, cred_total] = all_credit


@_jit
def moments(X, w, out_min, out_max, out_w, out_w2, out_wx, out_bad):
    """Add one chunk to each column's running min, max, sum of w, w^2 and w x; ``out_bad``
    counts the values (or weights) that are not finite numbers (a damaged store)."""
    P, K = X.shape
    for i in range(P):
        wi = w[i]
        for k in range(K):
            x = X[i, k]
            if not (np.isfinite(x) and np.isfinite(wi)):
                out_bad[k] += 1
                continue
            if x < out_min[k]:
                out_min[k] = x
            if x > out_max[k]:
                out_max[k] = x
            out_w[k] += wi
            out_w2[k] += wi * wi
            out_wx[k] += wi * x


@_jit
def _find(lo, hi, first, end, x):
    """Index in ``[first, end)`` of the range ``[lo[j], hi[j]]`` (sorted, disjoint) holding x,
    or -1."""
    a, b = first, end
    while a < b:  # the last range whose lo <= x
        m = (a + b) // 2
        if lo[m] <= x:
            a = m + 1
        else:
            b = m
    j = a - 1
    if j >= first and x <= hi[j]:
        return j
    return -1


@_jit
def histograms(X, w, columns, first, end, lo, hi, count, wsum, w2sum, vmin, vmax):
    """Add one chunk to the histograms of the ranges ``[lo[j], hi[j]]``.

    Ranges are grouped by column: those of column ``columns[m]`` are ``first[m] <= j < end[m]``,
    sorted and disjoint. Each range has ``B = count.shape[1]`` equal bins (every value in bin 0
    where lo == hi); per bin its count, sum of w and w^2, smallest and largest value.
    """
    P = X.shape[0]
    B = count.shape[1]
    for i in range(P):
        wi = w[i]
        for m in range(columns.shape[0]):
            x = X[i, columns[m]]
            j = _find(lo, hi, first[m], end[m], x)
            if j < 0:
                continue
            width = hi[j] - lo[j]
            b = 0
            if width > 0:
                b = min(B - 1, int((x - lo[j]) / width * B))
            count[j, b] += 1
            wsum[j, b] += wi
            w2sum[j, b] += wi * wi
            if x < vmin[j, b]:
                vmin[j, b] = x
            if x > vmax[j, b]:
                vmax[j, b] = x


@_jit
def collect(X, w, columns, first, end, lo, hi):
    """The values of one chunk in the ranges ``[lo[j], hi[j]]`` (grouped by column as in
    :func:`histograms`): ``(range index, value, weight)``, in path order."""
    P = X.shape[0]
    n = 0
    for i in range(P):
        for m in range(columns.shape[0]):
            if _find(lo, hi, first[m], end[m], X[i, columns[m]]) >= 0:
                n += 1
    which = np.empty(n, np.int64)
    values = np.empty(n)
    weights = np.empty(n)
    n = 0
    for i in range(P):
        for m in range(columns.shape[0]):
            x = X[i, columns[m]]
            j = _find(lo, hi, first[m], end[m], x)
            if j >= 0:
                which[n] = j
                values[n] = x
                weights[n] = w[i]
                n += 1
    return which, values, weights


@_jit
def tail_sums(X, w, column, threshold, mean, with_parts, parts, gt, eq):
    """Add one chunk to the sums over the paths beyond (and at) each threshold.

    For each pair ``j`` (column ``column[j]``, threshold ``v = threshold[j]``, the column's
    weighted mean ``mean[j]``): ``gt[j, :5]`` sums over the paths with ``x > v`` of w, w^2,
    w (x - v), w^2 (x - v), w^2 (x - v)^2; ``gt[j, 5]`` sums w^2 (x - mean)^2 over every path;
    where ``with_parts[j]``, ``gt[j, 6 + m]`` sums w X[:, parts[m]] beyond the threshold and
    ``eq[j, 2 + m]`` at it (``eq[j, 0:2]``: w and w^2 of the paths exactly at it).
    """
    P = X.shape[0]
    J = column.shape[0]
    M = parts.shape[0]
    for i in range(P):
        wi = w[i]
        for j in range(J):
            x = X[i, column[j]]
            v = threshold[j]
            d = x - mean[j]
            gt[j, 5] += wi * wi * d * d
            if x > v:
                e = x - v
                gt[j, 0] += wi
                gt[j, 1] += wi * wi
                gt[j, 2] += wi * e
                gt[j, 3] += wi * wi * e
                gt[j, 4] += wi * wi * e * e
                if with_parts[j]:
                    for m in range(M):
                        gt[j, 6 + m] += wi * X[i, parts[m]]
            elif x == v:
                eq[j, 0] += wi
                eq[j, 1] += wi * wi
                if with_parts[j]:
                    for m in range(M):
                        eq[j, 2 + m] += wi * X[i, parts[m]]
