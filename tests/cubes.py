"""Test helpers for cubes: bitwise comparison and a store's block files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from riskengine.schema import CUBE

# Backend of the engine tests: the CPU kernel, the engine's default (the numpy reference takes
# the same path through the engine and is compared with it bitwise in test_engine.py).
BACKEND = "cpu"
COORDS = ("path", "time", "sector", "region", "channel")


def assert_bitwise_equal(a: xr.Dataset, b: xr.Dataset) -> None:
    """Every cube variable has the same dims, dtype and bytes; the coordinates are equal."""
    for name in CUBE:
        x, y = a[name], b[name]
        assert x.dims == y.dims, name
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert np.asarray(x.values).tobytes() == np.asarray(y.values).tobytes(), name
    for name in COORDS:
        assert a[name].values.tolist() == b[name].values.tolist(), name


def chunk_files(store: Path, index: int) -> dict[str, int]:
    """Inode of every chunk file of block ``index`` (zarr writes a chunk by rename, so a chunk
    rewritten since has a new inode)."""
    out = {}
    for name in CUBE:
        chunk = store / name / "c" / str(index)  # a file (1-d weight) or a folder of them
        for f in [chunk, *chunk.rglob("*")] if chunk.exists() else []:
            if f.is_file():
                out[str(f.relative_to(store))] = f.stat().st_ino
    return out


def done_flags(store: Path) -> set[int]:
    """Indices of the blocks recorded complete (one chunk file of ``riskengine/block_done``; zarr
    writes it as ``INDEX.UUID.partial`` first, then renames it)."""
    chunks = store / "riskengine" / "block_done" / "c"
    names = [f.name for f in chunks.iterdir()] if chunks.is_dir() else []
    return {int(n) for n in names if n.isdigit()}


def snapshot(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` with its bytes: equal snapshots mean nothing was touched."""
    return {f: f.read_bytes() for f in folder.rglob("*") if f.is_file()}
