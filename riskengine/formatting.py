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

__all__ = ["display_unit", "format_amount", "format_estimate", "format_level", "risk_table"]

# What the risk table shows: loss and credit losses by region and in total, over the horizon.
TABLE_GROUPS = ("total", "region", "credit", "credit_total")


def display_unit(units: str) -> tuple[float, str]:
    """Scale and label to show amounts in: USD bn for a cube in USD million.

    Examples
    --------
    >>> display_unit("USD million")
    (0.001, 'USD bn')
    """
    if units.strip().lower() in {"usd million", "million usd", "usd m"}:
        return 1e-3, "USD bn"
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
    """The short risk table: EL and VaR of losses over the horizon by region and in total.

    Columns: output loss EL and VaR (± standard error) at each level, then the same for bank
    credit losses. Pass ``summary`` (a :func:`risk_summary` of the same cube with these levels)
    to reuse it instead of reading the cube again.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> table = risk_table(ds)
    >>> [c.header for c in table.columns]
    ['Region', 'Loss EL', 'Loss VaR 99 %', 'Credit EL', 'Credit VaR 99 %']
    """
    lv = check_levels(levels)
    if summary is None:  # the horizon's figures only: a run's store answers from its summaries
        summary = risk_summary(ds, lv, groups=TABLE_GROUPS, per_year=False)
    s = summary
    s = s.sel(period="horizon", level=lv)
    scale, unit = display_unit(s.attrs["units"])
    title = f"Losses over the horizon, {unit} ({s.attrs['paths']:,} paths"
    title += f", {s.attrs['scenario_name']})" if "scenario_name" in s.attrs else ")"
    # Names come from the user's files: escaped, so that rich does not read them as markup.
    table = Table(title=escape(title), caption="VaR ± standard error; weighted by path weights")
    table.add_column("Region")
    for what in ("Loss", "Credit"):
        table.add_column(f"{what} EL", justify="right")
        for a in lv:
            table.add_column(f"{what} VaR {format_level(a)}", justify="right")

    def cells(prefix: str, **where) -> list[str]:
        row = [format_amount(scale * float(s[f"{prefix}_EL"].sel(where)))]
        for a in lv:
            var = scale * float(s[f"{prefix}_VaR"].sel({**where, "level": a}))
            se = scale * float(s[f"{prefix}_VaR_se"].sel({**where, "level": a}))
            row.append(format_estimate(var, se))
        return row

    for r in s["region"].values:
        table.add_row(escape(str(r)), *cells("region", region=r), *cells("credit", region=r))
    table.add_row("Total", *cells("total"), *cells("credit_total"), style="bold")
    return table
