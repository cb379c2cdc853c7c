"""The report of a comparison (:mod:`riskengine.counterfactual`): what each variant changes, and
the channels' Shapley shares of the losses as a waterfall.

- ``differences``: a table of base - variant, EL with its paired and unpaired standard errors,
  VaR and ES at the main level with their paired (bootstrap) standard errors, for the total
  output loss and the total credit loss;
- ``shapley``: a table of each channel's Shapley value of EL, VaR and ES of the total output
  loss at the main level, and their shares;
- ``waterfall``: the same values as a waterfall from 0 to the base's figure (docs/report.md,
  "Comparison report").

This module imports numpy, xarray, matplotlib, rich and riskengine's formatting and report
modules.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from rich.table import Table

from riskengine.formatting import display_unit, format_amount, format_estimate, format_level
from riskengine.report import _figure_html, _head_html, _main_level, _png, _table_html, _write

__all__ = [
    "COMPARISON_FIGURES",
    "ComparisonReport",
    "difference_table",
    "shapley_table",
    "write_comparison_report",
]

COMPARISON_FIGURES = {"waterfall": "Shapley waterfall"}
_MEASURES = ("EL", "VaR", "ES")


@dataclass(frozen=True)
class ComparisonReport:
    """What :func:`write_comparison_report` wrote."""

    html: Path
    figures: dict[str, Path]
    tables: tuple[Table, ...]


def _value(ds: xr.Dataset, name: str, level: float, **where) -> xr.DataArray:
    v = ds[name].sel(**where)
    return v.sel(level=level) if "level" in v.dims else v


def _table(ds: xr.Dataset, title: str) -> tuple[Table, float, float]:
    """A table titled ``scenario: title`` (``{unit}``, ``{paths}`` and ``{shapley}`` filled
    in), the display scale, and the main level."""
    scale, unit = display_unit(ds.attrs["unit"])
    what = title.format(unit=unit, paths=ds.attrs["paths"], shapley=ds.attrs.get("shapley"))
    return Table(title=f"{ds.attrs['scenario_name']}: {what}"), scale, _main_level(ds.level.values)


def difference_table(ds: xr.Dataset) -> Table:
    """base - variant for every variant: the total output loss and total credit loss."""
    table, scale, level = _table(
        ds,
        "what each variant changes, base - variant ({unit}, {paths:,} paths on common "
        "random numbers)",
    )
    table.add_column("variant", justify="left")
    table.add_column("figure", justify="left")
    table.add_column("EL ± paired se", justify="right")
    table.add_column("unpaired se", justify="right")
    for m in ("VaR", "ES"):
        table.add_column(f"{m} {format_level(level)} ± se", justify="right")
    for v in ds.variant.values[1:]:
        for fig, label in (("total", "output loss"), ("credit", "credit loss")):
            row = [str(v), label]
            d = _value(ds, "difference_EL", level, variant=v, figure=fig)
            se = _value(ds, "difference_EL_se", level, variant=v, figure=fig)
            u = _value(ds, "difference_EL_se_unpaired", level, variant=v, figure=fig)
            row += [format_estimate(scale * float(d), scale * float(se)),
                    format_amount(scale * float(u))]  # fmt: skip
            for m in ("VaR", "ES"):
                d = _value(ds, f"difference_{m}", level, variant=v, figure=fig)
                se = _value(ds, f"difference_{m}_se", level, variant=v, figure=fig)
                row.append(format_estimate(scale * float(d), scale * float(se)))
            table.add_row(*row)
    return table


def shapley_table(ds: xr.Dataset) -> Table:
    """Each channel's Shapley value of the total output loss's EL, VaR and ES, with shares."""
    table, scale, level = _table(
        ds, "Shapley attribution of the total output loss to the channels ({unit}; {shapley})"
    )
    table.add_column("channel", justify="left")
    for m in _MEASURES:
        what = m if m == "EL" else f"{m} {format_level(level)}"
        table.add_column(what, justify="right")
        table.add_column("share", justify="right")
    values = {m: _value(ds, f"shapley_{m}", level, figure="total").values for m in _MEASURES}
    for i, c in enumerate(ds.channel.values):
        row = [str(c)]
        for m in _MEASURES:
            total = values[m].sum()
            share = values[m][i] / total if total else np.nan
            row += [format_amount(scale * values[m][i]), f"{100 * share:.1f} %"]
        table.add_row(*row)
    row = ["all (= base)"]
    for m in _MEASURES:
        row += [format_amount(scale * values[m].sum()), "100 %"]
    table.add_row(*row)
    return table


def fig_waterfall(ds: xr.Dataset) -> Figure:
    """The channels' Shapley values of EL, VaR and ES of the total output loss, each as a
    waterfall from 0 to the base's figure, channels in the order of the scenario."""
    scale, unit = display_unit(ds.attrs["unit"])
    level = _main_level(ds.level.values)
    channels = [str(c) for c in ds.channel.values]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, len(_MEASURES))
    for ax, m in zip(axes, _MEASURES, strict=True):
        values = scale * _value(ds, f"shapley_{m}", level, figure="total").values
        tops = np.cumsum(values)
        bottoms = tops - values
        x = np.arange(len(channels) + 1)
        colors = ["C3" if v >= 0 else "C2" for v in values]
        ax.bar(x[:-1], values, bottom=bottoms, color=colors, alpha=0.8)
        ax.bar(x[-1], tops[-1], color="0.4")
        for xi, (b, t) in enumerate(zip(bottoms, tops, strict=True)):
            ax.plot([xi + 0.4, xi + 0.6], [t, t], color="0.3", lw=0.8)
            ax.text(xi, max(b, t), format_amount(t - b), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [*channels, "all"], rotation=30, ha="right", fontsize=8)
        what = m if m == "EL" else f"{m} {format_level(level)}"
        ax.set_title(what, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel(f"total output loss over the horizon ({unit})")
    fig.suptitle(f"{ds.attrs['scenario_name']}: Shapley waterfall of the channels "
                 f"({ds.attrs['shapley']}, {ds.attrs['paths']:,} paths)")  # fmt: skip
    return fig


def write_comparison_report(ds: xr.Dataset, out_dir: Path) -> ComparisonReport:
    """Write ``index.html`` (and ``waterfall.png`` where the comparison has Shapley values)
    for comparison ``ds`` (:func:`riskengine.counterfactual.open_comparison`)."""
    tables: list[Table] = []
    if ds.sizes["variant"] > 1:
        tables.append(difference_table(ds))
    figures: dict[str, Figure] = {}
    if "channel" in ds.dims:
        tables.append(shapley_table(ds))
        figures["waterfall"] = fig_waterfall(ds)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.png" for name in figures}
    pngs = {name: _png(fig, paths[name]) for name, fig in figures.items()}
    title = f"riskengine comparison: {ds.attrs['scenario_name']}"
    meta = ", ".join(f"{k} {html.escape(str(ds.attrs[k]))}" for k in ("paths", "seed", "backend"))
    subtitle = f"{meta}; a channel switched off keeps its regimes and loses its exposure"
    parts = [_head_html(title, subtitle)]
    parts += [_figure_html(COMPARISON_FIGURES[name], name, png) for name, png in pngs.items()]
    for t in tables:
        parts.append(_table_html(t))
    parts += ["<p>Methods: see docs/model.md section 10 and docs/report.md of riskengine.</p>",
              "</body></html>"]  # fmt: skip
    page = out_dir / "index.html"
    _write(page, "\n".join(parts).encode("utf-8"))
    return ComparisonReport(page, paths, tuple(tables))
