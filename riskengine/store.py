"""The cube's schema (names, dims, dtypes, attrs, time periods) and its zarr v3 store.

The schema is declared once here (as sgkit's ``variables.py`` does) and used by the reference,
the engine and the readers, so that every producer of a cube writes the same names, dims, coords
and attrs.

A run's store is a zarr v3 group that plain ``xarray.open_zarr(path)`` opens:

- the cube's variables and coordinates at the root, chunked along ``path`` exactly as the run's
  blocks (so that concurrent block writes never share a chunk), the dataset attrs of the contract,
  and consolidated metadata (written once, at creation; block writes never change metadata);
- a subgroup ``riskengine`` (ignored by ``open_zarr``) holding ``block_done``, one uint8 per
  block, uncompressed, one chunk per block, set to 1 after the block's data is written. zarr
  writes each chunk by rename, so a block killed at any instant is either recorded complete with
  all its data or not recorded at all.

A run holds an exclusive ``flock`` on the ``riskengine`` group's metadata file while it writes
(released by the OS when the process dies, even by SIGKILL), so two runs cannot write one store at
once. Stores are directories on a local or shared (NFS, Lustre, GPFS) file system.

This module imports numpy, xarray, zarr and riskengine.compile (dask.array lazily, for lazy cubes).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from riskengine.compile import CompiledModel

__all__ = [
    "CUBE",
    "ENGINE_GROUP",
    "RESOLUTIONS",
    "CubeVariable",
    "Resolution",
    "RunInfo",
    "StoreError",
    "build_dataset",
    "clear",
    "create_store",
    "cube_shapes",
    "estimated_bytes",
    "holds_nothing_else",
    "is_store",
    "locked",
    "open_cube",
    "periods",
    "read_run",
    "remove_partial_writes",
    "write_block",
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


def cube_shapes(model: CompiledModel, paths: int, n_periods: int) -> dict[str, tuple[int, ...]]:
    """Shape of every cube variable for ``paths`` paths and ``n_periods`` time periods."""
    size = {
        "path": paths,
        "time": n_periods,
        "sector": len(model.sectors),
        "region": len(model.regions),
        "channel": len(model.channels),
    }
    return {name: tuple(size[d] for d in var.dims) for name, var in CUBE.items()}


def _n_periods(model: CompiledModel, resolution: str) -> int:
    return len(periods(model.start, model.horizon, resolution)[1])


def _check_dtype(name: str, values) -> None:
    if values.dtype != CUBE[name].dtype:
        raise TypeError(
            f"{name}: dtype {values.dtype}, the cube needs {np.dtype(CUBE[name].dtype)}"
        )


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

    ``data`` maps every name of :data:`CUBE` to an array with that variable's dims: numpy, or
    dask (the engine's lazy template of a store).
    """
    c = coords(model, path, resolution)
    variables = {}
    for name, var in CUBE.items():
        values = data[name] if hasattr(data[name], "dtype") else np.asarray(data[name])
        _check_dtype(name, values)
        variables[name] = xr.Variable(var.dims, values, variable_attrs(name, model.unit))
    return xr.Dataset(
        variables,
        coords=c,
        attrs=dataset_attrs(model, seed, len(c["path"]), backend, resolution),
    )


# ---------------------------------------------------------------------------------------------
# The zarr store of a run

ENGINE_GROUP = "riskengine"
# The cube's compressor: LZ4 after byte shuffling compresses the float32 sums about as well as
# zarr's default (zstd) and twice as fast, which matters where writing is a large share of a
# run (monthly resolution: 23 kB per path); blosc runs on one thread inside zarr's codec pool.
COMPRESSOR = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"}
BLOCK_DONE = f"{ENGINE_GROUP}/block_done"


class StoreError(ValueError):
    """A store that cannot be used as asked; ``str(err)`` is one line: the store and the fix."""


@dataclass(frozen=True)
class RunInfo:
    """What a store says about its run: the dataset attrs and the block layout."""

    attrs: dict
    block_paths: int
    done: np.ndarray  # bool, one per block

    @property
    def n_blocks(self) -> int:
        return len(self.done)


def estimated_bytes(model: CompiledModel, paths: int, resolution: str) -> int:
    """Uncompressed size of a cube's variables: an upper bound of its store's size on disk.

    Examples
    --------
    >>> from riskengine import compile_model, load_scenario
    >>> model = compile_model(load_scenario("truce_collapse"))
    >>> estimated_bytes(model, 1, "month")  # (84 + 7 + 4 + 1) float32 x 60 months + the weight
    23048
    """
    shapes = cube_shapes(model, paths, _n_periods(model, resolution))
    return sum(int(np.prod(s)) * np.dtype(CUBE[n].dtype).itemsize for n, s in shapes.items())


def is_store(path: Path) -> bool:
    """Whether ``path`` holds a run's store (complete or not), not another zarr store."""
    return (path / "zarr.json").is_file() and (path / BLOCK_DONE / "zarr.json").is_file()


def _lock_file(path: Path) -> Path:
    return path / ENGINE_GROUP / "zarr.json"


def holds_nothing_else(path: Path) -> bool:
    """Whether the directory ``path`` is empty but for a store's lock (see :func:`locked`)."""
    entries = list(path.iterdir())
    return not entries or (
        [e.name for e in entries] == [ENGINE_GROUP]
        and [e.name for e in (path / ENGINE_GROUP).iterdir()] == ["zarr.json"]
    )


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive write lock of the store in the existing directory ``path``.

    The lock is an ``flock`` on the metadata file of the store's ``riskengine`` group, the first
    file of a store (created here when absent) and never rewritten: a regular file opened for
    writing, as NFS's emulation of ``flock`` needs. The OS releases it when the process dies.
    """
    lock = _lock_file(path)
    if not lock.exists():
        zarr.open_group(path / ENGINE_GROUP, mode="a", zarr_format=3)
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"{path}: another run is writing this store; wait for it to finish or choose "
                "another --out"
            ) from None
        except OSError as exc:
            raise StoreError(
                f"{path}: cannot lock the store ({exc.strerror}); put --out on a file system with "
                "flock support (Lustre: mount with -o flock)"
            ) from None
        if os.fstat(fd).st_ino != lock.stat().st_ino:
            # Two runs created the lock file at once and this one locked the replaced copy.
            raise StoreError(f"{path}: another run is creating this store; choose another --out")
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def clear(path: Path) -> None:
    """Delete a store's contents but for its lock (held by the caller)."""
    keep = _lock_file(path)
    for child in [*path.iterdir(), *(path / ENGINE_GROUP).iterdir()]:
        if child in (keep, keep.parent):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_partial_writes(path: Path) -> None:
    """Delete the temporary files of chunk writes cut short (zarr writes ``KEY.UUID.partial``,
    then renames it to ``KEY``); the caller holds the lock."""
    for f in list(path.rglob("*.partial")):
        f.unlink()


def create_store(
    path: Path,
    model: CompiledModel,
    *,
    seed: int,
    paths: int,
    backend: str,
    resolution: str,
    block_paths: int,
) -> None:
    """Write a store's full layout: coords, attrs, empty variables chunked by block, no block done.

    ``path`` is an existing empty directory whose lock the caller holds.
    """
    import dask.array as da

    n_blocks = -(-paths // block_paths)
    root = zarr.open_group(path, mode="a", zarr_format=3)
    root.require_group(ENGINE_GROUP).create_array(
        "block_done",
        shape=(n_blocks,),
        chunks=(1,),
        dtype="uint8",
        fill_value=0,
        compressors=None,
        dimension_names=("block",),
        attributes={"block_paths": block_paths},
    )
    template = {
        name: da.zeros(shape, dtype=CUBE[name].dtype, chunks=(block_paths, *shape[1:]))
        for name, shape in cube_shapes(model, paths, _n_periods(model, resolution)).items()
    }
    ds = build_dataset(
        model, template, np.arange(paths), seed=seed, backend=backend, resolution=resolution
    )
    with warnings.catch_warnings():
        # Consolidated metadata is what lets plain `xr.open_zarr(path)` open the store without
        # a warning; zarr warns once, at writing, that v3 has no spec for it yet.
        warnings.filterwarnings(
            "ignore", "Consolidated metadata", category=zarr.errors.ZarrUserWarning
        )
        ds.to_zarr(
            path,
            mode="a",
            zarr_format=3,
            compute=False,
            consolidated=True,
            encoding={name: {"compressors": (BloscCodec(**COMPRESSOR),)} for name in CUBE},
        )


def write_block(path: Path, index: int, p0: int, data: dict[str, np.ndarray]) -> None:
    """Write one block's arrays into its region of the store, then record the block as done."""
    root = zarr.open_group(path, mode="r+", zarr_format=3, use_consolidated=False)
    for name in CUBE:
        _check_dtype(name, data[name])
        root[name][p0 : p0 + len(data[name])] = data[name]
    root[BLOCK_DONE][index] = 1


def read_run(path: Path) -> RunInfo:
    """The run recorded in the store at ``path``; :class:`StoreError` if it holds none."""
    try:
        root = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
        attrs = dict(root.attrs)
        flags = root[BLOCK_DONE]
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.BaseZarrError):
        raise StoreError(
            f"{path}: not a riskengine run store; give the path a run wrote with `riskengine run`"
        ) from None
    return RunInfo(attrs, int(flags.attrs["block_paths"]), flags[:] == 1)


def open_cube(path: Path) -> xr.Dataset:
    """Open a complete run's cube lazily; :class:`StoreError` if it is incomplete."""
    info = read_run(path)
    if not info.done.all():
        raise StoreError(
            f"{path}: the run is incomplete ({int(info.done.sum())} of {info.n_blocks} blocks "
            "written); finish it with `riskengine run ... --resume`"
        )
    return xr.open_zarr(path)
