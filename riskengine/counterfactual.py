"""Paired counterfactuals and Shapley attribution over channels (docs/model.md section 10).

A scenario and its variants run on the same seed and paths (common random numbers): a channel
*switched off* keeps its regimes, its onsets, severities and every random number, and loses its
exposure (``E[c, :] = 0``), so its direct shocks vanish and nothing else changes; a second
scenario file runs as it is. The difference of a path's loss between the scenario and a variant
is then the variant's effect on that very path, and the differences' spread is far below the
spread of either run: the paired standard error.

**Shapley attribution.** The value of a set S of channels is a risk figure (EL, VaR, ES) of the
run in which only the channels of S keep their exposure; channel c's Shapley value is the
average of its marginal contribution ``v(S + c) - v(S)`` over the orders in which channels can
be added. With at most :data:`SHAPLEY_EXACT` channels every subset runs (``2^C`` runs, 16 for the
library's four channels) and the formula is exact; beyond, :data:`SHAPLEY_PERMUTATIONS` random
orders (seeded) are averaged. Either way the values sum to ``v(all) - v(none)`` (to rounding):
each order's contributions telescope. ``v(none)`` is 0 for output losses (no channel hits
anything) and for credit losses with rho = 0.

This module imports numpy, xarray and riskengine's compile, engine, errors, risk, scenario,
studies, store and weighted modules; zarr lazily.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from riskengine.compile import CompiledModel, compile_model
from riskengine.engine import Progress, _check_args, default_block_paths
from riskengine.errors import RunError, StoreError
from riskengine.risk import check_levels
from riskengine.scenario import Scenario, load_scenario
from riskengine.studies import run_points
from riskengine.version import __version__
from riskengine.weighted import mean_se, tail_stats

__all__ = [
    "BOOTSTRAP",
    "SHAPLEY_EXACT",
    "SHAPLEY_PERMUTATIONS",
    "counterfactual",
    "is_comparison",
    "open_comparison",
    "shapley",
    "switched_off",
]

SHAPLEY_EXACT = 8  # channels up to which Shapley values run every subset (2^8 = 256 runs)
SHAPLEY_PERMUTATIONS = 64  # random orders averaged beyond SHAPLEY_EXACT channels
BOOTSTRAP = 200  # paired resamples of the paths for the standard error of a VaR difference
_TOTALS = ("loss_total", "value_added_loss_total", "credit_loss_total", "weight")
_MARK = "riskengine_comparison"


def switched_off(model: CompiledModel, channels: Sequence[str]) -> CompiledModel:
    """``model`` with the exposure of ``channels`` set to 0: their episodes still run (and
    provoke retaliation), on the same random numbers, but hit nothing.

    Raises
    ------
    RunError
        A channel the scenario does not have.
    """
    unknown = [c for c in channels if c not in model.channels]
    if unknown:
        raise RunError(
            f"--off {unknown[0]}: the scenario has no such channel; use one of "
            f"{', '.join(model.channels)}"
        )
    exposure = model.arrays.exposure.copy()
    exposure[[model.channels.index(c) for c in channels]] = 0.0
    return dataclasses.replace(model, arrays=model.arrays._replace(exposure=exposure))


def _concat(blocks: Sequence[dict]) -> dict[str, np.ndarray]:
    """A variant's per-path totals, its blocks in path order."""
    return {k: np.concatenate([b[k] for b in blocks]) for k in _TOTALS}


def _figures(totals: dict) -> np.ndarray:
    """Per path (P, F): the total output loss, each region's, and the total credit loss (the
    ``figure`` coordinate: ``total``, the regions, ``credit``)."""
    loss = totals["loss_total"].astype(np.float64)
    credit = totals["credit_loss_total"].astype(np.float64).sum(axis=1, keepdims=True)
    return np.concatenate([loss.sum(axis=1, keepdims=True), loss, credit], axis=1)


def _stats(x: np.ndarray, w: np.ndarray, levels: np.ndarray) -> dict[str, np.ndarray]:
    """EL with its standard error (F,), VaR and ES (K, F) of each figure column of ``x``: the
    statistics of :mod:`riskengine.weighted`, as every risk measure computes them."""
    F = x.shape[1]
    out = {"EL": np.empty(F), "EL_se": np.empty(F), "VaR": np.empty((levels.size, F)),
           "ES": np.empty((levels.size, F))}  # fmt: skip
    for j in range(F):
        out["EL"][j], out["EL_se"][j] = mean_se(x[:, j], w)
        t = tail_stats(x[:, j], w, levels)
        out["VaR"][:, j], out["ES"][:, j] = t.var, t.es
    return out


def _var_es(x: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES at each level of equally weighted paths along the last axis, vectorised over
    leading axes for the bootstrap: :func:`riskengine.weighted.tail_stats` with weights 1 (the
    inverted-CDF order statistic; Acerbi and Tasche), to rounding (tested)."""
    n = x.shape[-1]
    s = np.sort(x, axis=-1)
    var = np.empty((*x.shape[:-1], levels.size))
    es = np.empty_like(var)
    for k, a in enumerate(levels):
        i = min(max(math.ceil(a * n) - 1, 0), n - 1)  # smallest value with CDF (i + 1) / n >= a
        v = s[..., i]
        var[..., k] = v
        es[..., k] = v + np.maximum(s - v[..., None], 0.0).mean(axis=-1) / (1.0 - a)
    return var, es


def shapley(values: dict[frozenset, np.ndarray], channels: Sequence[str],
            orders: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Shapley values of ``channels`` from the values of sets of channels (``frozenset`` of
    names -> array): exact over every subset when ``orders`` is None, else the average of the
    marginal contributions along the given orders (rows of channel indices).

    Examples
    --------
    >>> v = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 2.0, frozenset("ab"): 5.0}
    >>> shapley({k: np.array(x) for k, x in v.items()}, ["a", "b"]).tolist()
    [2.0, 3.0]
    """
    C = len(channels)
    out = np.zeros((C, *np.shape(values[frozenset()])))
    if orders is None:
        for c, name in enumerate(channels):
            others = [x for x in channels if x != name]
            for size in range(C):
                weight = math.factorial(size) * math.factorial(C - size - 1) / math.factorial(C)
                for subset in itertools.combinations(others, size):
                    s = frozenset(subset)
                    out[c] += weight * (values[s | {name}] - values[s])
        return out
    for order in orders:
        s: frozenset = frozenset()
        for c in order:
            out[c] += values[s | {channels[c]}] - values[s]
            s = s | {channels[c]}
    return out / len(orders)


def _subsets(channels: Sequence[str], seed: int, exact_up_to: int):
    """The sets of channels whose runs the Shapley values need, and the sampled orders (None:
    exact)."""
    C = len(channels)
    if C <= exact_up_to:
        sets = [frozenset(s) for k in range(C + 1) for s in itertools.combinations(channels, k)]
        return sets, None
    gen = np.random.default_rng(seed)
    orders = np.array([gen.permutation(C) for _ in range(SHAPLEY_PERMUTATIONS)])
    sets = {frozenset()}
    for order in orders:
        sets |= {frozenset(channels[c] for c in order[: k + 1]) for k in range(C)}
    return sorted(sets, key=lambda s: (len(s), sorted(s))), orders


def _paired_tail_se(x_base, x_var, levels, seed) -> tuple[np.ndarray, np.ndarray]:
    """Paired bootstrap standard errors (K, F) of the VaR and ES differences base - variant
    (:data:`BOOTSTRAP` resamples of the paths, the same for both runs)."""
    gen = np.random.default_rng(seed)
    n = x_base.shape[0]
    boot = np.empty((2, BOOTSTRAP, x_base.shape[1], levels.size))
    for b in range(BOOTSTRAP):
        idx = gen.integers(0, n, n)
        vb, eb = _var_es(x_base[idx].T, levels)
        vv, ev = _var_es(x_var[idx].T, levels)
        boot[0, b], boot[1, b] = vb - vv, eb - ev
    var_se, es_se = boot.std(axis=1, ddof=1)
    return var_se.T, es_se.T


def counterfactual(
    scenario: Scenario | CompiledModel | str | Path,
    paths: int,
    seed: int = 0,
    store: str | Path | None = None,
    *,
    off: Sequence[str] = (),
    against: Scenario | CompiledModel | str | Path | None = None,
    shapley_values: bool = False,
    levels: Sequence[float] = (0.95, 0.99, 0.995),
    backend: str = "cpu",
    client=None,
    block_paths: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    exact_up_to: int = SHAPLEY_EXACT,
) -> xr.Dataset:
    """Run a scenario and its variants on the same seed and paths; paired differences and,
    on request, Shapley values over its channels.

    Parameters
    ----------
    scenario
        The base: a loaded or compiled scenario, a built-in name or a YAML path.
    paths, seed
        Every variant runs paths ``0..paths-1`` of ``seed``.
    store
        A zarr store for the results (COMPARE.zarr); without it, in memory.
    off
        Channels to switch off, one variant each (exposure 0, regimes kept).
    against
        A second scenario run as a variant of its own (its channels may differ; it must have
        the base's economy and horizon).
    shapley_values
        Also run every subset of the channels (or :data:`SHAPLEY_PERMUTATIONS` random orders
        beyond ``exact_up_to`` channels) and attribute EL, VaR and ES to the channels.
    levels
        VaR and ES levels.
    backend, client, block_paths, overwrite, progress
        As :func:`riskengine.simulate`.

    Returns
    -------
    xarray.Dataset
        Dims ``variant`` (``base`` first), ``path``, ``region``, ``bank``, ``level``, ``figure``
        (``total``, the regions, ``credit``) and, with Shapley values, ``channel``: each
        variant's per-path totals, its EL, VaR and ES per figure, the differences base -
        variant with their paired (and, for EL, unpaired) standard errors, and the Shapley
        values ``shapley_{EL,VaR,ES}`` with the per-path ``shapley_loss`` of the total loss.

    Examples
    --------
    >>> ds = counterfactual("truce_collapse", paths=64, off=["dollar"], backend="reference")
    >>> ds.variant.values.tolist()
    ['base', 'off:dollar']
    """
    lv = check_levels(levels)
    _check_args(paths, seed, "horizon", backend, block_paths)
    base = scenario if isinstance(scenario, CompiledModel) else compile_model(_scenario(scenario))
    _check_untilted(base)
    off = [off] if isinstance(off, str) else list(off)
    if len(set(off)) != len(off):
        raise RunError("--off names a channel twice; give each once")
    everything = frozenset(base.channels)
    # Every run is keyed by the set of channels that keep their exposure (the base: all of
    # them), so that a variant and a Shapley subset with the same channels run once.
    runs: dict[object, CompiledModel] = {everything: base}
    variants: dict[str, object] = {"base": everything}
    for c in off:
        switched_off(base, [c])  # names the unknown channel
        variants[f"off:{c}"] = everything - {c}
    if against is not None:
        other = against if isinstance(against, CompiledModel) else compile_model(_scenario(against))
        _check_untilted(other)
        _check_comparable(base, other)
        variants[f"against:{other.scenario.name}"] = "against"
        runs["against"] = other
    if len(variants) == 1 and not shapley_values:
        raise RunError("nothing to compare: give --off CHANNEL, --against SCENARIO or --shapley")
    sets, orders = _subsets(base.channels, seed, exact_up_to) if shapley_values else ([], None)
    for s in [*sets, *(k for k in variants.values() if k != "against")]:
        if s not in runs:
            runs[s] = switched_off(base, [c for c in base.channels if c not in s])

    def compute() -> xr.Dataset:
        keys = list(runs)
        bp = block_paths or default_block_paths(base, paths, "horizon", backend, slots=1)
        results: dict[int, dict] = {}
        run_points(tuple(runs[k] for k in keys), operator.getitem, _concat,
                   list(range(len(keys))), len(keys), paths, seed, backend, client, bp,
                   results.__setitem__, progress)  # fmt: skip
        by_key = {k: results[i] for i, k in enumerate(keys)}
        w = by_key[everything]["weight"]  # every run's: no tilt, all 1
        x = {k: _figures(t) for k, t in by_key.items()}
        stats = {k: _stats(x[k], w, lv) for k in keys}
        ds = _dataset(base, variants, by_key, x, stats, lv, seed, backend)
        if shapley_values:
            _add_shapley(ds, base, sets, x, stats, orders)
        return ds

    if store is None:
        if overwrite:
            raise RunError("overwrite applies to a store; give store (--out) as well")
        return compute()
    from riskengine.store import claimed_directory, clear, refuse_clash

    path = Path(store).absolute()
    # The store is claimed (locked, a clash refused) before anything runs, and written whole
    # at the end: a comparison is not resumable, and an interrupted one leaves what was there.
    with claimed_directory(path, False, is_comparison):
        refuse_clash(path, is_comparison(path), resume=False, overwrite=overwrite,
                     what="comparison", resumable=False)  # fmt: skip
        ds = compute()
        clear(path)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Consolidated metadata", category=UserWarning)
            ds.to_zarr(path, mode="a", zarr_format=3, consolidated=True)
    return open_comparison(path)


def _scenario(x) -> Scenario:
    return x if isinstance(x, Scenario) else load_scenario(x)


def _check_untilted(model: CompiledModel) -> None:
    """Paired differences take the base's weights for every variant: no tilts."""
    from riskengine.tilt import model_tilt

    if model_tilt(model) is not None:
        raise RunError(f"{model.scenario.name}: a comparison runs untilted models; drop the tilt")


def _check_comparable(base: CompiledModel, other: CompiledModel) -> None:
    if other.regions != base.regions or other.sectors != base.sectors:
        raise RunError(f"--against {other.scenario.name}: its economy differs from the base's; "
                       "compare scenarios on one economy")  # fmt: skip
    if other.horizon != base.horizon or other.start != base.start:
        raise RunError(f"--against {other.scenario.name}: its start or horizon differs from the "
                       "base's; give it the base's start and horizon_months")  # fmt: skip
    if other.banks != base.banks:
        raise RunError(f"--against {other.scenario.name}: its portfolio's banks differ from the "
                       "base's; give both the same portfolio")  # fmt: skip


def _dataset(base, variants, by_key, x, stats, levels, seed, backend) -> xr.Dataset:
    """The comparison: every variant's per-path totals and figures, and base - variant."""
    names = list(variants)
    keys = [variants[v] for v in names]
    base_key = variants["base"]
    w = by_key[base_key]["weight"]
    paths = w.size

    def labels(v):  # object arrays: zarr v3 has no fixed-width string type of its own
        return np.array(v, dtype=object)

    figure = ["total", *base.regions, "credit"]
    coords = {"variant": labels(names), "path": np.arange(paths), "region": labels(base.regions),
              "bank": labels(base.banks), "level": levels, "figure": labels(figure)}  # fmt: skip
    data = {
        name: (("variant", "path", dim), np.stack([by_key[k][name] for k in keys]))
        for name, dim in (("loss_total", "region"), ("value_added_loss_total", "region"),
                          ("credit_loss_total", "bank"))
    }  # fmt: skip
    data["weight"] = (("path",), w)
    for name in ("EL", "EL_se", "VaR", "ES"):
        dims = ("variant", "figure") if name.startswith("EL") else ("variant", "level", "figure")
        data[name] = (dims, np.stack([stats[k][name] for k in keys]))
    V, F, K = len(names), len(figure), levels.size
    out = {n: np.zeros((V, F)) for n in ("difference_EL", "difference_EL_se",
                                          "difference_EL_se_unpaired")}  # fmt: skip
    out |= {n: np.zeros((V, K, F)) for n in ("difference_VaR", "difference_VaR_se",
                                              "difference_ES", "difference_ES_se")}  # fmt: skip
    for i, k in enumerate(keys):
        if k == base_key:
            continue
        for j in range(F):
            # the paired error: the spread of the paths' own differences
            d, se = mean_se(x[base_key][:, j] - x[k][:, j], w)
            out["difference_EL"][i, j], out["difference_EL_se"][i, j] = d, se
        # two independent runs of the same size
        out["difference_EL_se_unpaired"][i] = np.hypot(stats[base_key]["EL_se"], stats[k]["EL_se"])
        for m in ("VaR", "ES"):
            out[f"difference_{m}"][i] = stats[base_key][m] - stats[k][m]
        se = _paired_tail_se(x[base_key], x[k], levels, seed + i)
        out["difference_VaR_se"][i], out["difference_ES_se"][i] = se
    for n, v in out.items():
        data[n] = (("variant", "figure") if v.ndim == 2 else ("variant", "level", "figure"), v)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs |= {
        _MARK: 1, "riskengine_version": __version__, "scenario_name": base.scenario.name,
        "scenario": base.scenario.source_text, "inputs_sha256": base.identity, "seed": int(seed),
        "paths": int(paths), "backend": backend, "unit": base.unit,
        "switched_off": "exposure (regimes, onsets and random numbers kept)",
        "horizon_months": int(base.horizon),
    }  # fmt: skip
    return ds


def _add_shapley(ds, base, sets, x, stats, orders) -> None:
    """Shapley values of EL, VaR and ES per figure, and per path of the total loss."""
    channels = list(base.channels)
    ds.coords["channel"] = np.array(channels, dtype=object)
    for m in ("EL", "VaR", "ES"):
        dims = ("channel", "figure") if m == "EL" else ("channel", "level", "figure")
        ds[f"shapley_{m}"] = (dims, shapley({s: stats[s][m] for s in sets}, channels, orders))
    per_path = {s: x[s][:, 0] for s in sets}
    ds["shapley_loss"] = (("channel", "path"), shapley(per_path, channels, orders))
    ds.attrs["shapley"] = (
        f"exact over all {len(sets)} subsets" if orders is None
        else f"{len(orders)} random orders over {len(sets)} subsets"
    )  # fmt: skip


def is_comparison(path: Path) -> bool:
    """Whether ``path`` holds a comparison's store."""
    import json

    meta = path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        return _MARK in json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False


def open_comparison(path: str | Path) -> xr.Dataset:
    """A comparison's results (from :func:`counterfactual` or ``riskengine compare``), in
    memory."""
    path = Path(path)
    if not is_comparison(path):
        raise StoreError(f"{path}: not a comparison store; give the folder `riskengine compare` "
                         "wrote")  # fmt: skip
    return xr.open_zarr(path).load()
