"""Risk measures of a cube: EL, VaR, ES with standard errors, exceedance curves, attribution.

Every measure is weighted by the cube's ``weight`` (importance sampling); the statistics and
their standard errors are those of :mod:`riskengine.weighted`, the in-memory reference, and are
computed here by :mod:`riskengine.analysis` in a few passes over the cube's chunks of paths: a
lazy cube (``open_run``) is never loaded whole, whatever its number of paths, and on a cluster the
passes run on the default ``dask.distributed`` client. Quantiles are exact (the in-memory
reference's order statistics); sums agree with it to rounding.

:func:`analyse` computes any set of the measures in one set of passes (the report asks for all
of them at once); the other functions are its parts.

Presentation (tables, number formats) is in :mod:`riskengine.formatting`: this module is
mathematics only.

This module imports numpy, xarray and riskengine's analysis, schema and weighted modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from riskengine.analysis import Analysis, layout
from riskengine.schema import validate
from riskengine.weighted import Z95, wilson

__all__ = [
    "SUMMARY_GROUPS",
    "analyse",
    "attribution",
    "check_levels",
    "credit_by_segment",
    "cumulative_loss_quantiles",
    "escalation_odds",
    "exceedance_curves",
    "risk_summary",
]

# The groups of risk_summary, with what each measures.
SUMMARY_GROUPS = {
    "va_total": "value added lost, all regions",
    "va_region": "value added lost by the region",
    "total": "total output loss",
    "region": "output loss of the region",
    "sector": "output loss of the sector",
    "credit": "credit losses of the bank",
    "credit_total": "credit losses, all banks",
    "node": "output loss of the node",
}
_CURVE_GROUPS = ("total", "region", "sector")

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


def _period_ends(ds: xr.Dataset) -> np.ndarray:
    """The first day after each period: the next period's start, or the horizon's end."""
    starts = ds["time"].values.astype("datetime64[M]")
    end = starts[0] + np.timedelta64(int(ds.attrs["horizon_months"]), "M")
    return np.append(starts[1:], end).astype("datetime64[ns]")


def analyse(
    ds: xr.Dataset,
    *,
    levels: Sequence[float] | None = None,
    groups: Sequence[str] = tuple(SUMMARY_GROUPS),
    per_year: bool = True,
    exceedance_points: int | None = None,
    fan_quantiles: Sequence[float] | None = None,
    attribution_levels: Sequence[float] | None = None,
    activity: bool = False,
) -> dict[str, xr.Dataset | xr.DataArray]:
    """Any of the measures of this module, in one set of passes over the cube.

    Parameters
    ----------
    ds
        A cube, lazy or in memory (checked by :func:`riskengine.schema.validate`).
    levels, groups, per_year
        :func:`risk_summary` at these levels, for these groups (``per_year``: also each year).
    exceedance_points
        :func:`exceedance_curves` with this many points.
    fan_quantiles
        :func:`cumulative_loss_quantiles` at these quantiles.
    attribution_levels
        :func:`attribution` at these levels.
    activity
        ``activity``: the weighted share of paths in which each channel bites, per period.

    Returns
    -------
    dict
        ``summary``, ``exceedance``, ``fan``, ``attribution``, ``activity``: those asked for.
    """
    validate(ds)
    want = set()
    if levels is not None:
        want |= set(groups)
    if exceedance_points is not None:
        want |= set(_CURVE_GROUPS)
    if fan_quantiles is not None:
        want.add("cumulative")
    if attribution_levels is not None:
        want |= {"total", "region", "sector", "severity_months", "ever_active"}
        want.add("total_if_active")
    if activity:
        want.add("active")
    lay = layout(ds, sorted(want), per_year=per_year and levels is not None)
    an = Analysis(ds, lay)
    g = lay.groups
    requests: dict[str, tuple] = {}
    if levels is not None:
        lv = check_levels(levels)
        for name in groups:
            requests[name] = (_columns(g[name]), lv, True)
    if attribution_levels is not None:
        requests["attribution"] = (np.array(g["total"].column(0)), check_levels(attribution_levels),
                                   False)  # fmt: skip
    if exceedance_points is not None:
        n_eff = an.w[0] ** 2 / an.w2[0]
        curve_levels = 1.0 - np.logspace(0.0, -np.log10(n_eff), exceedance_points)
        for name in _CURVE_GROUPS:
            requests[f"curve_{name}"] = (_columns(g[name], horizon=True), curve_levels, False)
    if fan_quantiles is not None:
        requests["fan"] = (_columns(g["cumulative"]), check_levels(fan_quantiles), False)
    found = dict(zip(requests, an.quantiles(list(requests.values())), strict=True))
    tails = _Tails(an, found, g, requests, levels is not None, attribution_levels is not None)
    out: dict = {}
    units = ds["loss"].attrs.get("units", "")
    if levels is not None:
        out["summary"] = _summary(ds, an, g, found, tails, groups, requests, units,
                                  per_year=lay.n_periods > 1)  # fmt: skip
    if attribution_levels is not None:
        out["attribution"] = _attribution(an, g, found, tails, requests, units)
    if exceedance_points is not None:
        out["exceedance"] = _curves(an, g, found, units)
    if fan_quantiles is not None:
        out["fan"] = _fan(ds, found["fan"], requests["fan"][1], g["cumulative"], units)
    if activity:
        active = g["active"]
        share = (an.wx / an.w)[_columns(active)]
        out["activity"] = xr.DataArray(
            share,
            dims=active.dims,
            coords={**active.coords, "period_end": ("time", _period_ends(ds))},
            attrs={"long_name": "weighted share of paths in which the channel bites"},
        )
    return out


def _columns(group, horizon: bool = False) -> np.ndarray:
    """The column indices of a group, in its shape (its horizon part only, with ``horizon``)."""
    index = group.offset + np.arange(group.size).reshape(group.shape)
    return index[0] if horizon and group.dims[0] == "period" else index


class _Tails:
    """One pass of tail sums for every (column, VaR) the summary and attribution need."""

    def __init__(self, an: Analysis, found, g, requests, summary: bool, attribution: bool):
        pairs, thresholds, with_parts = [], [], []
        self.where: dict[str, slice] = {}
        names = [n for n in requests if n in SUMMARY_GROUPS and summary]
        names += ["attribution"] if attribution else []
        for name in names:
            columns, _levels, _ = requests[name]
            cols = np.broadcast_to(np.asarray(columns)[..., None], found[name]["value"].shape)
            start = len(pairs)
            pairs += cols.ravel().tolist()
            thresholds += found[name]["value"].ravel().tolist()
            with_parts += [name == "attribution"] * cols.size
            self.where[name] = slice(start, len(pairs))
        self.parts = (
            np.concatenate([_columns(g[n], horizon=True).ravel() for n in _PARTS])
            if attribution
            else np.empty(0, np.int64)
        )
        self.gt, self.eq = an.tails(np.array(pairs, np.int64), np.array(thresholds),
                                    np.array(with_parts, bool), self.parts)  # fmt: skip

    def of(self, name: str, shape) -> tuple[np.ndarray, np.ndarray]:
        s = self.where[name]
        return self.gt[s].reshape(*shape, -1), self.eq[s].reshape(*shape, -1)


# Columns whose tail sums attribution needs (Euler contributions and channels in the tail).
_PARTS = ("region", "sector", "ever_active", "severity_months")


def _summary(ds, an, g, found, tails, groups, requests, units, per_year) -> xr.Dataset:
    out = {}
    for name in groups:
        group = g[name]
        columns, lv, _ = requests[name]
        q = found[name]
        W, W2 = an.w[columns][..., None], an.w2[columns][..., None]
        gt, _ = tails.of(name, q["value"].shape)
        mean = an.mean[columns]
        el_se = np.sqrt(gt[..., 0, 5]) / an.w[columns]
        alpha = lv
        mean_excess = gt[..., 2] / (W * (1 - alpha))
        es = q["value"] + mean_excess
        var_es = (
            gt[..., 4] / (1 - alpha) ** 2 - 2 * mean_excess * gt[..., 3] / (1 - alpha)
            + mean_excess**2 * W2
        )  # fmt: skip
        es_se = np.sqrt(np.maximum(var_es, 0.0)) / W
        coords = {d: group.coords[d] for d in group.dims}
        dims = group.dims
        what = SUMMARY_GROUPS[name]
        values = {
            "EL": (dims, mean),
            "EL_se": (dims, el_se),
            "VaR": ((*dims, "level"), q["value"]),
            "VaR_se": ((*dims, "level"), (q["upper"] - q["lower"]) / (2 * Z95)),
            "VaR_lower": ((*dims, "level"), q["lower"]),
            "VaR_upper": ((*dims, "level"), q["upper"]),
            "ES": ((*dims, "level"), es),
            "ES_se": ((*dims, "level"), es_se),
        }
        for stat, (d, v) in values.items():
            attrs = {"long_name": f"{stat} of {what}", "units": units}
            if stat.endswith("_se") or stat.startswith("VaR_"):
                attrs["method"] = SE_METHOD
            out[f"{name}_{stat}"] = xr.DataArray(v, dims=d, coords=coords, attrs=attrs)
    lv = requests[groups[0]][1]
    if "credit" in groups and "rwa" in ds.variables:
        out.update(_depletion(ds, out))
    if "gdp" in ds.variables:
        out["gdp"] = xr.DataArray(
            ds["gdp"].values, dims=("region",), coords={"region": ds["region"].values},
            attrs={"units": units, "long_name": "annual value added of the region"},
        )  # fmt: skip
    attrs = {
        "units": units,
        "horizon_months": int(ds.attrs["horizon_months"]),
        "paths": int(ds.sizes["path"]),
        "per_year": "yes" if per_year else "no: one period (resolution horizon)",
        "var_definition": "smallest loss x with weighted P(L <= x) >= level",
        "es_definition": "Acerbi-Tasche: mean of the quantile function over [level, 1]",
        "standard_errors": SE_METHOD,
        **{k: ds.attrs[k] for k in ("resolution", "scenario_name") if k in ds.attrs},
    }
    return xr.Dataset(out, attrs=attrs).assign_coords(level=lv)


def _depletion(ds: xr.Dataset, out: dict) -> dict[str, xr.DataArray]:
    """CET1 depletion of each bank in basis points of its risk-weighted assets: the credit
    figures times 1e4 / RWA (NaN for a bank without capital data), with the start's CET1
    ratio and the capital figures themselves."""
    rwa = xr.DataArray(ds["rwa"].values, dims=("bank",), coords={"bank": ds["bank"].values})
    cet1 = xr.DataArray(ds["cet1"].values, dims=("bank",), coords={"bank": ds["bank"].values})
    depletion = {}
    for stat in ("EL", "EL_se", "VaR", "VaR_se", "ES", "ES_se"):
        v = out[f"credit_{stat}"] * 1e4 / rwa
        v.attrs = {
            "long_name": f"{stat} of the bank's CET1 depletion by credit losses (before tax)",
            "units": "bp of risk-weighted assets",
        }
        depletion[f"cet1_depletion_{stat}"] = v
    depletion["cet1_ratio"] = (cet1 / rwa * 100).assign_attrs(
        long_name="CET1 ratio at the start", units="%"
    )
    units = ds["rwa"].attrs.get("units", "")
    depletion["cet1"] = cet1.assign_attrs(long_name="CET1 capital", units=units)
    depletion["rwa"] = rwa.assign_attrs(long_name="risk-weighted assets", units=units)
    return depletion


def credit_by_segment(ds: xr.Dataset) -> xr.Dataset:
    """Expected credit loss over the horizon of every bank on every segment, with its standard
    error (weighted by the paths' weights; the same delta-method error as EL elsewhere).

    Streams the run's ``credit_loss_segment`` summary (path, bank, segment) chunk by chunk.

    Returns
    -------
    xarray.Dataset
        ``EL`` and ``EL_se`` (bank, segment), in the cube's unit.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=50, seed=1, resolution="year")
    >>> seg = credit_by_segment(ds)
    >>> bool(np.allclose(seg.EL.sum("segment"), ds.credit_loss.sum(("time")).mean("path"),
    ...      rtol=1e-5))
    True
    """
    validate(ds)
    if "credit_loss_segment" not in ds.variables:
        from riskengine.errors import CubeError

        raise CubeError("the cube has no credit_loss_segment: rerun it with this version")
    import dask

    w = ds["weight"].astype(np.float64)
    x = ds["credit_loss_segment"].astype(np.float64)
    # One pass: sum(w^2 (x - EL)^2) = sum(w^2 x^2) - 2 EL sum(w^2 x) + EL^2 sum(w^2)
    W, wx, w2, w2x, w2x2 = dask.compute(
        w.sum(), (w * x).sum("path"), (w**2).sum(), (w**2 * x).sum("path"),
        (w**2 * x**2).sum("path"),
    )  # fmt: skip
    el = wx / W
    se = np.sqrt(np.maximum(w2x2 - 2 * el * w2x + el**2 * w2, 0.0)) / W
    units = ds["credit_loss_segment"].attrs.get("units", "")
    return xr.Dataset(
        {
            "EL": el.assign_attrs(long_name="expected credit loss", units=units),
            "EL_se": se.assign_attrs(long_name="standard error of EL", units=units),
        }
    )


def _attribution(an, g, found, tails, requests, units) -> xr.Dataset:
    total_col = g["total"].column(0)
    lv = requests["attribution"][1]
    v = found["attribution"]["value"].ravel()  # VaR of the total at each level
    gt, eq = tails.of("attribution", (lv.size,))
    W = an.w[total_col]
    cdf_at_var = 1.0 - gt[:, 0] / W
    atom = eq[:, 0]
    share = np.maximum(cdf_at_var - lv, 0.0) / (1 - lv)
    # tau = w / (W (1 - alpha)) beyond VaR; the atom at VaR shares `share` of its probability.
    with np.errstate(invalid="ignore", divide="ignore"):
        at = np.where(atom[:, None] > 0, eq[:, 2:] / atom[:, None], 0.0) * share[:, None]
    contrib = gt[:, 6:] / (W * (1 - lv))[:, None] + at  # (level, parts)
    sizes = [g[n].shape[-1] for n in _PARTS]
    region, sector, active, months = np.split(contrib, np.cumsum(sizes)[:-1], axis=1)
    es = v + gt[:, 2] / (W * (1 - lv))
    ever = _columns(g["ever_active"])
    w_active = an.wx[ever]
    total_sum = an.wx[total_col]
    if_active = an.wx[_columns(g["total_if_active"])]
    with np.errstate(invalid="ignore", divide="ignore"):  # a channel never (always) active: NaN
        el_active = if_active / w_active
        el_inactive = (total_sum - if_active) / (W - w_active)
    channel = g["ever_active"].coords["channel"]
    return xr.Dataset(
        {
            "ES": ("level", es),
            "euler_region": (("region", "level"), region.T),
            "euler_sector": (("sector", "level"), sector.T),
            "p_active": ("channel", w_active / W),
            "p_active_tail": (("channel", "level"), active.T),
            "EL_active": ("channel", el_active),
            "EL_inactive": ("channel", el_inactive),
            "severity_months": ("channel", an.mean[_columns(g["severity_months"])]),
            "severity_months_tail": (("channel", "level"), months.T),
        },
        coords={
            "level": lv,
            "region": g["region"].coords["region"],
            "sector": g["sector"].coords["sector"],
            "channel": channel,
        },
        attrs={"units": units},
    )


def _curves(an, g, found, units) -> xr.Dataset:
    out = {}
    for name in _CURVE_GROUPS:
        q = found[f"curve_{name}"]
        cols = _columns(g[name], horizon=True)
        threshold = q["value"].copy()
        threshold[..., -1] = an.max[cols]
        W, W2 = an.w[cols][..., None], an.w2[cols][..., None]
        cdf = q["cdf"].copy()
        cdf[..., -1] = 1.0
        w2_le = q["w2_le"].copy()
        w2_le[..., -1] = W2[..., 0]
        p = np.clip(1.0 - cdf, 0.0, 1.0)
        se = np.sqrt(np.maximum((1 - p) ** 2 * (W2 - w2_le) + p**2 * w2_le, 0.0)) / W
        # n* is undefined where p is 0 or 1 (se is then 0, or a rounding residue of the weight
        # sums, which would make n* 0): Kish's n_eff stands in
        n_star = np.broadcast_to(W**2 / W2, p.shape).copy()
        np.divide(p * (1 - p), se**2, out=n_star, where=(se > 0) & (p > 0) & (p < 1))
        lower, upper = wilson(p, n_star)
        dims = (*g[name].dims[1:], "point")
        for field, values in (("threshold", threshold), ("probability", p), ("se", se),
                              ("lower", lower), ("upper", upper)):  # fmt: skip
            out[f"{name}_{field}"] = (dims, values)
    coords = {"region": g["region"].coords["region"], "sector": g["sector"].coords["sector"]}
    return xr.Dataset(out, coords=coords, attrs={"units": units})


def _fan(ds, q, quantiles, group, units) -> xr.DataArray:
    return xr.DataArray(
        np.moveaxis(q["value"], -1, 0),
        dims=("quantile", "time", "region"),
        coords={
            "quantile": quantiles,
            "time": group.coords["time"],
            "period_end": ("time", _period_ends(ds)),
            "region": group.coords["region"],
        },
        attrs={"units": units, "long_name": "cumulative output loss"},
    )


def risk_summary(
    ds: xr.Dataset,
    levels: Sequence[float] = (0.95, 0.99, 0.995),
    groups: Sequence[str] = tuple(SUMMARY_GROUPS),
    per_year: bool = True,
) -> xr.Dataset:
    """EL, VaR and ES (with standard errors) of losses by node, sector, region and in total.

    Parameters
    ----------
    ds
        A cube, lazy or in memory: streamed in passes over its chunks of paths.
    levels
        Confidence levels of VaR and ES, each strictly between 0 and 1.
    groups
        Any of ``va_total`` and ``va_region`` (value added lost: the output loss times each
        node's value-added share), ``total``, ``region``, ``sector`` (gross output lost),
        ``credit`` (credit losses by bank), ``credit_total`` and ``node`` (the sector x
        region nodes, over the horizon only). Where only the horizon's value-added, total,
        region and credit groups are asked for (``per_year=False``), a run's store answers from
        its per-path summaries without reading the cube.
    per_year
        Also each year of the horizon, where the resolution has years.

    Returns
    -------
    xarray.Dataset
        For each group: ``{group}_EL``, ``_EL_se``, ``_VaR``, ``_VaR_se``, ``_VaR_lower``,
        ``_VaR_upper`` (95 % interval), ``_ES``, ``_ES_se``, with dims ``period`` (``"horizon"``
        then ``"year 1"``, ...), the group's dims and ``level`` (``node``: sector, region,
        level); ``gdp`` (region): each region's annual GDP, to express value added lost as a
        share of it; with ``credit`` and a cube with capital data, ``cet1_depletion_{stat}``
        (period, bank[, level]): the credit figures in basis points of each bank's risk-weighted
        assets (NaN for a bank without capital data), and ``cet1_ratio``, ``cet1``, ``rwa``
        (bank). Amounts are in the cube's unit; the definitions (VaR: smallest loss whose
        weighted CDF reaches the level; ES: Acerbi-Tasche) and the standard-error methods are
        in :mod:`riskengine.weighted` and the ``method`` attrs.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> s = risk_summary(ds, levels=[0.9])
    >>> bool((s.total_ES >= s.total_VaR).all()), s.total_VaR.dims
    (True, ('period', 'level'))
    """
    return analyse(ds, levels=levels, groups=groups, per_year=per_year)["summary"]


def attribution(ds: xr.Dataset, levels: Sequence[float] = (0.99,)) -> xr.Dataset:
    """Which regions, sectors and channels make the tail of the total loss over the horizon.

    Returns
    -------
    xarray.Dataset
        ``ES`` (level): ES of total loss. ``euler_region`` (region, level) and ``euler_sector``
        (sector, level): Euler contributions to that ES, ``E[L_part | tail]`` with the tail
        weights of :func:`riskengine.weighted.tail_weights`; each sums to ``ES``.
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
    return analyse(ds, attribution_levels=levels)["attribution"]


def exceedance_curves(ds: xr.Dataset, n_points: int = 100) -> xr.Dataset:
    """Exceedance curves ``P(L > x)`` of the loss over the horizon, with 95 % bands.

    Parameters
    ----------
    ds
        A cube, lazy or in memory.
    n_points
        Thresholds per curve: the sample quantiles at exceedance levels spread evenly in
        log-probability from 1 down to ``1/n_eff`` (the last: the largest loss), as
        :func:`riskengine.weighted.exceedance`.

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
    return analyse(ds, exceedance_points=n_points)["exceedance"]


def cumulative_loss_quantiles(
    ds: xr.Dataset, quantiles: Sequence[float] = (0.05, 0.5, 0.95)
) -> xr.DataArray:
    """Weighted quantiles over paths of each region's cumulative loss up to each period's end.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1, resolution="year")
    >>> cumulative_loss_quantiles(ds).dims
    ('quantile', 'time', 'region')
    """
    return analyse(ds, fan_quantiles=quantiles)["fan"]


def escalation_odds(ds: xr.Dataset, years: Sequence[int] = (1, 3, 5)) -> xr.Dataset:
    """The probability that each channel, and at least one, has bitten by the end of each year.

    A channel bites in a month where its effective severity ``e`` is above zero (MODEL.md
    section 4): an escalation whose substitution has not yet removed it all.

    Parameters
    ----------
    ds
        A cube, lazy or in memory, whose periods end at each year asked for (any resolution
        but ``horizon``, unless the horizon is the only year asked for).
    years
        Years from the start, each within the horizon.

    Returns
    -------
    xarray.Dataset
        ``p_bite`` (channel, year): the weighted share of paths in which the channel (``any``:
        at least one) has bitten by the end of the year; ``lower``, ``upper``: its 95 % Wilson
        interval on the effective number of paths.

    Examples
    --------
    >>> from riskengine import load_scenario
    >>> from riskengine.reference import simulate
    >>> ds = simulate(load_scenario("truce_collapse"), paths=200, seed=1)
    >>> odds = escalation_odds(ds, years=[1, 5])
    >>> bool((odds.p_bite.diff("year") >= 0).all()), odds.p_bite.sizes["channel"]
    (True, 5)
    """
    validate(ds)
    horizon = int(ds.attrs["horizon_months"])
    starts = ds["time"].values.astype("datetime64[M]")
    ends = ((_period_ends(ds).astype("datetime64[M]") - starts[0]).astype(np.int64)).tolist()
    years = [int(y) for y in years]
    cuts = []
    for year in years:
        if not 0 < 12 * year <= horizon or 12 * year not in ends:
            raise ValueError(
                f"years: {year} must be a whole year within the horizon ({horizon} months) that "
                "ends a period of the cube; simulate at month, quarter or year resolution"
            )
        cuts.append(ends.index(12 * year) + 1)
    w = ds["weight"]
    bitten = (ds["severity"] > 0).cumsum("time") > 0  # (path, time, channel)
    rows = []
    for cut in cuts:
        by_then = bitten.isel(time=cut - 1)
        any_channel = by_then.any("channel").expand_dims(channel=["any"])
        rows.append(xr.concat([by_then, any_channel], dim="channel"))
    hit = xr.concat(rows, dim=xr.IndexVariable("year", years))
    w_sum = w.sum()
    p = ((hit * w).sum("path") / w_sum).compute()
    n_eff = float(w_sum**2 / (w**2).sum())
    lower, upper = wilson(p.values, np.full(p.shape, n_eff))
    attrs = {"long_name": "probability the channel has bitten by the end of the year"}
    return xr.Dataset(
        {
            "p_bite": p.transpose("channel", "year").assign_attrs(attrs),
            "lower": (p.dims, lower),
            "upper": (p.dims, upper),
        }
    ).transpose("channel", "year")
