"""Weighted risk statistics of one sample of path totals, in plain numpy.

Each path ``i`` has a loss ``x[i]`` and a weight ``w[i] >= 0`` (its likelihood ratio: 1 without
importance sampling). Every estimate is self-normalised, ``sum(w * f(x)) / sum(w)``, so weights
need not sum to anything in particular.

Definitions
-----------
VaR_alpha
    The weighted alpha-quantile: the smallest sample value ``v`` with weighted CDF
    ``F(v) = sum(w[x <= v]) / sum(w) >= alpha`` (numpy's ``method="inverted_cdf"``).
ES_alpha
    Acerbi and Tasche (2002): ``(E[x 1{x > VaR}] + VaR (F(VaR) - alpha)) / (1 - alpha)``, the mean
    of the quantile function over ``[alpha, 1]``. The second term takes the fraction of the atom at
    VaR that lies beyond alpha, so that ES >= VaR always and ES is coherent on any sample.
Tail weights
    ES is linear in the paths: ``ES = sum(tau * x)``, with ``tau`` of :func:`tail_weights`.
    The same ``tau`` applied to components of ``x`` gives their Euler contributions (summing
    to ES).

Standard errors (paths independent; valid with importance-sampling weights)
--------------------------------------------------------------------------
EL and ES
    Delta method for a self-normalised mean: ``se^2 = sum(w^2 (h - mean)^2) / sum(w)^2``, with
    ``h = x`` for EL and the ES influence ``h = VaR + (x - VaR)_+ / (1 - alpha)`` for ES (whose
    weighted mean is exactly the ES above; the VaR term's own error is second order).
VaR
    Woodruff (1952) interval: the CDF estimate at VaR has ``s_F^2 = sum(w^2 (1{x <= VaR} -
    alpha)^2) / sum(w)^2``; the 95 % interval is ``[Q(alpha - 1.96 s_F), Q(alpha + 1.96 s_F)]``
    and ``se = (upper - lower) / (2 * 1.96)``. It needs no density estimate and handles atoms.
Exceedance probabilities
    ``se`` by the same delta method; 95 % Wilson score band with the estimate's effective sample
    size ``n* = p (1 - p) / se^2`` (Korn and Graubard 1998), which is ``n`` for equal weights.

This module imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Z95",
    "Exceedance",
    "TailStats",
    "effective_sample_size",
    "exceedance",
    "mean_se",
    "tail_stats",
    "tail_weights",
    "weighted_quantile",
    "wilson",
]

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class _Sorted:
    """A sample sorted ascending, with its weighted CDF at each sorted value."""

    x: np.ndarray
    w: np.ndarray
    cdf: np.ndarray


def _sort(x: np.ndarray, w: np.ndarray) -> _Sorted:
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 1 or x.shape != w.shape or x.size == 0:
        raise ValueError(f"x and w must be equal non-empty 1-d arrays, got {x.shape}, {w.shape}")
    if not (np.all(w >= 0) and w.sum() > 0):
        raise ValueError("weights must be non-negative with a positive sum")
    order = np.argsort(x)  # the order among equal values changes no statistic
    ws = w[order]
    cdf = np.cumsum(ws) / ws.sum()
    cdf[-1] = 1.0  # rounding must not leave the top value below any alpha < 1
    return _Sorted(x[order], ws, cdf)


def _quantile_sorted(s: _Sorted, alpha: np.ndarray | float) -> np.ndarray:
    """Smallest sorted value whose CDF is >= alpha (vectorised over alpha)."""
    idx = np.searchsorted(s.cdf, np.clip(alpha, 0.0, 1.0), side="left")
    return s.x[np.minimum(idx, s.x.size - 1)]


def weighted_quantile(x: np.ndarray, w: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Weighted ``alpha``-quantile: the smallest ``x`` with weighted CDF ``>= alpha``.

    Examples
    --------
    >>> float(weighted_quantile(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4), 0.5))
    2.0
    >>> float(weighted_quantile(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 1, 1, 5]), 0.5))
    4.0
    """
    return _quantile_sorted(_sort(x, w), np.asarray(alpha, dtype=np.float64))


def mean_se(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean of ``x`` and its delta-method standard error.

    Examples
    --------
    >>> m, se = mean_se(np.array([0.0, 2.0]), np.ones(2))
    >>> float(m), float(se)
    (1.0, 0.7071067811865476)
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    total = w.sum()
    m = float(w @ x / total)
    return m, float(np.sqrt(np.sum((w * (x - m)) ** 2)) / total)


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size ``sum(w)^2 / sum(w^2)`` (``n`` for equal weights).

    Examples
    --------
    >>> effective_sample_size(np.array([1.0, 1.0, 2.0]))
    2.6666666666666665
    """
    w = np.asarray(w, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w**2))


def tail_weights(x: np.ndarray, w: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """VaR and the weights ``tau`` (summing to 1) with ``ES_alpha = sum(tau * x)``.

    Paths beyond VaR get ``w / (sum(w) (1 - alpha))``; the paths exactly at VaR share the atom's
    fraction beyond alpha, ``(F(VaR) - alpha) / (1 - alpha)``, in proportion to their weights.

    Examples
    --------
    >>> var, tau = tail_weights(np.arange(1.0, 11.0), np.ones(10), 0.75)
    >>> float(var), np.round(tau, 12).tolist()
    (8.0, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.4, 0.4])
    """
    s = _sort(x, w)
    var = float(_quantile_sorted(s, alpha))
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64) / np.sum(w)
    beyond = x > var
    at = x == var
    cdf_at_var = 1.0 - w[beyond].sum()
    tau = np.where(beyond, w / (1.0 - alpha), 0.0)
    atom = w[at].sum()
    if atom > 0:
        tau[at] = w[at] / atom * max(cdf_at_var - alpha, 0.0) / (1.0 - alpha)
    return var, tau


@dataclass(frozen=True)
class TailStats:
    """VaR and ES at each level, with standard errors and the VaR's 95 % Woodruff interval."""

    levels: np.ndarray
    var: np.ndarray
    var_se: np.ndarray
    var_lower: np.ndarray
    var_upper: np.ndarray
    es: np.ndarray
    es_se: np.ndarray


def tail_stats(x: np.ndarray, w: np.ndarray, levels: np.ndarray) -> TailStats:
    """VaR, ES and their standard errors at each level (one sort for all levels).

    Examples
    --------
    >>> t = tail_stats(np.arange(1.0, 101.0), np.ones(100), np.array([0.9, 0.99]))
    >>> t.var.tolist(), np.round(t.es, 12).tolist()
    ([90.0, 99.0], [95.5, 100.0])
    """
    s = _sort(x, w)
    levels = np.asarray(levels, dtype=np.float64)
    var = _quantile_sorted(s, levels)
    wn = s.w / s.w.sum()
    var_se, lower, upper, es, es_se = (np.empty(levels.size) for _ in range(5))
    for k, (alpha, v) in enumerate(zip(levels, var, strict=True)):
        s_f = np.sqrt(np.sum((wn * ((s.x <= v) - alpha)) ** 2))
        lower[k], upper[k] = _quantile_sorted(s, [alpha - Z95 * s_f, alpha + Z95 * s_f])
        var_se[k] = (upper[k] - lower[k]) / (2 * Z95)
        # ES = VaR + E[(x - VaR)+] / (1 - alpha): the influence's weighted mean, written so that
        # ES >= VaR holds in floating point too (the weights' sum is 1 only up to rounding,
        # and VaR times it can underflow).
        excess = np.maximum(s.x - v, 0.0) / (1.0 - alpha)
        mean_excess = wn @ excess
        es[k] = v + mean_excess
        es_se[k] = np.sqrt(np.sum((wn * (excess - mean_excess)) ** 2))
    return TailStats(levels, var, var_se, lower, upper, es, es_se)


@dataclass(frozen=True)
class Exceedance:
    """``P(x > threshold)`` at each threshold, with its standard error and 95 % Wilson band."""

    threshold: np.ndarray
    probability: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def exceedance(x: np.ndarray, w: np.ndarray, n_points: int = 100) -> Exceedance:
    """The weighted exceedance curve on thresholds spread evenly in log-probability.

    The thresholds are sample quantiles at exceedance levels from 1 down to ``1 / n_eff``, so the
    tail gets as many points as the body; the probabilities are exact at those thresholds.

    Examples
    --------
    >>> e = exceedance(np.arange(1.0, 11.0), np.ones(10), n_points=3)
    >>> e.threshold.tolist(), np.round(e.probability, 12).tolist()
    ([1.0, 7.0, 10.0], [0.9, 0.3, 0.0])
    """
    s = _sort(x, w)
    wn = s.w / s.w.sum()
    decades = np.log10(effective_sample_size(s.w))
    threshold = _quantile_sorted(s, 1.0 - np.logspace(0.0, -decades, n_points))
    threshold[-1] = s.x[-1]
    # P(x > t) = 1 - F(t); F at a sample value is the CDF at its last copy
    cdf = s.cdf[np.searchsorted(s.x, threshold, side="right") - 1]
    p = np.clip(1.0 - cdf, 0.0, 1.0)
    pairs = zip(threshold, p, strict=True)
    se = np.array([np.sqrt(np.sum((wn * ((s.x > t) - q)) ** 2)) for t, q in pairs])
    # n* is undefined where p is 0 or 1 (se = 0): Kish's n_eff stands in
    n_star = np.full(p.shape, effective_sample_size(s.w))
    np.divide(p * (1 - p), se**2, out=n_star, where=se > 0)
    lower, upper = wilson(p, n_star)
    return Exceedance(threshold, p, se, lower, upper)


def wilson(p: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval for a proportion ``p`` from ``n`` (effective) trials.

    Examples
    --------
    >>> lo, hi = wilson(np.array([0.5]), np.array([100.0]))
    >>> np.round([lo[0], hi[0]], 4).tolist()
    [0.4038, 0.5962]
    """
    z2 = Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)
    # the interval holds p in exact arithmetic; min/max keep rounding (p = 0 or 1) from breaking it
    return np.minimum(np.clip(centre - half, 0.0, 1.0), p), np.maximum(centre + half, p).clip(0, 1)
