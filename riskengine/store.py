"""The cube's schema: variable names, dims, dtypes and attrs, time periods, and the Dataset.

Declared once here (as sgkit's ``variables.py`` does) and used by the reference, the engine and
the readers, so that every producer of a cube writes the same names, dims, coords and attrs.

This module imports numpy, xarray and riskengine.compile only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

from riskengine.compile import CompiledModel

__all__ = [
    "CUBE",
    "RESOLUTIONS",
    "CubeVariable",
    "Resolution",
    "build_dataset",
    "periods",
]

Resolution = Literal["month", "quarter", "year", "horizon"]
RESOLUTIONS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}


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
        ("path", "time", "region"), np.float32, "economy", "banks' credit losses in the period"
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


def periods(start: dt.date, horizon: int, resolution: str) -> tuple[np.ndarray, np.ndarray]:
    """Map months to periods.

    Returns
    -------
    period_of_month : ndarray of int64, shape (horizon,)
        Period index of months 1..horizon.
    period_start : ndarray of datetime64[ns], shape (n_periods,)
        First day of each period. Quarters and years count from the scenario's start month, not
        the calendar; a last period shorter than the others holds the remaining months.
    """
    if resolution == "horizon":
        length = horizon
    elif resolution in RESOLUTIONS:
        length = RESOLUTIONS[resolution]
    else:
        raise ValueError(f"resolution {resolution!r} is not one of month, quarter, year, horizon")
    period_of_month = np.arange(horizon, dtype=np.int64) // length
    first_months = np.arange(0, horizon, length)
    base = np.datetime64(start, "M")
    starts = (base + first_months.astype("timedelta64[M]")).astype("datetime64[ns]")
    return period_of_month, starts


def dataset_attrs(model: CompiledModel, seed: int, paths: int, backend: str, resolution: str):
    """Dataset attrs of the cube contract (DESIGN.md)."""
    from riskengine import __version__

    return {
        "riskengine_version": __version__,
        "scenario": model.scenario.source_text,
        "scenario_name": model.scenario.name,
        "scenario_sha256": model.scenario.sha256,
        "seed": int(seed),
        "paths": int(paths),
        "backend": backend,
        "resolution": resolution,
        "horizon_months": int(model.horizon),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def coords(model: CompiledModel, path: np.ndarray, resolution: str) -> dict[str, np.ndarray]:
    """Coordinates of a cube over the given global path indices."""
    _, starts = periods(model.start, model.horizon, resolution)
    return {
        "path": np.asarray(path, dtype=np.int64),
        "time": starts,
        "sector": np.array(model.sectors, dtype=object),
        "region": np.array(model.regions, dtype=object),
        "channel": np.array(model.channels, dtype=object),
    }


def variable_attrs(name: str, unit: str) -> dict[str, str]:
    var = CUBE[name]
    return {"units": unit if var.units == "economy" else var.units, "long_name": var.long_name}


def build_dataset(
    model: CompiledModel,
    data: dict[str, np.ndarray],
    path: np.ndarray,
    *,
    seed: int,
    backend: str,
    resolution: str,
) -> xr.Dataset:
    """An in-memory cube from arrays already in the cube's layout and dtypes.

    ``data`` maps every name of :data:`CUBE` to an array with that variable's dims.
    """
    c = coords(model, path, resolution)
    variables = {}
    for name, var in CUBE.items():
        values = np.asarray(data[name])
        if values.dtype != var.dtype:
            raise TypeError(f"{name}: dtype {values.dtype}, the cube needs {np.dtype(var.dtype)}")
        variables[name] = xr.Variable(var.dims, values, variable_attrs(name, model.unit))
    return xr.Dataset(
        variables,
        coords=c,
        attrs=dataset_attrs(model, seed, len(c["path"]), backend, resolution),
    )
