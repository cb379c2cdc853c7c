"""The report of a study: which judgements drive the risk figures, and how far they move them.

Two figures and two tables (docs/report.md, "Study report"):

- ``indices``: a tornado of total Sobol indices (first-order inside, 95 % bootstrap bars) of the
  total output loss's EL and VaR, value added lost and credit losses, parameters sorted by their
  total index on the VaR: the one figure that answers "which judgements matter" (Morris designs
  show ``mu*`` instead);
- ``wheatsheaf``: the exceedance curve of the total loss at every parameter point, with the
  median and the 5-95 % band across points at each probability;
- the indices as a table, and each figure's spread across the points.

This module imports numpy, xarray, matplotlib, rich and riskengine's formatting, report and
studies modules.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from rich.table import Table

from riskengine.formatting import display_unit, format_amount, format_level
from riskengine.report import (
    _figure_html,
    _head_html,
    _html_table,
    _main_level,
    _png,
    _table_html,
    _write,
)
from riskengine.studies import study_indices

__all__ = ["STUDY_FIGURES", "StudyReport", "study_table", "write_study_report"]

STUDY_FIGURES = {
    "indices": "Which judgements matter: total sensitivity indices",
    "wheatsheaf": "Exceedance curves of the total loss, one per parameter point",
}
# The figures whose indices the report shows: (variable, label) at the main level for VaR.
_SHOWN = (
    ("total_VaR", "total output loss, VaR"),
    ("total_EL", "total output loss, EL"),
    ("va_total_VaR", "value added lost, VaR"),
    ("credit_total_VaR", "credit losses, VaR"),
)


@dataclass(frozen=True)
class StudyReport:
    """What :func:`write_study_report` wrote."""

    html: Path
    figures: dict[str, Path]
    table: Table
    indices: xr.Dataset


def _at_level(ix: xr.Dataset, name: str, level: float) -> xr.DataArray:
    v = ix[name]
    return v.sel(level=level) if "level" in v.dims else v


def _measure(ds: xr.Dataset) -> tuple[str, str]:
    """The index shown (total or mu*) and its half-width."""
    return ("ST", "ST_conf") if ds.attrs["design"] == "sobol" else ("mu_star", "mu_star_conf")


def study_table(ds: xr.Dataset, ix: xr.Dataset | None = None) -> Table:
    """The parameters by their index on the total loss's VaR at the main level, with the EL's
    (value ± 95 % bootstrap half-width)."""
    ix = study_indices(ds, [v for v, _ in _SHOWN]) if ix is None else ix
    level = _main_level(ds.level.values)
    stat, conf = _measure(ds)
    order = np.argsort(-_at_level(ix, f"total_VaR_{stat}", level).values, kind="stable")
    table = Table(
        title=f"{ds.attrs['scenario_name']}: which judgements matter ({ds.sizes['sample']} points "
        f"x {ds.attrs['paths']:,} paths, {ds.attrs['design']} design)"
    )
    table.add_column("parameter", justify="left")
    cells = [("total_VaR", stat, conf), ("total_EL", stat, conf)]
    if stat == "ST":
        cells = [("total_VaR", "ST", "ST_conf"), ("total_VaR", "S1", "S1_conf"),
                 ("total_EL", "ST", "ST_conf"), ("total_EL", "S1", "S1_conf")]  # fmt: skip
    for name, c, _ in cells:
        what = f"VaR {format_level(level)}" if "VaR" in name else "EL"
        table.add_column(f"{c} {what}", justify="right")
    for j in order:
        row = [str(ds.parameter.values[j])]
        for name, c, half in cells:
            v = _at_level(ix, f"{name}_{c}", level).values[j]
            h = _at_level(ix, f"{name}_{half}", level).values[j]
            row.append(f"{v:.2f} ± {h:.2f}" if stat == "ST" else
                       f"{format_amount(v)} ± {format_amount(h)}")  # fmt: skip
        table.add_row(*row)
    return table


def fig_indices(ds: xr.Dataset, ix: xr.Dataset) -> Figure:
    """Tornado of the indices of :data:`_SHOWN`, parameters sorted by the VaR's total index."""
    level = _main_level(ds.level.values)
    stat, conf = _measure(ds)
    names = ds.parameter.values
    order = np.argsort(_at_level(ix, f"total_VaR_{stat}", level).values, kind="stable")
    fig = Figure(figsize=(12, 1.2 + 0.45 * len(names)), layout="constrained")
    axes = fig.subplots(1, len(_SHOWN), sharey=True)
    y = np.arange(len(names))
    for ax, (name, label) in zip(axes, _SHOWN, strict=True):
        total = _at_level(ix, f"{name}_{stat}", level).values[order]
        half = _at_level(ix, f"{name}_{conf}", level).values[order]
        ax.barh(y, total, xerr=half, color="C0", alpha=0.5, label=stat, capsize=2)
        if stat == "ST":
            first = _at_level(ix, f"{name}_S1", level).values[order]
            ax.barh(y, first, height=0.4, color="C0", label="S1")
        what = label + (f" {format_level(level)}" if "VaR" in name else "")
        ax.set_title(what, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        if stat == "ST":
            ax.set_xlim(0, 1.05)
    axes[0].set_yticks(y, [str(n) for n in names[order]], fontsize=8)
    axes[0].legend(fontsize=8, loc="lower right")
    unit = "share of the variance across points" if stat == "ST" else "mu* (mean |effect|)"
    fig.suptitle(f"{STUDY_FIGURES['indices']} ({unit}; bars: 95 % bootstrap half-width)")
    return fig


def fig_wheatsheaf(ds: xr.Dataset) -> Figure:
    """Every point's exceedance curve of the total loss, the median and 5-95 % band across them."""
    scale, unit = display_unit(ds.attrs["units"])
    p = ds.probability.values
    curves = scale * ds.total_curve.values
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    for c in curves:
        ax.plot(c, p, color="0.6", lw=0.4, alpha=0.35)
    lo, mid, hi = np.quantile(curves, [0.05, 0.5, 0.95], axis=0)
    ax.fill_betweenx(p, lo, hi, color="C0", alpha=0.25, label="5-95 % across points")
    ax.plot(mid, p, color="C0", lw=2, label="median across points")
    ax.set_yscale("log")
    ax.set_xlabel(f"total output loss over the horizon x ({unit})")
    ax.set_ylabel("probability that the loss exceeds x")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{STUDY_FIGURES['wheatsheaf']} ({ds.sizes['sample']} points)")
    return fig


def _spread_html(ds: xr.Dataset) -> str:
    """Median and 5-95 % range across points of each headline figure."""
    scale, unit = display_unit(ds.attrs["units"])
    level = _main_level(ds.level.values)
    rows = []
    for name, label in sorted(_SHOWN, key=lambda s: s[0] != "total_EL"):
        v = ds[name].sel(level=level) if "level" in ds[name].dims else ds[name]
        lo, mid, hi = scale * np.quantile(v.values, [0.05, 0.5, 0.95])
        what = label + (f" {format_level(level)}" if "VaR" in name else "")
        rows.append([what, format_amount(mid), format_amount(lo), format_amount(hi)])
    header = ["figure", f"median ({unit})", "5 % of points", "95 % of points"]
    return _html_table(header, rows)


def write_study_report(ds: xr.Dataset, out_dir: Path) -> StudyReport:
    """Write ``index.html`` and the PNGs of :data:`STUDY_FIGURES` for study ``ds``
    (:func:`riskengine.open_study`)."""
    ix = study_indices(ds, [v for v, _ in _SHOWN])
    table = study_table(ds, ix)
    figures = {"indices": fig_indices(ds, ix), "wheatsheaf": fig_wheatsheaf(ds)}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.png" for name in figures}
    pngs = {name: _png(fig, paths[name]) for name, fig in figures.items()}
    title = f"riskengine study: {ds.attrs['scenario_name']}"
    shown = ("design", "samples", "paths", "seed", "exposure", "backend")
    meta = ", ".join(f"{k} {html.escape(str(ds.attrs[k]))}" for k in shown)
    parts = [_head_html(title, f"{meta}; {ds.sizes['sample']} points")]
    parts += [_figure_html(STUDY_FIGURES[name], name, png) for name, png in pngs.items()]
    parts += ["<h2>Indices</h2>", _table_html(table),
              "<h2>How far the judgements move the figures</h2>", _spread_html(ds),
              "<p>Methods: see docs/model.md section 9 and docs/report.md of riskengine.</p>",
              "</body></html>"]  # fmt: skip
    page = out_dir / "index.html"
    _write(page, "\n".join(parts).encode("utf-8"))
    return StudyReport(page, paths, table, ix)
