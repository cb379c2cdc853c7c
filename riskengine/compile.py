"""Scenario + economy -> :class:`ModelArrays`, the flat arrays every kernel takes.

This is the only place where the scenario's analyst-friendly blocks become matrices, and where
the checks that need the economy run (labels, the propagation matrix's spectral radius, the
exposure table). Kernels and the reference read nothing else.

This module imports numpy, scipy.special and riskengine's economy, errors, inputs, portfolio and
scenario modules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.special import logit, ndtri

from riskengine.economy import Economy, load_economy
from riskengine.errors import EconomyError, InputError, PortfolioError, ScenarioError
from riskengine.inputs import InputFile
from riskengine.portfolio import (
    REGIONAL_SEGMENTS,
    Capital,
    Portfolio,
    proxy_portfolio,
    read_capital,
    read_portfolio,
    segments,
)
from riskengine.scenario import KINDS, Scenario

__all__ = ["CompiledModel", "ModelArrays", "compile_model", "credit_arrays"]


class ModelArrays(NamedTuple):
    """Everything one path needs, as numpy arrays and scalars (float64 unless noted).

    C channels, N nodes, R regions, F = 1 + R exposure factors, T months.
    """

    tension_phi: float  # AR(1) coefficient phi
    tension_start: float  # g_0 when not stationary
    tension_stationary: bool  # draw g_0 ~ N(0, 1) from month 0, slot 0
    loading: np.ndarray  # (C,) a_c, loading on tension
    chol: np.ndarray  # (C, C) lower Cholesky factor L of the channel correlation
    threshold_on: np.ndarray  # (C,) Phi^-1(1 - p_on)   (+inf when p_on = 0)
    threshold_off: np.ndarray  # (C,) Phi^-1(p_off)     (-inf when p_off = 0)
    retaliation: np.ndarray  # (C, C) kappa[c, c'], zero diagonal
    severity_logit_median: np.ndarray  # (C,) logit(m_c)
    severity_dispersion: np.ndarray  # (C,) v_c
    buffer_months: np.ndarray  # (C,) b_c
    supply_left: np.ndarray  # (C, T) 1 - sub_c(t) for t = 1..T
    initial_on: np.ndarray  # (C,) bool
    initial_severity: np.ndarray  # (C,)
    initial_months_on: np.ndarray  # (C,) int64, k at month 0
    exposure: np.ndarray  # (C, N) E[c, n]
    exposure_sigma: np.ndarray  # (N,) sigma_n
    factor_loadings: np.ndarray  # (N, F) B[n, f]
    idiosyncratic_sd: np.ndarray  # (N,) sqrt(1 - sum_f B[n, f]^2)
    kind: np.ndarray  # (C,) int64: 0 supply, 1 demand, 2 finance (propagates as demand)
    stock_months: np.ndarray  # (C, N) months of stock of what a supply channel cuts
    stock_rebuild: np.ndarray  # (C,) months of stock regained a month at full supply
    diversion: np.ndarray  # (C, N, N) D[c, m, n]: node m's gain per unit of n's lost sales
    scheduled: np.ndarray  # (C,) bool: the channel follows its schedule, not its regimes
    schedule: np.ndarray  # (C, T) the scheduled severity of each month (0 outside it)
    supply_matrix: np.ndarray  # (N, N) W = supply_weight A^T
    demand_matrix: np.ndarray  # (N, N) D = demand_weight A*
    recovery: np.ndarray  # (N,) k_n
    loss_scale: np.ndarray  # (N,) x_n / 12
    value_added_share: np.ndarray  # (N,) va_n / x_n
    region_weight: np.ndarray  # (R, N) v_n / GDP_r for the nodes n of region r, else 0
    # The portfolio's K classes (rows of one bank with one driver, PD, sensitivity, rho):
    credit_driver: np.ndarray  # (K,) int64: node n, or N + r (region r's value added lost)
    credit_probit: np.ndarray  # (K,) Phi^-1(pd)
    credit_beta: np.ndarray  # (K,) probit shift per unit of the driver
    credit_rho: np.ndarray  # (K,) correlation with the credit-cycle factor, in [0, 1)
    credit_scale: np.ndarray  # (K,) sum of EAD * LGD / 12 over the class's rows
    credit_bank: np.ndarray  # (K,) int64, into CompiledModel.banks
    credit_segment: np.ndarray  # (K,) int64, into CompiledModel.segments
    # Importance sampling (section 8): the mean shift of each tilted normal, zero by default.
    tilt_head: np.ndarray  # (1 + C F,) month 0's slots: g_0, then zf[c, f]
    tilt_monthly: np.ndarray  # (T, 1 + 2C) each month's slots: zg, zc[c], zs[c]
    tilt_cycle: np.ndarray  # (Y,) the credit-cycle factors Z_y (used where some rho > 0)


@dataclass(frozen=True)
class CompiledModel:
    """The arrays plus the labels and provenance the cube needs."""

    arrays: ModelArrays
    scenario: Scenario
    regions: tuple[str, ...]
    sectors: tuple[str, ...]
    channels: tuple[str, ...]
    unit: str
    inputs: tuple[InputFile, ...] = ()  # every file besides the scenario that entered the model
    gdp: np.ndarray | None = None  # (R,) each region's annual value added, in ``unit``
    banks: tuple[str, ...] = ()  # the portfolio's banks, in order of first appearance
    segments: tuple[str, ...] = ()  # the sectors, then households, commercial_real_estate, ...
    cet1: np.ndarray | None = None  # (B,) CET1 capital, NaN for a bank without capital data
    rwa: np.ndarray | None = None  # (B,) risk-weighted assets, NaN likewise
    portfolio_name: str = ""  # the portfolio's library name or file

    @property
    def identity(self) -> str:
        """sha256 of everything the model was built from: the scenario's text, the digest of
        every input file (economy tables, portfolio, capital), in order, and the portfolio's
        name, and an importance-sampling tilt where one is set (section 8). Two models with
        the same identity give the same cube for the same seed; ``--resume`` requires it."""
        digest = hashlib.sha256(self.scenario.source_text.encode())
        for f in self.inputs:
            digest.update(f.sha256.encode())
        digest.update(self.portfolio_name.encode())
        a = self.arrays
        if np.any(a.tilt_head) or np.any(a.tilt_monthly) or np.any(a.tilt_cycle):
            digest.update(b"tilt")
            digest.update(np.ascontiguousarray(a.tilt_head, np.float64).tobytes())
            digest.update(np.ascontiguousarray(a.tilt_monthly, np.float64).tobytes())
            digest.update(np.ascontiguousarray(a.tilt_cycle, np.float64).tobytes())
        return digest.hexdigest()

    @property
    def horizon(self) -> int:
        return self.scenario.horizon_months

    @property
    def start(self) -> dt.date:
        return self.scenario.start

    @property
    def n_nodes(self) -> int:
        return len(self.regions) * len(self.sectors)


def _check_range(values: np.ndarray, lo: float, hi: float, where: str, names: list[str]) -> None:
    bad = np.flatnonzero((values < lo) | (values > hi))
    if bad.size:
        raise ScenarioError(
            f"{where}: value {values[bad[0]]:g} at node {names[bad[0]]} is outside "
            f"[{lo:g}, {hi:g}]; lower the sector value or the region factor"
        )


def compile_model(
    scenario: Scenario,
    economy: Economy | None = None,
    *,
    portfolio: str | Path | Portfolio | None = None,
    capital: str | Path | Capital | None = None,
) -> CompiledModel:
    """Turn a validated scenario into the kernels' arrays, with the checks that need the economy.

    Parameters
    ----------
    scenario
        From :func:`riskengine.load_scenario`.
    economy
        Overrides the scenario's ``economy`` field (tests pass small economies this way).
    portfolio
        Overrides ``credit.portfolio``: a library name, a CSV or parquet file, ``"proxy"``, or a
        :class:`~riskengine.portfolio.Portfolio`. The scenario's ``credit.capital`` then does not
        apply; give ``capital`` for this portfolio's banks.
    capital
        Overrides ``credit.capital``: a library name, a CSV or parquet file (bank, cet1, rwa) or
        a :class:`~riskengine.portfolio.Capital`.

    Raises
    ------
    ScenarioError, PortfolioError
        One line naming the field or file: unknown labels, values out of range, an unstable
        propagation matrix, a bad portfolio row.
    """
    src = scenario.source_path
    try:
        eco = economy or load_economy(scenario.economy, scenario.base_dir)
    except EconomyError as exc:
        raise ScenarioError(f"{src}: economy: {exc}") from None
    R, S, N = len(eco.regions), len(eco.sectors), eco.n_nodes
    T = scenario.horizon_months
    names = scenario.channel_names
    labels = eco.node_labels

    def node_values(block, where: str, lo: float, hi: float) -> np.ndarray:
        # Prefixed with the file like every other message, so the CLI's line names both.
        values = block.to_array(eco.regions, eco.sectors, f"{src}: {where}")
        _check_range(values, lo, hi, f"{src}: {where}", labels)
        return values

    ch = [scenario.channels[c] for c in names]
    exposure = np.stack(
        [
            node_values(c.exposure, f"channels.{n}.exposure", 0.0, 1.0)
            for n, c in zip(names, ch, strict=True)
        ]
    )
    months = np.arange(1, T + 1, dtype=np.float64)
    subs = [c.substitution for c in ch]
    supply_left = np.stack(
        [1.0 - s.max / (1.0 + np.exp(-(months - s.midpoint_month) / s.width_months)) for s in subs]
    )

    unc = scenario.exposure_uncertainty
    B = np.zeros((N, 1 + R))
    B[:, 0] = unc.global_loading
    B[np.arange(N), 1 + np.arange(N) // S] = unc.regional_loading

    prop = scenario.propagation
    W = eco.supply_matrix(prop.supply_weight)
    D = eco.demand_matrix(prop.demand_weight)
    for name, matrix in (("supply_weight", W), ("demand_weight", D)):
        radius = float(np.max(np.abs(np.linalg.eigvals(matrix))))
        if radius >= 1.0:
            raise ScenarioError(
                f"{src}: propagation.{name}: the operator has spectral radius {radius:.3f} >= 1, "
                f"so shocks would grow without bound; lower propagation.{name}"
            )
    stock = np.stack(
        [
            node_values(c.stock.months, f"channels.{n}.stock.months", 0.0, 120.0)
            for n, c in zip(names, ch, strict=True)
        ]
    )
    schedule = np.zeros((len(ch), T))
    for i, c in enumerate(ch):
        for period in c.schedule or ():
            first = _months_between(scenario.start, period.start)
            last = _months_between(scenario.start, period.end)
            schedule[i, max(first, 0) : max(last + 1, 0)] = period.severity
    recovery = node_values(prop.recovery_speed, "propagation.recovery_speed", 0.0, 1.0)
    if np.any(recovery <= 0.0):
        raise ScenarioError(
            f"{src}: propagation.recovery_speed: every node needs a speed in (0, 1]"
        )

    inputs = list(eco.files)
    book, cap = _credit_inputs(scenario, eco, node_values, portfolio, capital)
    inputs += [f for f in (book.file, cap.file if cap else None) if f is not None]
    classes = credit_arrays(book, scenario.credit.sensitivity, eco)
    banks = book.banks
    cet1 = np.array([cap.cet1[b] for b in banks]) if cap else np.full(len(banks), np.nan)
    rwa = np.array([cap.rwa[b] for b in banks]) if cap else np.full(len(banks), np.nan)

    arrays = ModelArrays(
        tension_phi=float(scenario.tension.phi),
        tension_start=0.0
        if scenario.tension.start == "stationary"
        else float(scenario.tension.start),
        tension_stationary=scenario.tension.start == "stationary",
        loading=np.array([c.loading for c in ch]),
        chol=np.linalg.cholesky(scenario.correlation_matrix()),
        threshold_on=ndtri(1.0 - np.array([c.p_on for c in ch])),
        threshold_off=ndtri(np.array([c.p_off for c in ch])),
        retaliation=scenario.retaliation_matrix(),
        severity_logit_median=logit(np.array([c.severity.median for c in ch])),
        severity_dispersion=np.array([c.severity.dispersion for c in ch]),
        buffer_months=np.array([c.buffer_months for c in ch]),
        supply_left=supply_left,
        initial_on=np.array([c.initial.on for c in ch]),
        initial_severity=np.array([c.initial.severity for c in ch]),
        initial_months_on=np.array([c.initial.months_on for c in ch], dtype=np.int64),
        exposure=exposure,
        exposure_sigma=node_values(unc.sigma, "exposure_uncertainty.sigma", 0.0, 5.0),
        factor_loadings=B,
        idiosyncratic_sd=np.sqrt(1.0 - (B**2).sum(axis=1)),
        kind=np.array([KINDS.index(c.kind) for c in ch], dtype=np.int64),
        stock_months=stock,
        stock_rebuild=np.array([c.stock.rebuild for c in ch]),
        diversion=_diversion(eco, exposure, np.array([c.diversion.share for c in ch])),
        scheduled=np.array([c.schedule is not None for c in ch]),
        schedule=schedule,
        supply_matrix=W,
        demand_matrix=D,
        recovery=recovery,
        loss_scale=eco.x / 12.0,
        value_added_share=eco.value_added / eco.x,
        **classes,
        tilt_head=np.zeros(1 + len(ch) * B.shape[1]),
        tilt_monthly=np.zeros((scenario.horizon_months, 1 + 2 * len(ch))),
        tilt_cycle=np.zeros((scenario.horizon_months + 11) // 12),
    )
    _check_magnitudes(arrays, eco, src)
    return CompiledModel(
        arrays, scenario, eco.regions, eco.sectors, tuple(names), eco.currency, tuple(inputs),
        eco.gdp, banks, segments(eco.sectors), cet1, rwa, book.name,
    )  # fmt: skip


def _credit_inputs(scenario, eco, node_values, portfolio, capital):
    """The portfolio and capital a model is built with: the arguments, else the scenario's."""
    src = scenario.source_path
    credit = scenario.credit
    # A file named in the scenario is read from the scenario's folder, one given as an argument
    # from the current directory.
    book_where = cap_where = None  # the scenario's field, for tables the scenario names
    book_dir = cap_dir = Path.cwd()
    if portfolio is None:
        portfolio, book_dir, book_where = credit.portfolio, scenario.base_dir, "credit.portfolio"
        if capital is None:
            capital, cap_dir, cap_where = credit.capital, scenario.base_dir, "credit.capital"
    if isinstance(portfolio, Portfolio):
        book = portfolio
        book.check_labels(eco.regions, eco.sectors)
    elif str(portfolio) == "proxy":
        proxy = credit.proxy
        if proxy.bank_sector not in eco.sectors:
            raise ScenarioError(
                f"{src}: credit.proxy.bank_sector: unknown sector {proxy.bank_sector!r}; "
                f"known: {', '.join(eco.sectors)}"
            )
        pd0 = node_values(proxy.pd0, "credit.proxy.pd0", 0.0, 1.0)
        if np.any((pd0 <= 0.0) | (pd0 >= 1.0)):
            raise ScenarioError(
                f"{src}: credit.proxy.pd0: every baseline PD must lie strictly in (0, 1)"
            )
        book = proxy_portfolio(
            eco.Z, eco.regions, eco.sectors, proxy.bank_sector, proxy.ead_multiple, pd0, proxy.lgd
        )
    else:
        try:
            book = read_portfolio(portfolio, eco.regions, eco.sectors, book_dir)
        except PortfolioError as exc:
            raise _named(exc, scenario, book_where) from None
    if capital is None or isinstance(capital, Capital):
        cap = capital
    else:
        try:
            cap = read_capital(capital, book.banks, cap_dir)
        except PortfolioError as exc:
            raise _named(exc, scenario, cap_where) from None
    if cap is not None:
        missing = [b for b in book.banks if b not in cap.cet1]
        if missing:
            raise ScenarioError(f"capital: no CET1 and RWA for bank {missing[0]!r}; add them")
    return book, cap


def _named(exc: PortfolioError, scenario: Scenario, field: str | None) -> InputError:
    """A table the scenario names is part of the scenario: a ScenarioError naming its field as
    well; a table given as an argument keeps its PortfolioError."""
    return ScenarioError(f"{scenario.source_path}: {field}: {exc}") if field else exc


def _region_weight(eco: Economy) -> np.ndarray:
    """w[r, n] = v_n / GDP_r for the nodes of region r: a year's mean output losses ``q`` give
    the region's value added lost as a share of its GDP, ``w q``."""
    R, S = len(eco.regions), len(eco.sectors)
    w = np.zeros((R, R * S))
    for r in range(R):
        w[r, r * S : (r + 1) * S] = eco.value_added[r * S : (r + 1) * S] / eco.gdp[r]
    return w


def credit_arrays(book: Portfolio, sens, eco: Economy) -> dict[str, np.ndarray]:
    """The credit stage's fields of :class:`ModelArrays` for portfolio ``book`` with the PD
    sensitivities ``sens`` (:class:`~riskengine.scenario.CreditSensitivity`) on economy ``eco``:
    ``region_weight`` and the rows grouped into classes (one bank, segment, driver, PD,
    sensitivity and rho), in order of first appearance, EAD * LGD summed within a class in row
    order."""
    N = eco.n_nodes
    S = len(eco.sectors)
    all_segments = segments(eco.sectors)
    banks = book.banks
    keys: dict[tuple, int] = {}
    scale: list[float] = []
    for i in range(len(book.bank)):
        r = eco.regions.index(book.region[i])
        segment = book.segment[i]
        if segment in REGIONAL_SEGMENTS:
            driver, beta = N + r, getattr(sens, segment)
        else:
            driver, beta = r * S + eco.sectors.index(segment), sens.corporate
        key = (
            banks.index(book.bank[i]), all_segments.index(segment), driver, float(book.pd[i]),
            float(beta), float(book.rho[i]),
        )  # fmt: skip
        if key not in keys:
            keys[key] = len(keys)
            scale.append(0.0)
        scale[keys[key]] += float(book.ead[i]) * float(book.lgd[i])
    k = np.array(list(keys), dtype=np.float64).reshape(-1, 6)
    return {
        "region_weight": _region_weight(eco),
        "credit_driver": k[:, 2].astype(np.int64),
        "credit_probit": ndtri(k[:, 3]),
        "credit_beta": k[:, 4].copy(),
        "credit_rho": k[:, 5].copy(),
        "credit_scale": np.array(scale) / 12.0,
        "credit_bank": k[:, 0].astype(np.int64),
        "credit_segment": k[:, 1].astype(np.int64),
    }


def _months_between(start: dt.date, month: dt.date) -> int:
    """Months from ``start`` to ``month`` (0 for the start month itself)."""
    return (month.year - start.year) * 12 + month.month - start.month


def _diversion(eco: Economy, exposure: np.ndarray, share: np.ndarray) -> np.ndarray:
    """D[c, m, n]: the output node m gains per unit of output node n loses in demand channel c.

    A share of the sales that an exposed node loses goes to the same sector of the regions the
    channel does not touch (every node of the region unexposed), in proportion to their output:
    ``D[c, m, n] = share_c x_n / X_B(c, s) / x_m * x_m`` in output shares, that is
    ``share_c x_n / X_B(c, s)`` for m of sector s = sector(n) in an untouched region, where
    ``X_B(c, s)`` is that sector's output over the untouched regions.
    """
    C, N = exposure.shape
    R, S = len(eco.regions), len(eco.sectors)
    out = np.zeros((C, N, N))
    for c in range(C):
        if share[c] == 0:
            continue
        touched = exposure[c].reshape(R, S).any(axis=1)
        bystander = np.repeat(~touched, S)
        for n in np.flatnonzero(exposure[c]):
            same = bystander & (np.arange(N) % S == n % S)
            if same.any():
                out[c, same, n] = share[c] * eco.x[n] / eco.x[same].sum()
    return out


# The cube holds float32 sums over periods: every possible value must stay far below float32's
# largest (3.4e38), so that a run's figures cannot overflow to infinity.
MAX_CUBE_VALUE = 1e30


def _check_magnitudes(a: ModelArrays, eco: Economy, src: str) -> None:
    """The largest loss a run could write (every node fully inoperable, every month of the
    horizon in one period) must fit the cube's float32."""
    T = a.supply_left.shape[1]
    if a.loss_scale.sum() * T > MAX_CUBE_VALUE:
        raise ScenarioError(
            f"{src}: economy: gross outputs up to {eco.x.max():.3g} {eco.unit} make losses too "
            "large for the cube's float32; express the table in a larger unit (unit.txt)"
        )
    if a.credit_scale.sum() * T > MAX_CUBE_VALUE:
        raise ScenarioError(
            f"{src}: credit: exposures up to {a.credit_scale.max() * 12:.3g} {eco.unit} make "
            "credit losses too large for the cube's float32; express the portfolio's EAD in "
            "the economy's unit"
        )
