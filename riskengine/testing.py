"""Test helpers: prove code stays lazy on dask-backed cubes; write a cube to a zarr store.

This module imports dask, and xarray and zarr where a helper needs them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import dask
import xarray as xr

__all__ = ["CountingScheduler", "raise_if_dask_computes", "write_cube"]


class CountingScheduler:
    """A dask scheduler that counts its computes and raises past ``max_computes``.

    It runs the graph with dask's synchronous scheduler, so a permitted compute still works.
    """

    def __init__(self, max_computes: int = 0):
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"dask computed {self.total_computes} times; at most {self.max_computes} allowed"
            )
        return dask.get(dsk, keys, **kwargs)


def raise_if_dask_computes(max_computes: int = 0) -> Any:
    """Context manager: any dask compute beyond ``max_computes`` raises ``RuntimeError``.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(4, chunks=2)
    >>> with raise_if_dask_computes():
    ...     y = x + 1  # building a graph computes nothing
    >>> with raise_if_dask_computes():
    ...     y.sum().compute()
    Traceback (most recent call last):
    ...
    RuntimeError: dask computed 1 times; at most 0 allowed
    """
    return dask.config.set(scheduler=CountingScheduler(max_computes))


def write_cube(ds: xr.Dataset, path: Path) -> None:
    """Write an in-memory cube as a zarr v3 store that plain ``xarray.open_zarr`` opens.

    Consolidated metadata lets ``open_zarr`` open it without a warning; zarr's own note that
    consolidated metadata is not yet in the v3 spec is silenced, as the engine does.
    """
    from zarr.errors import ZarrUserWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZarrUserWarning)
        ds.to_zarr(path, zarr_format=3, consolidated=True)
