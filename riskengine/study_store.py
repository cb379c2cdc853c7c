"""A study's zarr store: claiming it, writing finished points, resuming, opening.

A study store is a zarr v3 group that plain ``xarray.open_zarr`` opens: one row per parameter
point along ``sample`` (each point's parameter values and risk figures, see
:mod:`riskengine.studies`), chunked by :data:`SAMPLE_CHUNK` samples, with the study's settings
in its attrs; and a subgroup ``riskengine`` holding ``sample_done`` (one uint8 per point).

Only the client writes (points arrive from the workers as small dicts of figures), so a chunk
shared by several points is never written twice at once. A point is written, then recorded done
(zarr writes a chunk by rename, so a killed client leaves each point either done with its
figures or not done); a resumed study runs only the points not done. The lock is the run store's
(:func:`riskengine.store.locked`).

This module imports numpy, xarray, zarr and riskengine's errors and store modules.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from riskengine.errors import StoreError
from riskengine.store import ENGINE_GROUP, claimed_directory, clear, refuse_clash

__all__ = ["SAMPLE_CHUNK", "claim_study", "is_study", "open_study", "write_points"]

SAMPLE_CHUNK = 64
SAMPLE_DONE = f"{ENGINE_GROUP}/sample_done"
# The attrs a resumed study must share with the stored one.
IDENTITY = ("study_sha256",)


def is_study(path: Path) -> bool:
    """Whether ``path`` holds a study's store (complete or not)."""
    return (path / "zarr.json").is_file() and (path / SAMPLE_DONE / "zarr.json").is_file()


def _create(path: Path, template: xr.Dataset) -> None:
    n = template.sizes["sample"]
    root = zarr.open_group(path, mode="a", zarr_format=3)
    root.require_group(ENGINE_GROUP).create_array(
        "sample_done", shape=(n,), chunks=(SAMPLE_CHUNK,), dtype="uint8", fill_value=0,
        compressors=None, dimension_names=("sample",),
    )  # fmt: skip
    encoding = {name: {"chunks": (SAMPLE_CHUNK, *v.shape[1:])} for name, v in template.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", category=UserWarning)
        template.to_zarr(path, mode="a", zarr_format=3, compute=False, consolidated=False,
                         encoding=encoding)  # fmt: skip
        # The parameters' values are known before any point runs: written now.
        for name in ("value", "unit_value"):
            root[name][:] = template[name].values
        zarr.consolidate_metadata(path, zarr_format=3)


def _done(path: Path) -> np.ndarray:
    root = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
    return root[SAMPLE_DONE][:] == 1


@contextmanager
def claim_study(
    path: Path, template: xr.Dataset, *, resume: bool, overwrite: bool
) -> Iterator[np.ndarray]:
    """Claim ``path`` for a study laid out as ``template`` (whose figures are placeholders) and
    hold its lock; yields which points are already done (all False for a new study).

    Raises
    ------
    StoreError
        A store that exists (without ``resume`` or ``overwrite``), is locked, is not a study, or
        holds another study on ``resume``.
    """
    with claimed_directory(path, resume, is_study):
        refuse_clash(path, is_study(path), resume=resume, overwrite=overwrite, what="study")
        if resume:
            stored = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False).attrs
            for key in IDENTITY:
                if stored.get(key) != template.attrs[key]:
                    raise StoreError(
                        f"{path}: cannot resume: the study differs from the stored one (its "
                        "scenario, a file it reads, the samples, paths, seed, design, levels or "
                        "backend); resume with the same arguments or start over with --overwrite"
                    )
            done = _done(path)
        else:
            clear(path)
            _create(path, template)
            done = np.zeros(template.sizes["sample"], dtype=bool)
        yield done


def write_points(path: Path, rows: dict[int, dict[str, np.ndarray]]) -> None:
    """Write finished points (sample index -> figures), then record them done."""
    if not rows:
        return
    root = zarr.open_group(path, mode="r+", zarr_format=3, use_consolidated=False)
    order = sorted(rows)
    for name in rows[order[0]]:
        array = root[name]
        block = array[order[0] : order[-1] + 1]  # the span read once, its points set, written
        for i in order:
            block[i - order[0]] = rows[i][name]
        array[order[0] : order[-1] + 1] = block
    flags = root[SAMPLE_DONE]
    for i in order:
        flags[i] = 1


def open_study(path: str | Path) -> xr.Dataset:
    """A finished study's results, in memory (they are small: one row per point).

    Raises
    ------
    StoreError
        No study store there, or an unfinished study.
    """
    path = Path(path)
    if not is_study(path):
        raise StoreError(
            f"{path}: not a study store; give the STUDY.zarr folder `riskengine study` wrote"
        )
    done = _done(path)
    if not done.all():
        raise StoreError(
            f"{path}: the study is incomplete ({int(done.sum())} of {done.size} points done); "
            "finish it with `riskengine study ... --resume`"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
        return xr.open_zarr(path).load()
