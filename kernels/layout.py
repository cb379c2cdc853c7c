"""The kernels' input: :class:`KernelModel`, flat arrays derived once from ``ModelArrays``.

Both targets (CPU and CUDA) read the same fields, so everything that is the same for every path
is computed here once, on the host, in float64 numpy: the tension innovation scale, the
off-diagonal retaliation matrix, the propagation matrices in float32, the list of nonzero
exposures and their diversion lists. (Credit losses are booked after the month loop from each
path's yearly output losses: :mod:`riskengine.kernels.credit`.)

This module imports numpy only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["KernelModel", "kernel_model"]


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
    n_regions: int  # R
    tilt_head: np.ndarray  # (1 + C F,) mean shift of month 0's slots g_0, zf (section 8)
    tilt_monthly: np.ndarray  # (T, 1 + 2C) mean shift of each month's slots zg, zc, zs


def kernel_model(arrays) -> KernelModel:
    """Derive the kernels' arrays from a compiled model's ``ModelArrays``."""
    a = arrays
    C = len(a.loading)
    channel_of, node_of = np.nonzero(a.exposure)  # in (c, n) order
    N = a.recovery.shape[0]
    R = a.region_weight.shape[0]
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
        n_regions=int(R),
        # g_0's shift counts only where g_0 is drawn (stationary tension), as in the reference
        tilt_head=np.ascontiguousarray(a.tilt_head, np.float64)
        * np.r_[float(a.tension_stationary), np.ones(a.tilt_head.size - 1)],
        tilt_monthly=np.ascontiguousarray(a.tilt_monthly, np.float64),
    )
