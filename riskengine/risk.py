"""Risk measures of a cube: EL, VaR, ES with standard errors, exceedance curves, attribution.

Every measure is weighted by the cube's ``weight`` (importance sampling); the statistics and
their standard errors are defined in :mod:`riskengine.weighted`.

Lazy cubes (dask-backed, e.g. from ``xarray.open_zarr``) are reduced in one pass: the time
dimension is summed chunk by chunk into per-path totals by :func:`path_totals`, which stays lazy;
only those totals are loaded (8 bytes x paths x (84 nodes + 5 years x (7 + 12 + 7) regions,
sectors and credit + channels), about 1.8 GB for a million paths). Quantiles need every path of a
column at once, so they are computed in memory from the totals.

Presentation (tables, number formats) is in :mod:`riskengine.formatting`: this module is
mathematics only.

This module imports numpy, xarray and riskengine's errors, schema and weighted modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from riskengine.errors import CubeError
from riskengine.schema import validate
from riskengine.weighted import exceedance, mean_se, tail_stats, tail_weights, weighted_quantile

__all__ = [
    "attribution",
    "check_levels",
    "cumulative_loss_quantiles",
    "exceedance_curves",
    "path_totals",
    "risk_summary",
]

_TOTALS_KIND = "riskengine path totals"
_PER_YEAR_RESOLUTIONS = frozenset({"month", "quarter", "year"})

SE_METHOD = (
    "EL and ES: delta-method standard error of a self-normalised weighted mean (ES through its "
    "influence VaR + (x - VaR)+/(1 - alpha)); VaR: Woodruff 95 % interval of the weighted "
    "quantile, se = interval width / (2 x 1.96). Paths independent; see riskengine.weighted."
)


def check_levels(levels: Sequence[float]) -> np.ndarray:
    """Levels as a sorted float array; each must lie strictly between 0 and 1.

    Examples
    --------
    >>> check_levels([0.99, 0.95]).tolist()
    [0.95, 0.99]
    """
    arr = np.unique(np.asarray(levels, dtype=np.float64))
    if arr.size == 0 or not np.all((arr > 0) & (arr < 1)):
        raise ValueError(f"levels must be numbers strictly between 0 and 1, got {list(levels)}")
    return arr


def _year_index(ds: xr.Dataset) -> np.ndarray | None:
    """Year of the horizon (0-based, from the scenario's start) of each period, or None.

    Years exist at month, quarter and year resolution; ``horizon`` has one period only.
    """
    if ds.attrs["resolution"] not in _PER_YEAR_RESOLUTIONS:
        return None
    months = ds["time"].values.astype("datetime64[M]").astype(np.int64)
    return (months - months[0]) // 12


def _period_ends(ds: xr.Dataset) -> np.ndarray:
    """The first day after each period: the next period's start, or the horizon's end."""
    starts = ds["time"].values.astype("datetime64[M]")
    end = starts[0] + np.timedelta64(int(ds.attrs["horizon_months"]), "M")
    return np.append(starts[1:], end).astype("datetime64[ns]")


def _sum64(da: xr.DataArray, dim: str) -> xr.DataArray:
    """Sum in float64 without a float64 copy of the cube; a NaN (a corrupt cube) stays NaN."""
    return da.sum(dim, dtype=np.float64, skipna=False)


def path_totals(ds: xr.Dataset, timeline: bool = False) -> xr.Dataset:
    """Per-path totals over time of a cube, lazy if the cube is dask-backed.

    Variables (float64 sums of the float32 cube):

    - ``loss`` (path, sector, region) and ``credit_loss`` (path, region): over the horizon;
    - ``loss_region_year``, ``loss_sector_year``, ``credit_loss_year`` with a ``year`` dim
      (year 1 = the first 12 months from the scenario's start), where the resolution has years
      (not ``horizon``);
    - ``severity_months`` (path, channel): the sum over months of the channel's effective
      severity e (months at full severity; > 0 exactly when the channel bit at some time);
    - ``p_active_time`` (time, channel): weighted probability that the channel is on (at
      resolutions coarser than a month: on at some month of the period);
    - ``weight``;
    - a coordinate ``period_end`` (time): the first day after each period;
    - with ``timeline``, ``cumulative_loss_region`` (path, time, region; float32, 4 bytes x
      paths x periods x regions), for fan charts.

    Nothing is computed here: call ``.compute()`` (one pass over the cube) or pass the result to
    the functions of this module.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=3, seed=1)
    >>> sorted(path_totals(ds).data_vars)  # doctest: +NORMALIZE_WHITESPACE
    ['credit_loss', 'credit_loss_year', 'loss', 'loss_region_year', 'loss_sector_year',
     'p_active_time', 'severity_months', 'weight']
    """
    validate(ds)
    loss, credit = ds["loss"], ds["credit_loss"]
    weight = ds["weight"].astype(np.float64)
    on = ds["severity"] > 0
    out = {
        "loss": _sum64(loss, "time"),
        "credit_loss": _sum64(credit, "time"),
        "severity_months": _sum64(ds["severity"], "time"),
        "p_active_time": weight.dot(on, dim="path") / weight.sum(),
        "weight": weight,
    }
    if timeline:
        cumulative = _sum64(loss, "sector").cumsum("time").astype(np.float32)
        out["cumulative_loss_region"] = cumulative.transpose("path", "time", "region")
    year = _year_index(ds)
    if year is not None:
        by_year = {"year": ("time", year + 1)}
        for name, values in (
            ("loss_region_year", _sum64(loss, "sector")),
            ("loss_sector_year", _sum64(loss, "region")),
            ("credit_loss_year", credit.astype(np.float64)),
        ):
            out[name] = values.assign_coords(by_year).groupby("year").sum(skipna=False)
    attrs = {
        "kind": _TOTALS_KIND,
        "units": ds["loss"].attrs.get("units", ""),
        **{k: ds.attrs[k] for k in ("resolution", "scenario_name", "paths") if k in ds.attrs},
    }
    return xr.Dataset(out, attrs=attrs).assign_coords(period_end=("time", _period_ends(ds)))


def _loaded_totals(ds: xr.Dataset) -> xr.Dataset:
    """Computed path totals of a cube, or the totals themselves if already given."""
    t = ds.compute() if ds.attrs.get("kind") == _TOTALS_KIND else path_totals(ds).compute()
    for name in ("loss", "credit_loss", "weight"):
        if not np.isfinite(t[name].values).all():
            raise CubeError(f"{name!r} holds NaN or infinite values: the run's store is corrupt")
    return t


def _measures(values: xr.DataArray, weight: np.ndarray, levels: np.ndarray) -> xr.Dataset:
    """EL, VaR, ES and their standard errors of each column of ``values`` (path, ...)."""
    other = [d for d in values.dims if d != "path"]
    shape = tuple(values.sizes[d] for d in other)
    x = values.transpose("path", *other).values.reshape(values.sizes["path"], -1)
    names = ("VaR", "VaR_se", "VaR_lower", "VaR_upper", "ES", "ES_se")
    el = np.empty((2, x.shape[1]))
    tail = np.empty((len(names), x.shape[1], levels.size))
    for j in range(x.shape[1]):
        el[:, j] = mean_se(x[:, j], weight)
        t = tail_stats(x[:, j], weight, levels)
        tail[:, j] = [t.var, t.var_se, t.var_lower, t.var_upper, t.es, t.es_se]
    variables = {"EL": (other, el[0].reshape(shape)), "EL_se": (other, el[1].reshape(shape))}
    for name, arr in zip(names, tail, strict=True):
        variables[name] = ([*other, "level"], arr.reshape(*shape, levels.size))
    coords = {d: values[d].values for d in other if d in values.coords}
    return xr.Dataset(variables, coords={**coords, "level": levels})


def _by_period(horizon: xr.DataArray, per_year: xr.DataArray | None, w, levels) -> xr.Dataset:
    """Measures over the horizon and, where given, per year, along a ``period`` dim."""
    parts = [_measures(horizon, w, levels).expand_dims(period=["horizon"])]
    if per_year is not None:
        yearly = _measures(per_year, w, levels)
        labels = [f"year {int(y)}" for y in yearly["year"].values]
        parts.append(yearly.drop_vars("year").rename(year="period").assign_coords(period=labels))
    return xr.concat(parts, dim="period")


def _with_prefix(ds: xr.Dataset, prefix: str, what: str, units: str) -> dict[str, xr.DataArray]:
    out = {}
    for name, da in ds.data_vars.items():
        da.attrs = {"long_name": f"{name} of {what}", "units": units}
        if name.endswith("_se") or name.startswith("VaR_"):
            da.attrs["method"] = SE_METHOD
        out[f"{prefix}_{name}"] = da
    return out


def _sum_or_none(da: xr.DataArray | None, dim: str) -> xr.DataArray | None:
    return None if da is None else da.sum(dim)


def risk_summary(ds: xr.Dataset, levels: Sequence[float] = (0.95, 0.99, 0.995)) -> xr.Dataset:
    """EL, VaR and ES (with standard errors) of losses by node, sector, region and in total.

    Parameters
    ----------
    ds
        A cube (in memory or dask-backed) or its :func:`path_totals`. A lazy cube is read once.
    levels
        Confidence levels of VaR and ES, each strictly between 0 and 1.

    Returns
    -------
    xarray.Dataset
        For each group ``total`` (all nodes), ``region``, ``sector``, ``credit`` (bank credit
        losses by region) and ``credit_total``: ``{group}_EL``, ``_EL_se``, ``_VaR``, ``_VaR_se``,
        ``_VaR_lower``, ``_VaR_upper`` (95 % interval), ``_ES``, ``_ES_se``, with dims
        ``period`` (``"horizon"`` then ``"year 1"``, ... where the cube's resolution has years:
        not for ``resolution="horizon"``), the group's dim and ``level``. ``node_*`` (sector,
        region, level) over the horizon only. Amounts are in the cube's unit; the definitions
        (VaR: smallest loss whose weighted CDF reaches the level; ES: Acerbi-Tasche) and the
        standard-error methods are in :mod:`riskengine.weighted` and the ``method`` attrs.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> s = risk_summary(ds, levels=[0.9])
    >>> bool((s.total_ES >= s.total_VaR).all()), s.total_VaR.dims
    (True, ('period', 'level'))
    """
    lv = check_levels(levels)
    t = _loaded_totals(ds)
    w = t["weight"].values
    units = t.attrs["units"]
    node = t["loss"]
    y_region, y_sector, y_credit = (
        t.get(k) for k in ("loss_region_year", "loss_sector_year", "credit_loss_year")
    )
    groups = {
        "total": (node.sum(("sector", "region")), _sum_or_none(y_region, "region")),
        "region": (node.sum("sector"), y_region),
        "sector": (node.sum("region"), y_sector),
        "credit": (t["credit_loss"], y_credit),
        "credit_total": (t["credit_loss"].sum("region"), _sum_or_none(y_credit, "region")),
    }
    what = {
        "total": "total output loss",
        "region": "output loss of the region",
        "sector": "output loss of the sector",
        "credit": "bank credit losses of the region",
        "credit_total": "bank credit losses, all regions",
    }
    out: dict[str, xr.DataArray] = {}
    for group, (horizon, per_year) in groups.items():
        measures = _by_period(horizon, per_year, w, lv)
        out.update(_with_prefix(measures, group, what[group], units))
    out.update(_with_prefix(_measures(node, w, lv), "node", "output loss of the node", units))
    attrs = {
        "units": units,
        "paths": int(w.size),
        "per_year": "no: one period (resolution horizon)" if y_region is None else "yes",
        "var_definition": "smallest loss x with weighted P(L <= x) >= level",
        "es_definition": "Acerbi-Tasche: mean of the quantile function over [level, 1]",
        "standard_errors": SE_METHOD,
        **{k: t.attrs[k] for k in ("resolution", "scenario_name") if k in t.attrs},
    }
    return xr.Dataset(out, attrs=attrs)


def attribution(ds: xr.Dataset, levels: Sequence[float] = (0.99,)) -> xr.Dataset:
    """Which regions, sectors and channels make the tail of the total loss over the horizon.

    Returns
    -------
    xarray.Dataset
        ``ES`` (level): ES of total loss. ``euler_region`` (region, level) and ``euler_sector``
        (sector, level): Euler contributions to that ES, ``E[L_part | tail]`` with the tail
        weights of :func:`riskengine.weighted.tail_weights`; each sums to ``ES`` exactly.
        ``p_active`` (channel): probability the channel is on at some time of a path;
        ``p_active_tail`` (channel, level): the same probability in the ES tail;
        ``EL_active``, ``EL_inactive`` (channel): expected total loss given the channel was
        (was never) active; ``severity_months`` (channel) and ``severity_months_tail`` (channel,
        level): expected months at full severity (sum over months of e) over all paths and in
        the ES tail: their ratio says how much more of the channel the tail holds.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> a = attribution(ds, levels=[0.9])
    >>> bool(np.allclose(a.euler_region.sum("region"), a.ES))
    True
    """
    lv = check_levels(levels)
    t = _loaded_totals(ds)
    w = t["weight"].values
    node = t["loss"]
    total = node.sum(("sector", "region")).values
    region = node.sum("sector").transpose("path", "region").values
    sector = node.sum("region").transpose("path", "sector").values
    severity = t["severity_months"].transpose("path", "channel").values
    active = (severity > 0).astype(np.float64)
    tau = np.stack([tail_weights(total, w, a)[1] for a in lv])  # (level, path)
    es = tau @ total
    w_active = w @ active
    w_inactive = w.sum() - w_active
    with np.errstate(invalid="ignore", divide="ignore"):  # a channel never (always) active: NaN
        el_active = (w * total) @ active / w_active
        el_inactive = (w * total) @ (1.0 - active) / w_inactive
    return xr.Dataset(
        {
            "ES": ("level", es),
            "euler_region": (("region", "level"), (tau @ region).T),
            "euler_sector": (("sector", "level"), (tau @ sector).T),
            "p_active": ("channel", w_active / w.sum()),
            "p_active_tail": (("channel", "level"), (tau @ active).T),
            "EL_active": ("channel", el_active),
            "EL_inactive": ("channel", el_inactive),
            "severity_months": ("channel", w @ severity / w.sum()),
            "severity_months_tail": (("channel", "level"), (tau @ severity).T),
        },
        coords={
            "level": lv,
            "region": node["region"].values,
            "sector": node["sector"].values,
            "channel": t["channel"].values,
        },
        attrs={"units": t.attrs["units"]},
    )


def exceedance_curves(ds: xr.Dataset, n_points: int = 100) -> xr.Dataset:
    """Exceedance curves ``P(L > x)`` of the loss over the horizon, with 95 % bands.

    Parameters
    ----------
    ds
        A cube or its :func:`path_totals`.
    n_points
        Thresholds per curve, spread evenly in log-probability from the body to the ``1/n_eff``
        tail (see :func:`riskengine.weighted.exceedance`).

    Returns
    -------
    xarray.Dataset
        For ``total``, ``region`` and ``sector`` (dims ``point`` and the group's dim):
        ``{group}_threshold`` (loss, the cube's unit), ``_probability`` (weighted share of paths
        with a loss above it), ``_se`` and the 95 % Wilson band ``_lower``, ``_upper``.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> e = exceedance_curves(ds, n_points=20)
    >>> e.region_probability.dims, bool((e.total_lower <= e.total_probability).all())
    (('region', 'point'), True)
    """
    t = _loaded_totals(ds)
    w = t["weight"].values
    node = t["loss"]
    groups = {
        "total": node.sum(("sector", "region")),
        "region": node.sum("sector"),
        "sector": node.sum("region"),
    }
    out = {}
    for group, values in groups.items():
        cols = [d for d in values.dims if d != "path"]
        x = values.transpose(*cols, "path").values.reshape(-1, values.sizes["path"])
        curves = [exceedance(col, w, n_points) for col in x]
        for field in ("threshold", "probability", "se", "lower", "upper"):
            arr = np.stack([getattr(c, field) for c in curves]).reshape(
                *(values.sizes[d] for d in cols), n_points
            )
            out[f"{group}_{field}"] = ([*cols, "point"], arr)
    coords = {"region": node["region"].values, "sector": node["sector"].values}
    return xr.Dataset(out, coords=coords, attrs={"units": t.attrs["units"]})


def cumulative_loss_quantiles(
    ds: xr.Dataset, quantiles: Sequence[float] = (0.05, 0.5, 0.95)
) -> xr.DataArray:
    """Weighted quantiles over paths of each region's cumulative loss up to each period's end.

    Needs ``cumulative_loss_region``: give a cube, or :func:`path_totals` with ``timeline``.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1, resolution="year")
    >>> cumulative_loss_quantiles(ds).dims
    ('quantile', 'time', 'region')
    """
    q = check_levels(quantiles)
    t = ds if ds.attrs.get("kind") == _TOTALS_KIND else path_totals(ds, timeline=True)
    if "cumulative_loss_region" not in t:
        raise ValueError("cumulative_loss_quantiles needs path_totals(ds, timeline=True)")
    cumulative = t["cumulative_loss_region"].compute()
    w = t["weight"].values
    x = cumulative.values
    out = np.empty((q.size, x.shape[1], x.shape[2]))
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            out[:, i, j] = weighted_quantile(x[:, i, j], w, q)
    return xr.DataArray(
        out,
        dims=("quantile", "time", "region"),
        coords={
            "quantile": q,
            "time": cumulative["time"],
            "period_end": cumulative["period_end"],
            "region": cumulative["region"],
        },
        attrs={"units": t.attrs["units"], "long_name": "cumulative output loss"},
    )
