"""The kernels' input: :class:`KernelModel`, flat arrays derived once from ``ModelArrays``.

Both targets (CPU and CUDA) read the same fields, so everything that is the same for every path
is computed here once, on the host, in float64 numpy: the tension innovation scale, the
off-diagonal retaliation matrix, the propagation matrix in float32, the list of nonzero
exposures, and the piecewise polynomials that give credit losses without a normal CDF per node.

Credit losses need ``pd(q) - pd0 = Phi(Phi^-1(pd0) + gamma q) - pd0`` for every node and month,
84 normal CDFs per path-month, which would cost more than the propagation. The difference is
written as ``q * G(q)`` with ``G`` smooth and positive on ``[0, 1]``; each node's ``G`` is a
polynomial of fixed degree :data:`CREDIT_DEGREE` on ``J`` equal pieces of ``[0, 1]``,
interpolated at Chebyshev points, with ``J`` doubled until the relative error is below
:data:`CREDIT_RTOL` on a fine grid. For the library (gamma 3, baseline PDs 0.5 and 1 %) one piece
suffices: the kernel then runs the same Horner chain on every lane of a node, vectorized across
lanes with the node's coefficients broadcast; steeper responses or smaller baseline PDs need more
pieces, and the lookup by piece is a scalar gather. Writing ``q * G(q)`` also keeps the
difference exact near ``q = 0`` (no cancellation) and exactly 0 at ``q = 0``.

The kernels evaluate ``G`` in float32, like ``q`` itself (twice the lanes to a vector), where
that keeps its relative error below :data:`CREDIT_FLOAT32_RTOL` (a few 1e-7 for the library),
checked here by evaluating the float32 chain; else in float64. Small baseline PDs need float64:
``G`` then spans orders of magnitude on ``[0, 1]`` and the float32 chain loses its small values
(1e-5 relative for pd0 = 1e-6).

This module imports numpy and scipy.special only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import ndtr

__all__ = [
    "CREDIT_DEGREE",
    "CREDIT_FLOAT32_RTOL",
    "CREDIT_RTOL",
    "KernelModel",
    "credit_polynomials",
    "float32_error",
    "kernel_model",
]

# 15: one piece reaches CREDIT_RTOL for the library's gamma and baseline PDs; the kernel's 15
# fused multiply-adds per node, vectorized across lanes, cost less than a table lookup.
CREDIT_DEGREE = 15
CREDIT_RTOL = 1e-9
# A third of the tests' tolerance on the kernels against the reference (1e-5).
CREDIT_FLOAT32_RTOL = 3e-6
# Pieces roughly double with gamma (32 at gamma 50, 512 at 1500): past 1024 the fit is refused.
_MAX_PIECES = 1 << 10


class KernelModel(NamedTuple):
    """Everything a kernel reads. C channels, N = R*S nodes (region-major), F factors, T months."""

    tension_phi: float
    tension_innovation_sd: float  # sqrt(1 - phi^2)
    tension_start: float
    tension_stationary: bool
    loading: np.ndarray  # (C,) a_c
    idiosyncratic_loading: np.ndarray  # (C,) sqrt(1 - a_c^2)
    chol: np.ndarray  # (C, C) lower Cholesky factor of the channel correlation
    threshold_on: np.ndarray  # (C,)
    threshold_off: np.ndarray  # (C,)
    retaliation: np.ndarray  # (C, C) kappa with a zero diagonal
    severity_logit_median: np.ndarray  # (C,)
    severity_dispersion: np.ndarray  # (C,)
    buffer_months: np.ndarray  # (C,)
    supply_left: np.ndarray  # (C, T)
    initial_on: np.ndarray  # (C,) bool
    initial_severity: np.ndarray  # (C,)
    initial_months_on: np.ndarray  # (C,) int64
    exposure: np.ndarray  # (C, N)
    exposure_channel: np.ndarray  # (K,) int64: channel of each nonzero exposure, by (c, n)
    exposure_node: np.ndarray  # (K,) int64: its node
    exposure_sigma: np.ndarray  # (N,)
    factor_loadings: np.ndarray  # (N, F)
    idiosyncratic_sd: np.ndarray  # (N,)
    kind: np.ndarray  # (C,) int64: 0 supply, else demand (the kind's propagation)
    exposure_stock: np.ndarray  # (K,) months of stock of each nonzero exposure's buyer
    stock_rebuild: np.ndarray  # (C,)
    diversion_first: np.ndarray  # (K + 1,) int64: exposure k's gains are entries [first[k],
    diversion_node: np.ndarray  # (J,) int64       first[k + 1]) of node and coefficient
    diversion_coef: np.ndarray  # (J,)
    scheduled: np.ndarray  # (C,) bool
    schedule: np.ndarray  # (C, T)
    supply_matrix: np.ndarray  # (N, N) float32, W
    demand_matrix: np.ndarray  # (N, N) float32, D
    recovery: np.ndarray  # (N,)
    loss_scale: np.ndarray  # (N,)
    cube_node: np.ndarray  # (N,) int64: the node n = r S + s of the cube's cell m = s R + r
    va_share: np.ndarray  # (N,) value-added share of the cube's cell m = s R + r
    credit_poly: np.ndarray  # (J, CREDIT_DEGREE + 1, N) float32 or 64: node n's G on piece j
    credit_scale: np.ndarray  # (R, N)


def _credit_g(q: np.ndarray, x0: float, gamma: float) -> np.ndarray:
    """G(q) = (Phi(x0 + gamma q) - Phi(x0)) / q, with its limit gamma phi(x0) at q = 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (ndtr(x0 + gamma * q) - ndtr(x0)) / q
    return np.where(q == 0.0, gamma * np.exp(-0.5 * x0 * x0) / np.sqrt(2.0 * np.pi), ratio)


def credit_polynomials(pd0_probit: np.ndarray, gamma: float) -> np.ndarray:
    """Each node's G(q) as a polynomial on as many equal pieces of ``[0, 1]`` as accuracy needs.

    Returns
    -------
    ndarray, shape (J, CREDIT_DEGREE + 1, N)
        ``poly[j, :, n]`` holds the monomial coefficients (highest first) of node ``n``'s G on
        ``q in [j/J, (j+1)/J]`` in the local variable ``t = 2 (J q - j) - 1``.

    Examples
    --------
    >>> poly = credit_polynomials(np.array([-2.0, -1.0, -2.0]), 2.0)
    >>> poly.shape[1:]
    (16, 3)
    >>> q = 0.3; J = poly.shape[0]; j = int(q * J); t = 2 * (q * J - j) - 1
    >>> approx = q * np.polyval(poly[j, :, 0], t)
    >>> bool(abs(approx / (ndtr(-2.0 + 2.0 * q) - ndtr(-2.0)) - 1) < 1e-9)
    True
    """
    # Nodes that share a baseline PD share a polynomial: fit each distinct one once.
    x0s, table_of_node = np.unique(np.asarray(pd0_probit, dtype=np.float64), return_inverse=True)
    D = CREDIT_DEGREE
    # Interpolation at Chebyshev points, then to monomials: both linear maps, built once.
    points = chebyshev.chebpts1(D + 1)
    to_chebyshev = np.linalg.inv(chebyshev.chebvander(points, D))
    to_monomial = np.zeros((D + 1, D + 1))
    for k in range(D + 1):
        to_monomial[k, : k + 1] = chebyshev.cheb2poly(np.eye(D + 1)[k])[: k + 1]
    fit = to_chebyshev.T @ to_monomial  # values at the points -> monomial coefficients
    check = np.linspace(0.0, 1.0, 4097)[1:]
    exact = _credit_g(check[None, :], x0s[:, None], gamma)
    scale = np.maximum(np.abs(exact), np.finfo(float).tiny)
    pieces = 1
    while True:
        q = (np.arange(pieces)[:, None] + (points[None, :] + 1.0) / 2.0) / pieces
        tables = (_credit_g(q[None], x0s[:, None, None], gamma) @ fit)[..., ::-1]
        j = np.minimum((check * pieces).astype(np.int64), pieces - 1)
        t = 2.0 * (check * pieces - j) - 1.0
        approx = tables[:, j, 0]
        for d in range(1, D + 1):
            approx = approx * t + tables[:, j, d]
        # The check's own rounding noise is about 1e-12 relative, well below the target.
        if np.max(np.abs(approx - exact) / scale) < CREDIT_RTOL:
            # (U, J, D + 1) -> (J, D + 1, N): a node's coefficient k of piece j at [j, k, n]
            return np.ascontiguousarray(tables[table_of_node].transpose(1, 2, 0))
        if pieces >= _MAX_PIECES:
            raise ValueError(
                f"credit.gamma = {gamma:g}: the credit response is too steep to tabulate with "
                f"{_MAX_PIECES} pieces; use a smaller gamma"
            )
        pieces *= 2


def float32_error(poly: np.ndarray, pd0_probit: np.ndarray, gamma: float) -> float:
    """The largest relative error of ``G`` evaluated as the kernels do in float32 (piece,
    local variable and Horner chain), on a grid of ``q`` in ``(0, 1]`` fine near 0.

    Examples
    --------
    >>> x0 = np.array([-2.326, -4.753])  # pd0 of 1 % and 1e-6
    >>> bool(float32_error(credit_polynomials(x0[:1], 2.0), x0[:1], 2.0) < CREDIT_FLOAT32_RTOL)
    True
    >>> bool(float32_error(credit_polynomials(x0, 2.0), x0, 2.0) < CREDIT_FLOAT32_RTOL)
    False
    """
    grid = np.concatenate([np.geomspace(1e-7, 1e-3, 200), np.linspace(0.0, 1.0, 4097)[1:]])
    q = grid.astype(np.float32)
    poly32 = poly.astype(np.float32)
    pieces = poly.shape[0]
    x = q * np.float32(pieces)
    j = np.minimum(x.astype(np.int64), pieces - 1)
    t = np.float32(2.0) * (x - j.astype(np.float32)) - np.float32(1.0)
    g = poly32[j, 0, :]
    for k in range(1, CREDIT_DEGREE + 1):
        g = g * t[:, None] + poly32[j, k, :]
    exact = _credit_g(q.astype(np.float64)[:, None], np.asarray(pd0_probit)[None, :], gamma)
    return float(np.max(np.abs(g / exact - 1.0)))


def kernel_model(arrays) -> KernelModel:
    """Derive the kernels' arrays from a compiled model's ``ModelArrays``."""
    a = arrays
    C = len(a.loading)
    channel_of, node_of = np.nonzero(a.exposure)  # in (c, n) order
    credit_poly = credit_polynomials(a.pd0_probit, a.credit_gamma)
    if float32_error(credit_poly, a.pd0_probit, a.credit_gamma) < CREDIT_FLOAT32_RTOL:
        credit_poly = credit_poly.astype(np.float32)
    R, N = a.credit_scale.shape
    S = N // R
    # Diversion as a list per nonzero exposure: the nodes that gain, and how much per unit lost.
    gains = [np.flatnonzero(a.diversion[c, :, n]) for c, n in zip(channel_of, node_of, strict=True)]
    first = np.concatenate([[0], np.cumsum([g.size for g in gains])])
    targets = np.concatenate([g for g in gains] + [np.empty(0, np.int64)])
    coefs = np.concatenate(
        [a.diversion[c, g, n] for c, n, g in zip(channel_of, node_of, gains, strict=True)]
        + [np.empty(0)]
    )
    return KernelModel(
        tension_phi=float(a.tension_phi),
        # the reference's exact expression, so that g_t is computed from the same numbers
        tension_innovation_sd=float(np.sqrt(1.0 - a.tension_phi**2)),
        tension_start=float(a.tension_start),
        tension_stationary=bool(a.tension_stationary),
        loading=np.ascontiguousarray(a.loading, dtype=np.float64),
        idiosyncratic_loading=np.sqrt(1.0 - a.loading**2),
        chol=np.ascontiguousarray(a.chol, dtype=np.float64),
        threshold_on=np.ascontiguousarray(a.threshold_on, dtype=np.float64),
        threshold_off=np.ascontiguousarray(a.threshold_off, dtype=np.float64),
        retaliation=a.retaliation * (1.0 - np.eye(C)),
        severity_logit_median=np.ascontiguousarray(a.severity_logit_median, dtype=np.float64),
        severity_dispersion=np.ascontiguousarray(a.severity_dispersion, dtype=np.float64),
        buffer_months=np.ascontiguousarray(a.buffer_months, dtype=np.float64),
        supply_left=np.ascontiguousarray(a.supply_left, dtype=np.float64),
        initial_on=np.ascontiguousarray(a.initial_on, dtype=np.bool_),
        initial_severity=np.ascontiguousarray(a.initial_severity, dtype=np.float64),
        initial_months_on=np.ascontiguousarray(a.initial_months_on, dtype=np.int64),
        exposure=np.ascontiguousarray(a.exposure, dtype=np.float64),
        exposure_channel=channel_of.astype(np.int64),
        exposure_node=node_of.astype(np.int64),
        exposure_sigma=np.ascontiguousarray(a.exposure_sigma, dtype=np.float64),
        factor_loadings=np.ascontiguousarray(a.factor_loadings, dtype=np.float64),
        idiosyncratic_sd=np.ascontiguousarray(a.idiosyncratic_sd, dtype=np.float64),
        kind=np.ascontiguousarray(a.kind, dtype=np.int64),
        exposure_stock=np.ascontiguousarray(a.stock_months[channel_of, node_of], np.float64),
        stock_rebuild=np.ascontiguousarray(a.stock_rebuild, dtype=np.float64),
        diversion_first=first.astype(np.int64),
        diversion_node=np.ascontiguousarray(targets, dtype=np.int64),
        diversion_coef=np.ascontiguousarray(coefs, dtype=np.float64),
        scheduled=np.ascontiguousarray(a.scheduled, dtype=np.bool_),
        schedule=np.ascontiguousarray(a.schedule, dtype=np.float64),
        supply_matrix=np.ascontiguousarray(a.supply_matrix, dtype=np.float32),
        demand_matrix=np.ascontiguousarray(a.demand_matrix, dtype=np.float32),
        recovery=np.ascontiguousarray(a.recovery, dtype=np.float64),
        loss_scale=np.ascontiguousarray(a.loss_scale, dtype=np.float64),
        cube_node=np.arange(N).reshape(R, S).T.ravel().astype(np.int64),
        va_share=np.ascontiguousarray(a.value_added_share.reshape(R, S).T.ravel(), np.float64),
        credit_poly=credit_poly,
        credit_scale=np.ascontiguousarray(a.credit_scale, dtype=np.float64),
    )
