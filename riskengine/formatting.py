"""Presentation of risk figures: number formats, display units and the risk table (rich).

Shared by the command line and the report, so that a figure reads the same everywhere; the
mathematics is in :mod:`riskengine.risk`.

This module imports numpy, xarray, rich and riskengine.risk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from rich.markup import escape
from rich.table import Table

from riskengine.risk import check_levels, risk_summary

__all__ = [
    "bank_table",
    "display_unit",
    "format_amount",
    "format_estimate",
    "format_level",
    "replay_table",
    "risk_table",
    "summary_for_tables",
    "supervisory_table",
]

# What the risk table shows, over the horizon: value added lost, output lost and credit losses,
# by region and in total.
TABLE_GROUPS = ("va_total", "va_region", "total", "region", "credit", "credit_total")


def summary_for_tables(ds: xr.Dataset, levels: Sequence[float]) -> xr.Dataset:
    """The horizon's :func:`risk_summary` that :func:`risk_table` and :func:`bank_table` show
    (a run's store answers it from its per-path summaries, without reading the cube)."""
    return risk_summary(ds, check_levels(levels), groups=TABLE_GROUPS, per_year=False)


def display_unit(units: str) -> tuple[float, str]:
    """Scale and label to show amounts in: USD bn for a cube in USD million (the price year,
    where the unit names one, kept).

    Examples
    --------
    >>> display_unit("USD million")
    (0.001, 'USD bn')
    >>> display_unit("USD million (2023 prices)")
    (0.001, 'USD bn (2023 prices)')
    """
    base, _, rest = units.partition("(")
    if base.strip().lower() in {"usd million", "million usd", "usd m"}:
        return 1e-3, "USD bn" + (f" ({rest}" if rest else "")
    return 1.0, units


def format_amount(value: float) -> str:
    """An amount with thousands separators and at least three significant digits.

    Examples
    --------
    >>> [format_amount(v) for v in (12345.6, 42.34, 0.5, 0.0)]
    ['12,346', '42.3', '0.500', '0']
    """
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    decimals = max(0, 2 - int(np.floor(np.log10(abs(value)))))
    return f"{value:,.{decimals}f}"


def format_estimate(value: float, se: float) -> str:
    """An estimate and its standard error.

    Examples
    --------
    >>> format_estimate(45576.2, 404.9)
    '45,576 ± 405'
    """
    return f"{format_amount(value)} ± {format_amount(se)}"


def format_level(level: float) -> str:
    """A level as a percentage.

    Examples
    --------
    >>> format_level(0.995)
    '99.5 %'
    """
    return f"{100 * level:g} %"


def risk_table(
    ds: xr.Dataset, levels: Sequence[float] = (0.99,), summary: xr.Dataset | None = None
) -> Table:
    """The short risk table: losses over the horizon by region and in total, leading with value
    added lost in % of GDP.

    Columns: value added lost (EL and VaR ± standard error at each level) as a % of the region's
    annual GDP per year of the horizon (the world's for the total), then gross output lost in
    the economy's currency (banks' credit losses: :func:`bank_table`). Pass ``summary`` (a
    :func:`risk_summary` of the same cube with these levels) to reuse it instead of reading the
    cube again; without it, a run's store answers from its per-path summaries.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> table = risk_table(ds)
    >>> [c.header for c in table.columns]  # doctest: +NORMALIZE_WHITESPACE
    ['Region', 'Value added EL', 'Value added VaR 99 %', 'Output EL', 'Output VaR 99 %']
    """
    lv = check_levels(levels)
    if summary is None:  # the horizon's figures only: a run's store answers from its summaries
        summary = summary_for_tables(ds, lv)
    s = summary.sel(period="horizon", level=lv)
    scale, unit = display_unit(s.attrs["units"])
    years = s.attrs["horizon_months"] / 12
    gdp = s["gdp"] * years / 100  # a value lost over the horizon / gdp -> % of GDP a year
    title = (
        f"Losses over the horizon ({s.attrs['horizon_months']} months; {s.attrs['paths']:,} paths"
    )
    title += f", {s.attrs['scenario_name']})" if "scenario_name" in s.attrs else ")"
    caption = (
        f"value added lost: % of GDP a year; output: {unit}. VaR ± standard error; weighted by "
        "path weights"
    )
    # Names come from the user's files: escaped, so that rich does not read them as markup.
    table = Table(title=escape(title), caption=escape(caption))
    table.add_column("Region")
    for what in ("Value added", "Output"):
        table.add_column(f"{what} EL", justify="right")
        for a in lv:
            table.add_column(f"{what} VaR {format_level(a)}", justify="right")
    for r in s["region"].values:
        table.add_row(
            escape(str(r)),
            *_cells(s, lv, "va_region", float(gdp.sel(region=r)), region=r),
            *_cells(s, lv, "region", 1 / scale, region=r),
        )
    table.add_row(
        "Total",
        *_cells(s, lv, "va_total", float(gdp.sum())),
        *_cells(s, lv, "total", 1 / scale),
        style="bold",
    )
    return table


def _cells(s: xr.Dataset, lv, prefix: str, per: float, **where) -> list[str]:
    """EL, then VaR ± its standard error at each level, of ``prefix``, divided by ``per``."""
    row = [format_amount(float(s[f"{prefix}_EL"].sel(where)) / per)]
    for a in lv:
        var = float(s[f"{prefix}_VaR"].sel({**where, "level": a})) / per
        se = float(s[f"{prefix}_VaR_se"].sel({**where, "level": a})) / per
        row.append(format_estimate(var, se))
    return row


def bank_table(
    ds: xr.Dataset, levels: Sequence[float] = (0.99,), summary: xr.Dataset | None = None
) -> Table:
    """Banks' credit losses over the horizon, and their CET1 depletion where the cube has capital.

    Columns: credit losses (EL and VaR ± standard error at each level) in the economy's
    currency; where capital is given, the same as CET1 depletion in basis points of
    risk-weighted assets (before tax) and the CET1 ratio at the start. ``summary`` as for
    :func:`risk_table` (with the ``credit`` and ``credit_total`` groups).

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> [c.header for c in bank_table(ds).columns]  # doctest: +NORMALIZE_WHITESPACE
    ['Bank', 'Credit EL', 'Credit VaR 99 %', 'CET1 start', 'CET1 depletion EL',
     'CET1 depletion VaR 99 %']
    """
    lv = check_levels(levels)
    if summary is None:
        summary = summary_for_tables(ds, lv)
    s = summary.sel(period="horizon", level=lv)
    scale, unit = display_unit(s.attrs["units"])
    capital = "cet1_depletion_EL" in s and bool(np.isfinite(s["cet1_ratio"].values).any())
    title = f"Banks' credit losses over the horizon ({s.attrs['horizon_months']} months)"
    caption = f"credit losses: {unit}"
    if capital:
        caption += "; CET1: % and bp of risk-weighted assets, before tax"
    table = Table(title=escape(title), caption=escape(caption + ". VaR ± standard error"))
    table.add_column("Bank")
    table.add_column("Credit EL", justify="right")
    for a in lv:
        table.add_column(f"Credit VaR {format_level(a)}", justify="right")
    if capital:
        table.add_column("CET1 start", justify="right")
        table.add_column("CET1 depletion EL", justify="right")
        for a in lv:
            table.add_column(f"CET1 depletion VaR {format_level(a)}", justify="right")
    for b in s["bank"].values:
        row = [escape(str(b)), *_cells(s, lv, "credit", 1 / scale, bank=b)]
        if capital:
            ratio = float(s["cet1_ratio"].sel(bank=b))
            row += [f"{ratio:.2f} %" if np.isfinite(ratio) else "-"]
            row += [
                cell if np.isfinite(ratio) else "-"
                for cell in _cells(s, lv, "cet1_depletion", 1.0, bank=b)
            ]
        table.add_row(*row)
    total = ["All banks", *_cells(s, lv, "credit_total", 1 / scale)]
    table.add_row(*total, *([""] * (1 + 1 + len(lv)) if capital else []), style="bold")
    return table


def replay_table(results) -> Table:
    """Model against observation for replay results (:func:`riskengine.replay.run_replay`).

    A section per replay, a row per observation: the model's % change, the observed one (``-``
    where the evidence is a range or a direction), the band and the status (``pass``, ``FAIL``,
    ``gap`` for a documented gap, ``GAP CLOSED`` where the model now meets one).
    """
    table = Table(title="Replays: model against history (% change against the baseline)")
    table.add_column("replay / observation", ratio=1)
    for name in ("model", "observed", "band"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    styles = {"pass": "green", "fail": "bold red", "gap": "yellow", "gap closed": "bold red"}
    replay = None
    for r in results:
        if r.replay != replay:
            replay = r.replay
            table.add_row(f"[bold]{escape(replay)}[/]", end_section=False)
        o = r.observation
        observed = "-" if o.observed is None else f"{o.observed:+.2f}"
        status = r.status if r.passed else r.status.upper()
        table.add_row(
            "  " + escape(o.name),
            f"{r.model:+.2f}",
            observed,
            f"[{o.band[0]:+.2f}, {o.band[1]:+.2f}]",
            f"[{styles[r.status]}]{status}[/]",
        )
    return table


def supervisory_table(results) -> Table:
    """Supervisory stress tests through the credit layer
    (:func:`riskengine.supervisory.run_supervisory`): the model's credit losses over the
    horizon, baseline included, in bp of the bank's risk-weighted assets, beside the published
    figure; a calibration shows what it was fitted to, a replay passes within its factor."""
    table = Table(title="Supervisory stress tests: credit losses, bp of risk-weighted assets")
    table.add_column("path / bank", ratio=1)
    for name in ("model", "published", "model / published"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for r in results:
        if r.path.role == "calibration":
            status = "[yellow]calibration[/]"
        else:
            status = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]"
        table.add_row(
            f"{escape(r.path.name)} ({escape(r.path.bank)} on {escape(r.path.region)})",
            f"{r.model_bp:.0f}",
            f"{r.path.observed_bp:.0f}",
            f"{r.ratio:.2f}",
            status,
        )
    return table
