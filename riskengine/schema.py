"""The cube's contract, declared once: variables, dims, dtypes, attrs, coordinates and periods.

sgkit's ``variables.py`` idea: every producer of a cube (the reference, the engine, a store)
builds it with :func:`build_dataset` and every consumer (risk measures, the report, the store's
readers) checks it with :func:`validate`, so that a name, a dim or a dtype is written in one
place only.

Periods: the cube stores months, or sums over periods of ``quarter`` (3 months), ``year`` (12) or
``horizon`` (every month), counted from the scenario's start month.

This module imports numpy, xarray and riskengine's errors and version modules (the compiled
model is only read, never imported).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import xarray as xr

from riskengine.errors import CubeError
from riskengine.version import __version__

if TYPE_CHECKING:
    from riskengine.compile import CompiledModel

__all__ = [
    "COORDS",
    "CUBE",
    "RESOLUTIONS",
    "RESOLUTION_MONTHS",
    "STATIC",
    "SUMMARIES",
    "VARIABLES",
    "CubeVariable",
    "Resolution",
    "build_dataset",
    "check_dtype",
    "coords",
    "cube_shapes",
    "dataset_attrs",
    "estimated_bytes",
    "n_periods",
    "periods",
    "validate",
    "variable_attrs",
]

Resolution = Literal["month", "quarter", "year", "horizon"]
RESOLUTIONS: tuple[str, ...] = ("month", "quarter", "year", "horizon")
# Months per period; ``horizon`` is one period of every month.
RESOLUTION_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}
# The last representable datetime64[ns] is in April 2262: a period must start before it.
LAST_MONTH = np.datetime64("2262-04", "M")


@dataclass(frozen=True)
class CubeVariable:
    """One variable of the cube. ``units`` ``"economy"`` means the economy's currency unit."""

    dims: tuple[str, ...]
    dtype: type
    units: str
    long_name: str


CUBE: dict[str, CubeVariable] = {
    "loss": CubeVariable(
        ("path", "time", "sector", "region"), np.float32, "economy", "output loss in the period"
    ),
    "credit_loss": CubeVariable(
        ("path", "time", "bank"), np.float32, "economy", "the bank's credit losses in the period"
    ),
    "severity": CubeVariable(
        ("path", "time", "channel"),
        np.float32,
        "1",
        "effective severity of each channel (sum over the period's months)",
    ),
    "tension": CubeVariable(
        ("path", "time"), np.float32, "1", "tension factor g (sum over the period's months)"
    ),
    "weight": CubeVariable(("path",), np.float64, "1", "likelihood ratio of the path"),
}

# Per-path totals a run writes beside the cube (from its blocks, as riskengine.analysis sums
# them), so that the risk table of a run reads these instead of the cube.
SUMMARIES: dict[str, CubeVariable] = {
    "loss_total": CubeVariable(
        ("path", "region"),
        np.float64,
        "economy",
        "output loss of the region over the horizon (sum over periods and sectors)",
    ),
    "credit_loss_total": CubeVariable(
        ("path", "bank"),
        np.float64,
        "economy",
        "the bank's credit losses over the horizon (sum over periods)",
    ),
    "credit_loss_segment": CubeVariable(
        ("path", "bank", "segment"),
        np.float32,
        "economy",
        "the bank's credit losses on borrowers of the segment over the horizon",
    ),
    "value_added_loss_total": CubeVariable(
        ("path", "region"),
        np.float64,
        "economy",
        "value added lost by the region over the horizon (loss x value_added_share)",
    ),
}
# The economy's figures a cube's readers need (no path dim): the value-added share of each node,
# by which its output loss becomes lost value added, and each region's annual GDP.
STATIC: dict[str, CubeVariable] = {
    "value_added_share": CubeVariable(
        ("sector", "region"), np.float64, "1", "value added per unit of gross output"
    ),
    "gdp": CubeVariable(("region",), np.float64, "economy", "annual value added of the region"),
    "cet1": CubeVariable(("bank",), np.float64, "economy", "CET1 capital (NaN: not given)"),
    "rwa": CubeVariable(("bank",), np.float64, "economy", "risk-weighted assets (NaN: not given)"),
}
# Everything a block holds (and, with STATIC, a cube).
VARIABLES: dict[str, CubeVariable] = {**CUBE, **SUMMARIES}

# Coordinates: path (int64, global path index), time (datetime64[ns], first day of each period),
# sector, region, channel, bank (the portfolio's), segment (strings).
COORDS: tuple[str, ...] = ("path", "time", "sector", "region", "channel", "bank", "segment")
# Dataset attrs the readers need (the others are provenance: see dataset_attrs).
REQUIRED_ATTRS: tuple[str, ...] = ("resolution", "horizon_months")


def periods(start: dt.date, horizon: int, resolution: str) -> tuple[np.ndarray, np.ndarray]:
    """Map months to periods.

    Returns
    -------
    period_of_month : ndarray of int64, shape (horizon,)
        Period index of months 1..horizon.
    period_start : ndarray of datetime64[ns], shape (n_periods,)
        First day of each period. Quarters and years count from the scenario's start month, not
        the calendar; a last period shorter than the others holds the remaining months.

    Examples
    --------
    >>> pom, starts = periods(dt.date(2026, 12, 1), 7, "quarter")
    >>> pom.tolist(), [str(s)[:10] for s in starts]
    ([0, 0, 0, 1, 1, 1, 2], ['2026-12-01', '2027-03-01', '2027-06-01'])
    """
    if resolution == "horizon":
        length = horizon
    elif resolution in RESOLUTION_MONTHS:
        length = RESOLUTION_MONTHS[resolution]
    else:
        raise ValueError(f"resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
    period_of_month = np.arange(horizon, dtype=np.int64) // length
    first_months = np.arange(0, horizon, length)
    base = np.datetime64(start, "M")
    months = base + first_months.astype("timedelta64[M]")
    if months[-1] > LAST_MONTH:
        raise ValueError(f"periods starting after {LAST_MONTH} do not fit the cube's time axis")
    return period_of_month, months.astype("datetime64[ns]")


def n_periods(model: CompiledModel, resolution: str) -> int:
    """Number of periods of ``model``'s horizon at ``resolution``."""
    return len(periods(model.start, model.horizon, resolution)[1])


def _tilt_json(model: CompiledModel) -> str:
    from riskengine.tilt import model_tilt

    tilt = model_tilt(model)
    return "" if tilt is None else tilt.to_json()


def dataset_attrs(
    model: CompiledModel, seed: int, paths: int, backend: str, resolution: str
) -> dict:
    """Dataset attrs of the cube contract (docs/model.md, README's cube table)."""
    return {
        "riskengine_version": __version__,
        "scenario": model.scenario.source_text,
        "scenario_name": model.scenario.name,
        "scenario_sha256": model.scenario.sha256,
        # The run's identity: the scenario and every file it reads (economy, exposure tables).
        "inputs_sha256": model.identity,
        "input_files": [[f.path, f.sha256] for f in model.inputs],
        "portfolio": model.portfolio_name,
        "seed": int(seed),
        "paths": int(paths),
        "backend": backend,
        "resolution": resolution,
        "horizon_months": int(model.horizon),
        # the importance-sampling tilt (docs/model.md section 8) as JSON, "" for none
        "tilt": _tilt_json(model),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def coords(model: CompiledModel, path: np.ndarray | None, resolution: str) -> dict[str, np.ndarray]:
    """Coordinates of a cube over the given global path indices (without ``path`` if None)."""
    _, starts = periods(model.start, model.horizon, resolution)
    out = {} if path is None else {"path": np.asarray(path, dtype=np.int64)}
    return out | {
        "time": starts,
        "sector": np.array(model.sectors, dtype=object),
        "region": np.array(model.regions, dtype=object),
        "channel": np.array(model.channels, dtype=object),
        "bank": np.array(model.banks, dtype=object),
        "segment": np.array(model.segments, dtype=object),
    }


def cube_shapes(model: CompiledModel, paths: int, periods: int) -> dict[str, tuple[int, ...]]:
    """Shape of every variable (:data:`VARIABLES`) for ``paths`` paths and ``periods`` periods."""
    size = {
        "path": paths,
        "time": periods,
        "sector": len(model.sectors),
        "region": len(model.regions),
        "channel": len(model.channels),
        "bank": len(model.banks),
        "segment": len(model.segments),
    }
    return {name: tuple(size[d] for d in var.dims) for name, var in VARIABLES.items()}


def estimated_bytes(model: CompiledModel, paths: int, resolution: str) -> int:
    """Uncompressed size of a cube's variables: an upper bound of its store's size on disk.

    Python integers throughout, so that no count of paths can overflow.

    Examples
    --------
    >>> from riskengine import compile_model, load_scenario
    >>> model = compile_model(load_scenario("truce_collapse"))
    >>> # (84 + 6 + 4 + 1) float32 x 60 + 8 + (7 + 7 + 6) x 8 + 6 x 15 float32
    >>> estimated_bytes(model, 1, "month")
    23328
    """
    shapes = cube_shapes(model, int(paths), n_periods(model, resolution))
    return sum(
        int(np.prod(s, dtype=object)) * np.dtype(VARIABLES[n].dtype).itemsize
        for n, s in shapes.items()
    )


def check_dtype(name: str, values) -> None:
    """``TypeError`` unless ``values`` has the dtype the contract gives variable ``name``."""
    if values.dtype != VARIABLES[name].dtype:
        raise TypeError(
            f"{name}: dtype {values.dtype}, the cube needs {np.dtype(VARIABLES[name].dtype)}"
        )


def variable_attrs(name: str, unit: str) -> dict[str, str]:
    """A variable's ``units`` (the economy's unit where the contract says so) and ``long_name``."""
    var = {**VARIABLES, **STATIC}[name]
    return {"units": unit if var.units == "economy" else var.units, "long_name": var.long_name}


def build_dataset(
    model: CompiledModel,
    data: dict[str, np.ndarray],
    path: np.ndarray | None,
    *,
    seed: int,
    backend: str,
    resolution: str,
) -> xr.Dataset:
    """A cube from arrays already in the cube's layout and dtypes.

    ``data`` maps every name of :data:`VARIABLES` (the cube and its per-path summaries) to an
    array with that variable's dims: numpy, or dask (the template of a store). ``path`` holds
    the paths' global indices; None leaves the coordinate out (a store writes it chunk by chunk,
    so that no count of paths needs it in memory).
    """
    c = coords(model, path, resolution)
    variables = {}
    for name, var in VARIABLES.items():
        values = data[name] if hasattr(data[name], "dtype") else np.asarray(data[name])
        check_dtype(name, values)
        variables[name] = xr.Variable(var.dims, values, variable_attrs(name, model.unit))
    S, R = len(model.sectors), len(model.regions)
    static = {
        "value_added_share": model.arrays.value_added_share.reshape(R, S).T,
        "gdp": np.asarray(model.gdp, dtype=np.float64),
        "cet1": np.asarray(model.cet1, dtype=np.float64),
        "rwa": np.asarray(model.rwa, dtype=np.float64),
    }
    for name, values in static.items():
        variables[name] = xr.Variable(STATIC[name].dims, values, variable_attrs(name, model.unit))
    paths = data["weight"].shape[0]
    return xr.Dataset(
        variables, coords=c, attrs=dataset_attrs(model, seed, paths, backend, resolution)
    )


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check that ``ds`` is a cube; raise :class:`~riskengine.errors.CubeError` naming the first
    variable, dim, dtype, coordinate or attr that is missing or wrong. Returns ``ds``.

    Examples
    --------
    >>> validate(xr.Dataset())
    Traceback (most recent call last):
    ...
    riskengine.errors.CubeError: not a riskengine cube: variable 'loss' is missing
    """
    for name, var in {**VARIABLES, **STATIC}.items():
        if name not in ds.variables:
            if name in SUMMARIES or name in STATIC:  # optional: cubes written before them
                continue
            raise CubeError(f"not a riskengine cube: variable {name!r} is missing")
        if tuple(ds[name].dims) != var.dims:
            raise CubeError(
                f"not a riskengine cube: {name!r} has dims {tuple(ds[name].dims)}, "
                f"expected {var.dims}"
            )
        if ds[name].dtype != var.dtype:
            raise CubeError(
                f"not a riskengine cube: {name!r} has dtype {ds[name].dtype}, expected "
                f"{np.dtype(var.dtype)}"
            )
    for name in COORDS:
        if name not in ds.coords:
            raise CubeError(f"not a riskengine cube: coordinate {name!r} is missing")
    for attr in REQUIRED_ATTRS:
        if attr not in ds.attrs:
            raise CubeError(f"not a riskengine cube: dataset attr {attr!r} is missing")
    return ds
