"""The report of a run: PNG figures and one self-contained HTML page (figures embedded).

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly (the Agg canvas, no
pyplot, no display). Every number comes from one call of :func:`riskengine.risk.analyse`, which
streams the cube in a few passes over its chunks of paths, in bounded memory.

This module imports numpy, xarray, matplotlib, rich and riskengine's formatting and risk modules.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter
from rich.console import Console
from rich.table import Table

from riskengine.formatting import (
    bank_table,
    display_unit,
    format_amount,
    format_estimate,
    format_level,
    risk_table,
)
from riskengine.risk import analyse, check_levels, credit_by_segment

__all__ = ["FIGURES", "Report", "write_report"]

FIGURES = {
    "exceedance": "Exceedance curve of the loss over the horizon",
    "fan": "Cumulative loss over time by region",
    "heatmap": "Expected shortfall by sector and region",
    "activity": "Channel activity over time",
    "euler": "Contributions to the expected shortfall of the total loss",
}


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote, and the tables it printed into the page."""

    html: Path
    figures: dict[str, Path]
    table: Table
    summary: xr.Dataset
    banks: Table


def _main_level(levels: np.ndarray) -> float:
    """The level the single-level figures show: 99 % where asked for, else the highest."""
    return 0.99 if np.isclose(levels, 0.99).any() else float(levels[-1])


_THOUSANDS = StrMethodFormatter("{x:,.0f}")


def fig_exceedance(curves: xr.Dataset, summary: xr.Dataset) -> Figure:
    """Total loss exceedance curve with its 95 % band and VaR marks; regions beside it."""
    scale, unit = display_unit(curves.attrs["units"])
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax_total, ax_regions = fig.subplots(1, 2, sharey=True)
    x = scale * curves.total_threshold.values
    ax_total.fill_between(
        x, curves.total_lower, curves.total_upper, step="post", alpha=0.3, label="95 % band"
    )
    ax_total.step(x, curves.total_probability, where="post", color="C0", label="P(loss > x)")
    for level in summary.level.values:
        var = scale * float(summary.total_VaR.sel(period="horizon", level=level))
        ax_total.axvline(var, color="0.4", lw=0.8, ls="--")
        ax_total.annotate(
            f"VaR {format_level(level)}",
            (var, 1 - level),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=8,
        )
    ax_total.set_title("Total (all regions)")
    for i, region in enumerate(curves.region.values):
        c = curves.sel(region=region)
        ax_regions.step(
            scale * c.region_threshold,
            c.region_probability,
            where="post",
            color=f"C{i}",
            label=str(region),
        )
    ax_regions.set_title("By region")
    for ax in (ax_total, ax_regions):
        ax.set_yscale("log")
        ax.set_xlabel(f"loss over the horizon x ({unit})")
        ax.xaxis.set_major_formatter(_THOUSANDS)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_total.set_ylabel("probability that the loss exceeds x")
    fig.suptitle(FIGURES["exceedance"])
    return fig


def fig_fan(quantiles: xr.DataArray) -> Figure:
    """Median and 5-95 % band of each region's cumulative loss, one panel per region."""
    scale, unit = display_unit(quantiles.attrs["units"])
    regions = quantiles.region.values
    ncols = min(4, regions.size)
    nrows = -(-regions.size // ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.8 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    lo, mid, hi = (quantiles.isel(quantile=k) for k in (0, quantiles.sizes["quantile"] // 2, -1))
    # a cumulative loss belongs to its period's end; it is 0 at the start of the horizon
    t = np.append(quantiles.time.values[:1], quantiles.period_end.values)

    def from_zero(q: xr.DataArray, region: str) -> np.ndarray:
        return scale * np.append(0.0, q.sel(region=region).values)

    band = f"{format_level(float(lo['quantile']))}-{format_level(float(hi['quantile']))}"
    for ax, region in zip(axes, regions, strict=False):
        ax.fill_between(t, from_zero(lo, region), from_zero(hi, region), alpha=0.3, label=band)
        ax.plot(t, from_zero(mid, region), label="median")
        ax.set_title(str(region))
        ax.yaxis.set_major_formatter(_THOUSANDS)
        ax.grid(True, alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for ax in axes[regions.size :]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel(f"cumulative loss ({unit})")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{FIGURES['fan']} (weighted quantiles over paths)")
    return fig


def fig_heatmap(summary: xr.Dataset, level: float) -> Figure:
    """ES of each node's loss over the horizon (standalone, not additive)."""
    scale, unit = display_unit(summary.attrs["units"])
    es = scale * summary.node_ES.sel(level=level).transpose("sector", "region")
    fig = Figure(figsize=(8, 7), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(es.values, cmap="Reds", aspect="auto")
    ax.set_xticks(range(es.sizes["region"]), es.region.values, rotation=30)
    ax.set_yticks(range(es.sizes["sector"]), es.sector.values)
    top = float(es.max())
    for (i, j), v in np.ndenumerate(es.values):
        ax.text(
            j,
            i,
            f"{v:,.0f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > 0.6 * top else "black",
        )
    pct = format_level(level)
    fig.colorbar(image, ax=ax, label=f"ES {pct} of the node's loss ({unit})", format=_THOUSANDS)
    ax.set_title(
        f"{FIGURES['heatmap']}: ES {pct} of each node's loss over the horizon ({unit})\n"
        "each node on its own: the cells do not add up to the total's ES",
        fontsize=10,
    )
    return fig


def fig_activity(p_active_time: xr.DataArray, resolution: str) -> Figure:
    """Weighted probability that each channel is on, period by period (a step per period)."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    t = np.append(p_active_time.time.values, p_active_time.period_end.values[-1:])
    for channel in p_active_time.channel.values:
        p = p_active_time.sel(channel=channel).values
        ax.step(t, np.append(p, p[-1:]), where="post", label=str(channel))
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability the channel is on")
    ax.grid(True, alpha=0.3)
    ax.legend()
    what = "month by month" if resolution == "month" else f"on at some month of each {resolution}"
    ax.set_title(f"{FIGURES['activity']} ({what})")
    return fig


def fig_euler(attrib: xr.Dataset, level: float) -> Figure:
    """Euler contributions of regions and sectors to the ES of the total loss (they add up)."""
    scale, unit = display_unit(attrib.attrs["units"])
    a = attrib.sel(level=level)
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, dim in zip(fig.subplots(1, 2), ("region", "sector"), strict=True):
        values = scale * a[f"euler_{dim}"]
        ax.bar([str(v) for v in values[dim].values], values.values, color="C3")
        ax.set_title(f"by {dim}")
        ax.set_ylabel(f"contribution ({unit})")
        ax.yaxis.set_major_formatter(_THOUSANDS)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    total = scale * float(a.ES)
    fig.suptitle(
        f"{FIGURES['euler']}: ES {format_level(level)} = {total:,.0f} {unit} "
        "(the bars of each panel add up to it)"
    )
    return fig


def _write(path: Path, data: bytes) -> None:
    """Write ``path`` by a rename of a new file: a symlink already there is replaced, never
    followed (a dangling link in ``--out`` must not write outside it)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _png(fig: Figure, path: Path) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _write(path, buffer.getvalue())
    return buffer.getvalue()


def _head_html(title: str, subtitle: str) -> str:
    """A report page's opening: its title, style and a line under the heading (HTML)."""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"\n<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{subtitle}</p>"
    )


def _figure_html(heading: str, name: str, png: bytes) -> str:
    """A figure embedded in a report page under its heading."""
    data = base64.b64encode(png).decode("ascii")
    return f"<h2>{heading}</h2>\n<img src='data:image/png;base64,{data}' alt='{name}.png'>"


def _table_html(table: Table) -> str:
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(table)
    return console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _gdp_years(summary: xr.Dataset, years: float) -> xr.DataArray:
    """Each region's GDP over ``years`` years, in % units: a value lost / this = % of GDP a
    year."""
    return summary["gdp"] * years / 100


def _tail_html(summary: xr.Dataset) -> str:
    """VaR and ES with standard errors at every level, by region and in total (horizon): value
    added lost in % of GDP a year first, then gross output and credit losses."""
    scale, unit = display_unit(summary.attrs["units"])
    s = summary.sel(period="horizon")
    gdp = _gdp_years(s, s.attrs["horizon_months"] / 12)
    levels = [format_level(a) for a in s.level.values]
    header = ["", *(f"{m} {pct}" for pct in levels for m in ("VaR", "ES"))]

    def row(name: str, prefix: str, per: float, **where) -> list[str]:
        return [name, *_tail_cells(s, prefix, per, **where)]

    regions = s.region.values
    va = [row(str(r), "va_region", float(gdp.sel(region=r)), region=r) for r in regions]
    va.append(row("World", "va_total", float(gdp.sum())))
    output = [row(str(r), "region", 1 / scale, region=r) for r in regions]
    output.append(row("Total", "total", 1 / scale))
    return (
        "<h3>Value added lost, % of GDP a year</h3>"
        + _html_table(header, va)
        + f"<h3>Gross output lost, {html.escape(unit)}</h3>"
        + _html_table(header, output)
    )


def _tail_cells(s: xr.Dataset, prefix: str, per: float, **where) -> list[str]:
    """VaR and ES ± standard error of ``prefix`` at every level of ``s``, divided by ``per``."""
    cells = []
    for a in s.level.values:
        for m in ("VaR", "ES"):
            v, se = (
                float(s[f"{prefix}_{m}{k}"].sel({**where, "level": a})) / per for k in ("", "_se")
            )
            cells.append(format_estimate(v, se))
    return cells


def _banks_html(summary: xr.Dataset, segments: xr.Dataset) -> str:
    """Each bank's credit losses (EL, VaR and ES ± standard error at every level) and, where
    the cube has capital, its CET1 depletion in bp of risk-weighted assets; then the expected
    credit loss by bank and segment."""
    scale, unit = display_unit(summary.attrs["units"])
    s = summary.sel(period="horizon")
    levels = [format_level(a) for a in s.level.values]
    header = ["", "EL", *(f"{m} {pct}" for pct in levels for m in ("VaR", "ES"))]

    def row(name: str, prefix: str, per: float, **where) -> list[str]:
        el = (float(s[f"{prefix}_EL{k}"].sel(where)) / per for k in ("", "_se"))
        return [name, format_estimate(*el), *_tail_cells(s, prefix, per, **where)]

    banks = [str(b) for b in s.bank.values]
    credit = [row(b, "credit", 1 / scale, bank=b) for b in banks]
    credit.append(row("All banks", "credit_total", 1 / scale))
    parts = [f"<h3>Credit losses, {html.escape(unit)}</h3>", _html_table(header, credit)]
    if "cet1_depletion_EL" in s and np.isfinite(s["cet1_ratio"].values).any():
        with_capital = [b for b in banks if np.isfinite(float(s["cet1_ratio"].sel(bank=b)))]
        depletion = [row(b, "cet1_depletion", 1.0, bank=b) for b in with_capital]
        start = ", ".join(f"{b} {float(s['cet1_ratio'].sel(bank=b)):.2f} %" for b in with_capital)
        parts += [
            "<h3>CET1 depletion by credit losses, bp of risk-weighted assets (before tax)</h3>",
            _html_table(header, depletion),
            f"<p>CET1 ratio at the start: {html.escape(start)}.</p>",
        ]
    seg_names = [str(g) for g in segments.segment.values]
    used = [g for g in seg_names if float(np.abs(segments.EL.sel(segment=g)).sum()) > 0]
    rows = [
        [b, *(format_amount(float(segments.EL.sel(bank=b, segment=g)) * scale) for g in used)]
        for b in banks
    ]
    parts += [
        f"<h3>Expected credit loss by segment, {html.escape(unit)}</h3>",
        _html_table(["", *used], rows),
    ]
    return "".join(parts)


def _yearly_html(summary: xr.Dataset, level: float) -> str:
    """EL, VaR and ES of the world's value added lost (% of world GDP) and of the total output
    lost in each period (the horizon, then each year)."""
    scale, unit = display_unit(summary.attrs["units"])
    s = summary.sel(level=level)
    pct = format_level(level)
    header = ["period"]
    header += [f"value added {m} (% of GDP a year)" for m in ("EL", f"VaR {pct}", f"ES {pct}")]
    header += [f"output {m} ({unit})" for m in ("EL", f"VaR {pct}", f"ES {pct}")]
    months = s.attrs["horizon_months"]
    rows = []
    for period in s.period.values:
        p = s.sel(period=period)
        years = months / 12 if period == "horizon" else min(12, months - 12 * _year(period)) / 12
        per = float(_gdp_years(s, years).sum())
        cells = [str(period)]
        for prefix, div in (("va_total", per), ("total", 1 / scale)):
            for m in ("EL", "VaR", "ES"):
                value, se = float(p[f"{prefix}_{m}"]) / div, float(p[f"{prefix}_{m}_se"]) / div
                cells.append(format_estimate(value, se))
        rows.append(cells)
    return _html_table(header, rows)


def _year(period: str) -> int:
    """Years before ``"year k"``: k - 1."""
    return int(str(period).split()[-1]) - 1


def _channel_html(attrib: xr.Dataset, level: float) -> str:
    scale, unit = display_unit(attrib.attrs["units"])
    a = attrib.sel(level=level)
    header = [
        "channel",
        "P(active)",
        "P(active | tail)",
        f"EL if active ({unit})",
        f"EL if never active ({unit})",
        "full-severity months",
        "full-severity months | tail",
    ]
    rows = [
        [
            str(c),
            f"{float(a.p_active.sel(channel=c)):.3f}",
            f"{float(a.p_active_tail.sel(channel=c)):.3f}",
            format_amount(scale * float(a.EL_active.sel(channel=c))),
            format_amount(scale * float(a.EL_inactive.sel(channel=c))),
            f"{float(a.severity_months.sel(channel=c)):.1f}",
            f"{float(a.severity_months_tail.sel(channel=c)):.1f}",
        ]
        for c in a.channel.values
    ]
    return _html_table(header, rows)


_STYLE = (
    "body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}"
    "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    "padding:3px 8px;text-align:right}pre{font-size:13px}"
)


def _page(ds: xr.Dataset, table: Table, summary: xr.Dataset, attrib: xr.Dataset, pngs: dict) -> str:
    level = _main_level(summary.level.values)
    title = f"riskengine report: {ds.attrs.get('scenario_name', 'run')}"
    meta = ", ".join(
        f"{k} {html.escape(str(ds.attrs[k]))}"
        for k in ("paths", "seed", "resolution", "backend", "riskengine_version", "created")
        if k in ds.attrs
    )
    if ds.attrs.get("tilt"):
        # A tilted run: every figure is weighted by the paths' likelihood ratios (model.md 8).
        from riskengine.tilt import Tilt

        size = Tilt.from_json(ds.attrs["tilt"]).size
        w = ds.weight  # lazy for a store: summed chunk by chunk, never held whole
        n_eff = float((w.sum() ** 2 / (w**2).sum()).values)
        meta += (
            f"; importance sampling: tilt |mu|^2 = {size:.3g}, every figure weighted by the "
            f"paths' likelihood ratios (Kish's effective sample size {n_eff:,.0f})"
        )
    parts = [
        _head_html(title, meta),
        "<h2>Risk table</h2>",
        _table_html(table),
        "<h2>VaR and ES at every level (± standard error)</h2>",
        _tail_html(summary),
        f"<p>{html.escape(summary.attrs['standard_errors'])}</p>",
        "<h2>World value added and total output lost, over the horizon and in each year</h2>",
        _yearly_html(summary, level),
        f"<p>Per-year figures: {html.escape(summary.attrs['per_year'])}.</p>",
        "<h2>Banks</h2>",
        _banks_html(summary, credit_by_segment(ds)),
    ]
    parts += [_figure_html(FIGURES[name], name, png) for name, png in pngs.items()]
    parts.append(f"<h2>Channels in the tail (ES {format_level(level)} of the total loss)</h2>")
    parts.append(_channel_html(attrib, level))
    parts.append("<p>Methods: see docs/report.md of riskengine.</p></body></html>")
    return "\n".join(parts)


def write_report(
    ds: xr.Dataset, out_dir: Path, levels: Sequence[float] = (0.95, 0.99, 0.995)
) -> Report:
    """Write ``index.html`` and one PNG per figure of :data:`FIGURES` into ``out_dir``.

    The cube is streamed in one set of passes (:func:`riskengine.risk.analyse`), whatever its
    number of paths; the page embeds the PNGs (base64), so it opens offline on its own.

    Examples
    --------
    >>> import tempfile
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=100, seed=1, resolution="year")
    >>> report = write_report(ds, Path(tempfile.mkdtemp()))
    >>> sorted(report.figures), report.html.name
    (['activity', 'euler', 'exceedance', 'fan', 'heatmap'], 'index.html')
    """
    lv = check_levels(levels)
    level = _main_level(lv)
    # Every figure's numbers in one set of passes over the cube (riskengine.analysis).
    found = analyse(
        ds,
        levels=lv,
        exceedance_points=100,
        fan_quantiles=(0.05, 0.5, 0.95),
        attribution_levels=lv,
        activity=True,
    )
    summary, attrib = found["summary"], found["attribution"]
    table = risk_table(ds, [level], summary=summary)
    banks = bank_table(ds, [level], summary=summary)
    figures = {
        "exceedance": fig_exceedance(found["exceedance"], summary),
        "fan": fig_fan(found["fan"]),
        "heatmap": fig_heatmap(summary, level),
        "activity": fig_activity(found["activity"], ds.attrs["resolution"]),
        "euler": fig_euler(attrib, level),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.png" for name in figures}
    pngs = {name: _png(fig, paths[name]) for name, fig in figures.items()}
    page = out_dir / "index.html"
    _write(page, _page(ds, table, summary, attrib, pngs).encode("utf-8"))
    return Report(page, paths, table, summary, banks)
