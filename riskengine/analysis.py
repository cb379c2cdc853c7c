"""Exact risk statistics of a cube in a few passes over its chunks of paths, in bounded memory.

A cube's analysis reads per-path *columns* (a region's loss over the horizon, a node's, a year's
total, ...: :mod:`riskengine.kernels.analysis`), computed chunk by chunk from the cube (or from
the run's per-path summaries where they suffice) and never held for all paths at once. Each
pass maps a loop of :mod:`riskengine.kernels.analysis` over the chunks as dask tasks (the
threaded scheduler, or a ``dask.distributed`` client when one is the default) and combines their
small results in a tree:

1. **moments**: each column's min, max, sum of w, w^2 and w x;
2. **histograms**: up to 1024 bins over the range where each asked quantile lies, then again
   inside the bin that holds it (a zoom), until that bin holds at most :data:`COLLECT` values or
   one value only;
3. **collect**: the values (and weights) in those final bins, from which each quantile is the
   same order statistic as in memory (:func:`riskengine.weighted.weighted_quantile`); the
   Woodruff interval of a VaR is bracketed from the histogram (a bound of its width) and
   collected with it;
4. **tails**: with each VaR known, the sums beyond it that give ES, the standard errors and the
   Euler contributions (tail weights of :func:`riskengine.weighted.tail_weights`).

Quantiles are therefore exact (order statistics, equal to the in-memory ones), and every sum is
float64 over the same per-path values, in another order than in memory (equal to rounding).

This module imports numpy, xarray, dask and riskengine's errors and weighted modules; the
kernels lazily.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from riskengine.errors import CubeError
from riskengine.weighted import Z95

__all__ = ["COLLECT", "Analysis", "Layout", "layout", "summaries"]

PASS_PATHS = 8192  # paths per step inside a task: the column matrix stays tens of MB
CHUNK_PATHS = 65_536  # chunks of an in-memory cube
BINS = 1024  # bins per range, fewer where there are many ranges (HISTOGRAM_BYTES)
HISTOGRAM_BYTES = 16 * 2**20  # the largest partial histogram a task returns
COLLECT = 1024  # a quantile's bin is collected once it holds at most this many values
SMALLEST_LEVEL = 5e-324  # the smallest positive float: its quantile is a column's smallest value
FAN_IN = 8  # partial results combined per task
_PER_YEAR = frozenset({"month", "quarter", "year"})
# The run's per-path summaries, in the order kernels.analysis.summary_columns takes them.
SUMMARY_VARIABLES = ("loss_total", "credit_loss_total", "value_added_loss_total")
# Variables a run writes beside the cube: per-path totals over the horizon (schema.SUMMARIES).
_SUMMARY_GROUPS = frozenset({"va_total", "va_region", "total", "region", "credit", "credit_total"})


# --- columns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """A group of columns: its dims, coordinates, and where it starts in the column matrix."""

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    offset: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.coords[d]) for d in self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def column(self, *index: int) -> int:
        """Column index of an element of the group."""
        return self.offset + int(np.ravel_multi_index(index, self.shape)) if index else self.offset


@dataclass(frozen=True)
class Layout:
    """The columns an analysis reads: groups by name, the matrix width, how to compute them."""

    groups: dict[str, Group]
    width: int
    offsets: np.ndarray  # int64, one per name of kernels.analysis.LAYOUT (-1: not computed)
    year_of_time: np.ndarray  # int64, the analysis period of each time step (0: none)
    n_periods: int
    from_summaries: bool
    va_share: np.ndarray  # (sector, region): value added per unit of output

    @property
    def variables(self) -> tuple[str, ...]:
        """The dataset variables the columns are computed from."""
        if self.from_summaries:
            return (*SUMMARY_VARIABLES, "weight")
        return ("loss", "credit_loss", "severity", "weight")


def _period_labels(ds: xr.Dataset, per_year: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels of the analysis periods, each time step's period, and their count."""
    T = ds.sizes["time"]
    if not per_year or ds.attrs["resolution"] not in _PER_YEAR:
        return np.array(["horizon"]), np.zeros(T, np.int64), 1
    months = ds["time"].values.astype("datetime64[M]").astype(np.int64)
    year = (months - months[0]) // 12 + 1
    n_years = int(year.max())
    labels = ["horizon", *(f"year {y}" for y in range(1, n_years + 1))]
    return np.array(labels), year.astype(np.int64), n_years + 1


def layout(ds: xr.Dataset, names: Sequence[str], per_year: bool = True) -> Layout:
    """The column layout of ``names`` (groups of :data:`riskengine.kernels.analysis.LAYOUT`).

    Periods are the horizon, then each year of it where ``per_year`` and the resolution has
    years. Columns come from the run's per-path summaries when they suffice (horizon-only
    totals of loss by region and credit by bank) and the dataset has them; else from the cube.
    """
    from riskengine.kernels.analysis import LAYOUT

    labels, year_of_time, n_periods = _period_labels(ds, per_year)
    coord = {
        "period": labels,
        "region": ds["region"].values,
        "bank": ds["bank"].values,
        "sector": ds["sector"].values,
        "channel": ds["channel"].values,
        "time": ds["time"].values,
    }
    dims = {
        "va_total": ("period",),
        "va_region": ("period", "region"),
        "total": ("period",),
        "region": ("period", "region"),
        "sector": ("period", "sector"),
        "node": ("sector", "region"),
        "credit": ("period", "bank"),
        "credit_total": ("period",),
        "cumulative": ("time", "region"),
        "severity_months": ("channel",),
        "ever_active": ("channel",),
        "total_if_active": ("channel",),
        "active": ("time", "channel"),
    }
    groups: dict[str, Group] = {}
    offset = 0
    for name in LAYOUT:  # in the kernel's order, so that offsets increase
        if name in names:
            group = Group(dims[name], {d: coord[d] for d in dims[name]}, offset)
            groups[name] = group
            offset += group.size
    unknown = set(names) - set(groups)
    if unknown:
        raise ValueError(f"unknown column groups {sorted(unknown)}; known: {', '.join(LAYOUT)}")
    offsets = np.array([groups[n].offset if n in groups else -1 for n in LAYOUT], np.int64)
    from_summaries = (
        n_periods == 1
        and set(names) <= _SUMMARY_GROUPS
        and all(v in ds.variables for v in SUMMARY_VARIABLES)
    )
    if "value_added_share" in ds.variables and "gdp" in ds.variables:
        va_share = ds["value_added_share"].transpose("sector", "region").values
    elif {"va_total", "va_region"} & set(names):
        raise CubeError(
            "the cube has no value_added_share or gdp: it was written before value added was "
            "part of the cube (model v1); rerun it with this version, or ask for the output and "
            "credit groups only"
        )
    else:  # value added is not asked for: its columns are not computed
        va_share = np.ones((ds.sizes["sector"], ds.sizes["region"]))
    return Layout(groups, offset, offsets, year_of_time, n_periods, from_summaries,
                  np.ascontiguousarray(va_share, dtype=np.float64))  # fmt: skip


def summaries(
    loss: np.ndarray, credit_loss: np.ndarray, va_share: np.ndarray, out: dict[str, np.ndarray]
) -> None:
    """Write a block's per-path horizon totals of loss and value added lost by region and of
    credit losses by bank into ``out`` (``va_share``: (sector, region)), summed as the analysis
    sums the cube's columns (:func:`riskengine.kernels.analysis.path_columns`), so that both give
    the same bits. (``credit_loss_segment`` is the credit stage's own.)
    """
    from riskengine.kernels.analysis import LAYOUT, path_columns

    P, T, _, R = loss.shape
    B = credit_loss.shape[2]
    offsets = np.full(len(LAYOUT), -1, np.int64)
    for name, offset in (("region", 0), ("va_region", R), ("credit", 2 * R)):
        offsets[LAYOUT.index(name)] = offset
    X = np.empty((P, 2 * R + B))
    no_channels = np.empty((P, T, 0), np.float32)
    share = np.ascontiguousarray(va_share, dtype=np.float64)
    path_columns(loss, credit_loss, no_channels, share, np.zeros(T, np.int64), 1, offsets, X)
    out["loss_total"][...] = X[:, :R]
    out["value_added_loss_total"][...] = X[:, R : 2 * R]
    out["credit_loss_total"][...] = X[:, 2 * R :]


def _columns(lay: Layout, arrays: dict[str, np.ndarray], p0: int, p1: int) -> np.ndarray:
    """Rows ``[p0, p1)`` of a chunk's column matrix (float64, (paths, width))."""
    from riskengine.kernels import analysis as k

    X = np.empty((p1 - p0, lay.width))
    if lay.from_summaries:
        k.summary_columns(
            *(np.ascontiguousarray(arrays[n][p0:p1], dtype=np.float64) for n in SUMMARY_VARIABLES),
            lay.offsets,
            X,
        )
    else:
        k.path_columns(
            np.ascontiguousarray(arrays["loss"][p0:p1], dtype=np.float32),
            np.ascontiguousarray(arrays["credit_loss"][p0:p1], dtype=np.float32),
            np.ascontiguousarray(arrays["severity"][p0:p1], dtype=np.float32),
            lay.va_share,
            lay.year_of_time,
            lay.n_periods,
            lay.offsets,
            X,
        )
    return X


# --- passes over the chunks --------------------------------------------------------------------


@dataclass(frozen=True)
class _Pass:
    """One pass: a fresh partial result, one step over a piece of a chunk, and a combine."""

    start: Callable[[], object]
    step: Callable[[np.ndarray, np.ndarray, object], object]
    combine: Callable[[object, object], object]


def _on_chunk(lay: Layout, one: _Pass, *arrays: np.ndarray) -> object:
    """A pass over one chunk, in steps of :data:`PASS_PATHS` paths."""
    named = dict(zip(lay.variables, arrays, strict=True))
    weight = np.ascontiguousarray(named["weight"], dtype=np.float64)
    state = one.start()
    for p0 in range(0, weight.shape[0], PASS_PATHS):
        p1 = min(p0 + PASS_PATHS, weight.shape[0])
        state = one.step(_columns(lay, named, p0, p1), weight[p0:p1], state)
    return state


def _combine_all(combine: Callable, *parts: object) -> object:
    result = parts[0]
    for part in parts[1:]:
        result = combine(result, part)
    return result


class _Chunks:
    """The cube's chunks of paths as dask tasks; :meth:`run` maps a pass over them."""

    def __init__(self, ds: xr.Dataset, lay: Layout):
        import dask
        import dask.array as da

        self.lay = lay
        data = []
        for name in lay.variables:
            values = ds[name].data
            if not isinstance(values, da.Array):
                values = da.from_array(values, chunks=(CHUNK_PATHS, *values.shape[1:]))
            data.append(values)
        path_chunks = data[0].chunks[0]
        data = [d.rechunk({0: path_chunks, **{i: -1 for i in range(1, d.ndim)}}) for d in data]
        self.blocks = [[b for b in d.to_delayed().ravel()] for d in data]
        self.delayed = dask.delayed

    def run(self, one: _Pass) -> object:
        import dask

        parts = [
            self.delayed(_on_chunk, pure=False)(self.lay, one, *blocks)
            for blocks in zip(*self.blocks, strict=True)
        ]
        while len(parts) > 1:
            parts = [
                self.delayed(_combine_all, pure=False)(one.combine, *parts[i : i + FAN_IN])
                for i in range(0, len(parts), FAN_IN)
            ]
        return dask.compute(parts[0])[0]


# --- the passes --------------------------------------------------------------------------------


def _moments_pass(width: int) -> _Pass:
    from riskengine.kernels import analysis as k

    def start():
        return (
            np.full(width, np.inf),
            np.full(width, -np.inf),
            np.zeros(width),
            np.zeros(width),
            np.zeros(width),
            np.zeros(width, np.int64),
        )

    def step(X, w, s):
        k.moments(X, w, *s)
        return s

    def combine(a, b):
        return (
            np.minimum(a[0], b[0]),
            np.maximum(a[1], b[1]),
            a[2] + b[2],
            a[3] + b[3],
            a[4] + b[4],
            a[5] + b[5],
        )

    return _Pass(start, step, combine)


@dataclass(frozen=True)
class _Ranges:
    """Value ranges ``[lo, hi]`` of columns, sorted by column then lo, disjoint per column, with
    the weight (and w^2) of the column's values under each lo."""

    column: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    below: np.ndarray
    below2: np.ndarray

    def grouped(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The columns, and for each the first and end index of its ranges."""
        columns, first = np.unique(self.column, return_index=True)
        end = np.append(first[1:], self.column.size)
        return columns.astype(np.int64), first.astype(np.int64), end.astype(np.int64)


def _merge(items: list[tuple[int, float, float, float, float]]) -> tuple[_Ranges, list[int]]:
    """Merge ranges ``(column, lo, hi, below, below2)`` that overlap into disjoint ones (each
    keeps the ``below`` of its lowest part); returns them and the merged index of each item."""
    order = sorted(range(len(items)), key=lambda i: items[i][:3])
    merged: list[list] = []
    where = [0] * len(items)
    for i in order:
        c, lo, hi, below, below2 = items[i]
        if merged and merged[-1][0] == c and lo <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], hi)
        else:
            merged.append([c, lo, hi, below, below2])
        where[i] = len(merged) - 1
    columns = np.array([m[0] for m in merged], np.int64)
    fields = (np.array([m[k] for m in merged], np.float64) for k in range(1, 5))
    return _Ranges(columns, *fields), where


def _histogram_pass(r: _Ranges) -> _Pass:
    from riskengine.kernels import analysis as k

    J = r.column.size
    # 40 bytes a bin: many ranges (the zooms of thousands of quantiles) get fewer bins each,
    # so that a partial result stays small; a zoom then narrows less, never wrongly.
    B = int(min(BINS, max(16, HISTOGRAM_BYTES // (40 * J))))
    columns, first, end = r.grouped()

    def start():
        return (
            np.zeros((J, B), np.int64),
            np.zeros((J, B)),
            np.zeros((J, B)),
            np.full((J, B), np.inf),
            np.full((J, B), -np.inf),
        )

    def step(X, w, s):
        k.histograms(X, w, columns, first, end, r.lo, r.hi, *s)
        return s

    def combine(a, b):
        return (a[0] + b[0], a[1] + b[1], a[2] + b[2], np.minimum(a[3], b[3]),
                np.maximum(a[4], b[4]))  # fmt: skip

    return _Pass(start, step, combine)


def _key(t: _Target) -> tuple[int, float, float, float, float]:
    return (t.column, t.lo, t.hi, t.below, t.below2)


def _collect_pass(r: _Ranges) -> _Pass:
    from riskengine.kernels import analysis as k

    columns, first, end = r.grouped()
    empty = (np.empty(0, np.int64), np.empty(0), np.empty(0))

    def step(X, w, s):
        part = k.collect(X, w, columns, first, end, r.lo, r.hi)
        return tuple(np.concatenate([a, b]) for a, b in zip(s, part, strict=True))

    def combine(a, b):
        return tuple(np.concatenate([x, y]) for x, y in zip(a, b, strict=True))

    return _Pass(lambda: empty, step, combine)


def _tail_pass(column, threshold, mean, with_parts, parts) -> _Pass:
    from riskengine.kernels import analysis as k

    J, M = column.size, parts.size

    def start():
        return np.zeros((J, 6 + M)), np.zeros((J, 2 + M))

    def step(X, w, s):
        k.tail_sums(X, w, column, threshold, mean, with_parts, parts, *s)
        return s

    return _Pass(start, step, lambda a, b: (a[0] + b[0], a[1] + b[1]))


# --- exact quantiles ----------------------------------------------------------------------------


@dataclass
class _Target:
    """A quantile being located: the smallest value of ``column`` whose weighted CDF reaches
    ``level``, known to lie in ``[lo, hi]`` with weight ``below`` (and w^2 ``below2``) under lo."""

    column: int
    level: float
    lo: float
    hi: float
    below: float = 0.0
    below2: float = 0.0
    count: int = -1  # values in [lo, hi]; -1: not histogrammed yet
    span_of: int = -1  # a Woodruff bracket: the index of its VaR target
    wsum: float = 0.0  # the weight (and w^2) in [lo, hi], once histogrammed
    w2sum: float = 0.0

    @property
    def done(self) -> bool:
        return self.level <= 0 or self.lo == self.hi or 0 <= self.count <= COLLECT


@dataclass
class _Collected:
    """The values collected in one range of a column, sorted, with the weighted CDF's numerator
    (and the w^2 under each value)."""

    values: np.ndarray
    weights: np.ndarray
    below: float
    below2: float
    cum: np.ndarray = field(init=False)
    cum2: np.ndarray = field(init=False)

    @classmethod
    def atom(cls, value: float, wsum: float, w2sum: float, below: float, below2: float):
        """A range holding one value only (an atom: many paths with the same loss, such as 0):
        its weight and w^2 from the histogram, without collecting its paths one by one."""
        out = cls(np.array([value]), np.array([wsum]), below, below2)
        out.cum2 = np.array([below2 + w2sum])
        return out

    def __post_init__(self):
        order = np.argsort(self.values, kind="stable")
        self.values, self.weights = self.values[order], self.weights[order]
        self.cum = self.below + np.cumsum(self.weights)
        self.cum2 = self.below2 + np.cumsum(self.weights**2)
        self.cdf: dict[float, np.ndarray] = {}  # cum / W, by W

    def quantile(self, level: float, total: float) -> float:
        """The smallest collected value whose weighted CDF (``cum / total``) reaches ``level``."""
        if total not in self.cdf:
            self.cdf[total] = self.cum / total
        i = int(np.searchsorted(self.cdf[total], min(level, 1.0), side="left"))
        return float(self.values[min(i, self.values.size - 1)])


class Analysis:
    """The statistics of a cube's columns, in passes over its chunks (see the module docstring).

    Parameters
    ----------
    ds
        A cube (lazy or in memory), validated by the caller.
    lay
        The columns to read (:func:`layout`).
    """

    def __init__(self, ds: xr.Dataset, lay: Layout):
        self.lay = lay
        self.chunks = _Chunks(ds, lay)
        lo, hi, w, w2, wx, bad = self.chunks.run(_moments_pass(lay.width))
        if bad.any() or not (np.all(w > 0) and np.isfinite(w).all()):
            raise CubeError(
                "the cube holds NaN or infinite values (or weights not positive): the run's "
                "store is corrupt; run it again with --overwrite"
            )
        self.min, self.max, self.w, self.w2, self.wx = lo, hi, w, w2, wx
        self.mean = wx / w

    # quantiles

    def quantiles(self, requests: Sequence[tuple[np.ndarray, np.ndarray, bool]]) -> list[dict]:
        """Exact weighted quantiles (:func:`riskengine.weighted.weighted_quantile`), located
        together for every request ``(columns, levels, woodruff)``: the quantiles of each column
        (an index array of any shape) at each level (a new last axis).

        Each result holds ``value``, ``cdf`` (the weighted CDF at the value, ``W(x <= value) /
        W``) and ``w2_le`` (the sum of w^2 of the values at or under it); with ``woodruff`` also
        ``lower`` and ``upper``, the 95 % Woodruff interval of
        :func:`riskengine.weighted.tail_stats`.
        """
        targets: list[_Target] = []
        spans = []
        woodruff: set[int] = set()
        for columns, levels, with_interval in requests:
            columns = np.asarray(columns, np.int64)
            first = len(targets)
            targets += [
                # A level <= 0 asks for the smallest value; it is located at the smallest
                # positive level, whose quantile is that value, so that the weight at it (its
                # CDF) comes from the histograms too, and never from collecting its paths.
                _Target(int(c), max(float(a), SMALLEST_LEVEL), float(self.min[c]),
                        float(self.max[c]))
                for c in columns.ravel()
                for a in levels
            ]  # fmt: skip
            spans.append((first, columns.shape, len(levels), with_interval))
            if with_interval:
                woodruff.update(range(first, len(targets)))
        n = len(targets)
        self._locate(targets, woodruff)
        collected = self._collect(targets)
        assert len(collected) == n
        return [self._results(targets, collected, *span) for span in spans]

    def _results(self, targets, collected, first, shape, n_levels, with_interval) -> dict:
        size = math.prod(shape) * n_levels
        names = ("value", "cdf", "w2_le", *(("lower", "upper") if with_interval else ()))
        result = {k: np.empty(size) for k in names}
        for i in range(size):
            t, c = targets[first + i], collected[first + i]
            total = self.w[t.column]
            v = self._value(t.column, t.level, c)
            last = int(np.searchsorted(c.values, v, side="right")) - 1
            w2_le = c.cum2[last] if last >= 0 else c.below2
            result["value"][i] = v
            result["cdf"][i] = (c.cum[last] if last >= 0 else c.below) / total
            result["w2_le"][i] = w2_le
            if with_interval:
                a = t.level
                s_f = math.sqrt((1 - a) ** 2 * w2_le + a**2 * (self.w2[t.column] - w2_le)) / total
                result["lower"][i] = self._value(t.column, a - Z95 * s_f, c)
                result["upper"][i] = self._value(t.column, a + Z95 * s_f, c)
        return {k: x.reshape(*shape, n_levels) for k, x in result.items()}

    def _locate(self, targets: list[_Target], woodruff: set[int]) -> None:
        """Narrow every target's range by histogram passes until it can be collected; the
        targets in ``woodruff`` get two bracket targets each from the first histogram."""
        first = True
        while True:
            active = [i for i, t in enumerate(targets) if not t.done]
            if not active:
                return
            ranges, where = _merge([_key(targets[i]) for i in active])
            hist = self.chunks.run(_histogram_pass(ranges))
            if first and woodruff:
                for i, m in [(i, m) for i, m in zip(active, where, strict=True) if i in woodruff]:
                    t = targets[i]
                    delta = self._bracket(t, ranges, m, hist)
                    for level in (t.level - delta, t.level + delta):
                        hi = t.lo if level <= 0 else t.hi
                        targets.append(_Target(t.column, level, t.lo, hi, t.below, t.below2,
                                               span_of=i))  # fmt: skip
                        active.append(len(targets) - 1)
                        where.append(m)
            first = False
            for i, m in zip(active, where, strict=True):
                self._narrow(targets[i], ranges, m, hist)

    def _bins(self, t: _Target, below: float, count, wsum) -> tuple[int, int]:
        """The bins that hold the target: the first whose CDF reaches the level, and the first
        beyond the level by 1e-12 relative (the sums' rounding)."""
        total = self.w[t.column]
        cdf = below + np.cumsum(wsum)
        full = count > 0
        last = int(np.flatnonzero(full)[-1])
        reach_lo = np.flatnonzero((cdf >= t.level * total * (1 - 1e-12)) & full)
        reach_hi = np.flatnonzero((cdf >= t.level * total * (1 + 1e-12)) & full)
        return (int(reach_lo[0]) if reach_lo.size else last,
                int(reach_hi[0]) if reach_hi.size else last)  # fmt: skip

    def _bracket(self, t: _Target, ranges: _Ranges, m: int, hist) -> float:
        """A bound of ``1.96 s_F`` of a VaR target from its histogram (s_F as in
        :func:`riskengine.weighted.tail_stats`): the w^2 at or under the VaR and above it are at
        most those of the bins up to, and from, the VaR's bin."""
        count, wsum, w2sum = hist[0][m], hist[1][m], hist[2][m]
        b_lo, b_hi = self._bins(t, ranges.below[m], count, wsum)
        w2_le = ranges.below2[m] + w2sum[: b_hi + 1].sum()
        w2_gt = self.w2[t.column] - ranges.below2[m] - w2sum[:b_lo].sum()
        a = t.level
        bound = Z95 * math.sqrt((1 - a) ** 2 * max(w2_le, 0.0) + a**2 * max(w2_gt, 0.0))
        return bound / self.w[t.column] * (1 + 1e-9) + 1e-15

    def _narrow(self, t: _Target, ranges: _Ranges, m: int, hist) -> None:
        count, wsum, w2sum, vmin, vmax = (h[m] for h in hist)
        if t.level <= 0:
            return
        b_lo, b_hi = self._bins(t, ranges.below[m], count, wsum)
        t.below = float(ranges.below[m] + wsum[:b_lo].sum())
        t.below2 = float(ranges.below2[m] + w2sum[:b_lo].sum())
        t.lo, t.hi = float(vmin[b_lo]), float(vmax[b_lo : b_hi + 1].max())
        t.count = int(count[b_lo : b_hi + 1].sum())
        t.wsum = float(wsum[b_lo : b_hi + 1].sum())
        t.w2sum = float(w2sum[b_lo : b_hi + 1].sum())

    def _collect(self, targets: list[_Target]) -> list[_Collected]:
        """The collected range of each target that is not a bracket (a VaR's reaches from its
        lower to its upper bracket), from one pass over ranges merged per column."""
        spans: dict[int, list[_Target]] = {}
        for t in targets:
            if t.span_of >= 0:
                spans.setdefault(t.span_of, []).append(t)
        items, atoms = [], {}
        for i, t in enumerate(targets):
            if t.span_of < 0:
                group = [t, *spans.get(i, [])]
                low = min(group, key=lambda g: g.lo)
                hi = max(g.hi for g in group)
                if low.lo == hi and t.level > 0:
                    # An atom holds the target and its brackets: its value is the quantile, and
                    # its weight is known; collecting it could mean most of the paths.
                    atoms[i] = self._atom(low)
                else:
                    items.append((t.column, low.lo, hi, low.below, low.below2))
        if not items:
            return [atoms[i] for i, t in enumerate(targets) if t.span_of < 0]
        ranges, where = _merge(items)
        which, values, weights = self.chunks.run(_collect_pass(ranges))
        order = np.argsort(which, kind="stable")
        which, values, weights = which[order], values[order], weights[order]
        bounds = np.searchsorted(which, np.arange(ranges.column.size + 1))
        merged = [
            _Collected(values[a:b], weights[a:b], ranges.below[m], ranges.below2[m])
            for m, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
        found = iter(merged[m] for m in where)
        return [
            atoms[i] if i in atoms else next(found) for i, t in enumerate(targets) if t.span_of < 0
        ]

    def _atom(self, t: _Target) -> _Collected:
        """The collected range of a target that lies on an atom."""
        if t.count < 0:  # never histogrammed: the column holds one value on every path
            return _Collected.atom(t.lo, self.w[t.column], self.w2[t.column], 0.0, 0.0)
        return _Collected.atom(t.lo, t.wsum, t.w2sum, t.below, t.below2)

    def _value(self, column: int, level: float, c: _Collected) -> float:
        """The quantile at ``level`` from the collected values holding it."""
        if level <= 0:
            return float(self.min[column])
        return c.quantile(level, self.w[column])

    # sums beyond a threshold

    def tails(self, column, threshold, with_parts, parts) -> tuple[np.ndarray, np.ndarray]:
        """Sums over the paths beyond (and at) each threshold, for the pairs ``(column[j],
        threshold[j])`` (:func:`riskengine.kernels.analysis.tail_sums`): ``gt`` and ``eq``."""
        column = np.ascontiguousarray(column, np.int64)
        return self.chunks.run(
            _tail_pass(
                column,
                np.ascontiguousarray(threshold, np.float64),
                self.mean[column],
                np.ascontiguousarray(with_parts, np.bool_),
                np.ascontiguousarray(parts, np.int64),
            )
        )
