"""A run's zarr store: everything about it, from claiming a directory to opening a finished cube.

A run's store is a zarr v3 group that plain ``xarray.open_zarr(path)`` opens:

- the cube's variables, its per-path summaries (``loss_total``, ``credit_loss_total``) and
  coordinates at the root (:mod:`riskengine.schema`), chunked along
  ``path`` exactly as the run's blocks (so that concurrent block writes never share a chunk), the
  dataset attrs of the contract, and consolidated metadata (written once, at creation; block
  writes never change metadata);
- a subgroup ``riskengine`` (ignored by ``open_zarr``) holding ``block_done``, one uint8 per
  block, uncompressed, one chunk per block, set to 1 after the block's data is written. zarr
  writes each chunk by rename, so a block killed at any instant is either recorded complete with
  all its data or not recorded at all.

A run holds an exclusive ``flock`` on the ``riskengine`` group's metadata file while it writes
(released by the OS when the process dies, even by SIGKILL), so two runs cannot write one store at
once. Stores are directories on a local or shared (NFS, Lustre, GPFS) file system.

The engine calls :func:`claim` (checks, lock, creation or resume), :func:`write_block` from its
block tasks, and :func:`open_run` at the end; every reader of a finished run opens it through
:func:`open_run` (the command line through :func:`reading`, which also holds the lock shared).

This module imports numpy, xarray, zarr and riskengine's errors and schema modules (dask.array
lazily, for the template of a new store).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from riskengine.errors import CubeError, InputError, StoreError
from riskengine.schema import (
    VARIABLES,
    build_dataset,
    check_dtype,
    cube_shapes,
    estimated_bytes,
    n_periods,
    validate,
)

if TYPE_CHECKING:
    from riskengine.compile import CompiledModel

__all__ = [
    "ENGINE_GROUP",
    "Claim",
    "RunInfo",
    "check_out",
    "claim",
    "claimed_directory",
    "clear",
    "is_store",
    "locked",
    "open_run",
    "read_run",
    "reading",
    "refuse_clash",
    "write_block",
]

ENGINE_GROUP = "riskengine"
# The cube's compressor: LZ4 after byte shuffling compresses the float32 sums about as well as
# zarr's default (zstd) and twice as fast, which matters where writing is a large share of a
# run (monthly resolution: 23 kB per path); blosc runs on one thread inside zarr's codec pool.
COMPRESSOR = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"}
BLOCK_DONE = f"{ENGINE_GROUP}/block_done"


@dataclass(frozen=True)
class RunInfo:
    """What a store says about its run: the dataset attrs and the block layout."""

    attrs: dict
    block_paths: int
    done: np.ndarray  # bool, one per block

    @property
    def n_blocks(self) -> int:
        return len(self.done)


@dataclass(frozen=True)
class Claim:
    """A store claimed for a run: its block size and which blocks are already written."""

    path: Path
    block_paths: int
    done: np.ndarray  # bool, one per block


def is_store(path: Path) -> bool:
    """Whether ``path`` holds a run's store (complete or not), not another zarr store."""
    return (path / "zarr.json").is_file() and (path / BLOCK_DONE / "zarr.json").is_file()


def _lock_file(path: Path) -> Path:
    return path / ENGINE_GROUP / "zarr.json"


def _holds_nothing_else(path: Path) -> bool:
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
    Readers (:func:`reading`) hold the same lock shared, so a run cannot replace a store that
    is being read, nor a report read one being written.
    """
    lock = _lock_file(path)
    try:
        if not lock.exists():
            zarr.open_group(path / ENGINE_GROUP, mode="a", zarr_format=3)
        fd = os.open(lock, os.O_RDWR)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot write there ({exc.strerror}); choose a writable --out"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"{path}: another process is using this store (a run writing it, or a report "
                "reading it); wait for it to finish or choose another --out"
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


def _remove_partial_writes(path: Path) -> None:
    """Delete the temporary files of chunk writes cut short (zarr writes ``KEY.UUID.partial``,
    then renames it to ``KEY``); the caller holds the lock."""
    for f in list(path.rglob("*.partial")):
        f.unlink()


def _check_disk(path: Path, needed: int) -> None:
    where = next(p for p in (path, *path.parents) if p.exists())
    free = shutil.disk_usage(where).free
    if needed > free:
        raise StoreError(
            f"{path}: the store needs about {needed / 1e9:.3g} GB but {where} has "
            f"{free / 1e9:.3g} GB free; use a coarser --resolution, fewer --paths or another --out"
        )


# Runs of more paths open without an index on ``path`` (select paths with isel there).
PATH_INDEX_PATHS = 10**7
# Paths per chunk of the ``path`` coordinate (8 MiB): written chunk by chunk at creation, so
# that no count of paths needs the coordinate in memory.
PATH_CHUNK = 2**20


def _template(
    model: CompiledModel, *, seed: int, paths: int, backend: str, resolution: str, block_paths: int
) -> xr.Dataset:
    """The store's cube as a lazy template (dask zeros chunked by block, no ``path`` values):
    built before anything on disk is touched, so that a run too large to lay out fails first."""
    import dask.array as da

    template = {
        name: da.zeros(shape, dtype=VARIABLES[name].dtype, chunks=(block_paths, *shape[1:]))
        for name, shape in cube_shapes(model, paths, n_periods(model, resolution)).items()
    }
    return build_dataset(model, template, None, seed=seed, backend=backend, resolution=resolution)


def _create(path: Path, template: xr.Dataset, block_paths: int) -> None:
    """Write a store's full layout: coords, attrs, empty variables chunked by block, no block done.

    ``path`` is an existing empty directory whose lock the caller holds.
    """
    paths = template.sizes["path"]
    root = zarr.open_group(path, mode="a", zarr_format=3)
    root.require_group(ENGINE_GROUP).create_array(
        "block_done",
        shape=(-(-paths // block_paths),),
        chunks=(1,),
        dtype="uint8",
        fill_value=0,
        compressors=None,
        dimension_names=("block",),
        attributes={"block_paths": block_paths},
    )
    with warnings.catch_warnings():
        # Consolidated metadata is what lets plain `xr.open_zarr(path)` open the store without
        # a warning; zarr warns once, at writing, that v3 has no spec for it yet.
        warnings.filterwarnings(
            "ignore", "Consolidated metadata", category=zarr.errors.ZarrUserWarning
        )
        template.to_zarr(
            path,
            mode="a",
            zarr_format=3,
            compute=False,
            consolidated=False,
            encoding={name: {"compressors": (BloscCodec(**COMPRESSOR),)} for name in VARIABLES},
        )
        coordinate = root.create_array(
            "path",
            shape=(paths,),
            chunks=(min(paths, PATH_CHUNK),),
            dtype="int64",
            compressors=(BloscCodec(**COMPRESSOR),),
            dimension_names=("path",),
        )
        for p0 in range(0, paths, PATH_CHUNK):
            coordinate[p0 : p0 + PATH_CHUNK] = np.arange(p0, min(p0 + PATH_CHUNK, paths))
        zarr.consolidate_metadata(path, zarr_format=3)


def read_run(path: Path) -> RunInfo:
    """The run recorded in the store at ``path``; :class:`StoreError` if it holds none."""
    try:
        root = zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)
        attrs = dict(root.attrs)
        flags = root[BLOCK_DONE]
        block_paths = flags.attrs["block_paths"]
        done = flags[:] == 1
    except (OSError, KeyError, ValueError, TypeError, zarr.errors.BaseZarrError):
        raise StoreError(
            f"{path}: not a riskengine run store; give the path a run wrote with `riskengine run`"
        ) from None
    paths = attrs.get("paths")
    if not (
        isinstance(paths, int)
        and isinstance(block_paths, int)
        and 0 < block_paths
        and 0 < paths
        and len(done) == -(-paths // block_paths)
    ):
        raise StoreError(
            f"{path}: the store's metadata is damaged (paths {paths!r}, block paths "
            f"{block_paths!r}, {len(done)} blocks); start the run over with --overwrite"
        )
    return RunInfo(attrs, block_paths, done)


def _check_resumable(path: Path, asked: dict, block_paths: int | None) -> RunInfo:
    """The store's run and the asked one must be the same run; returns the store's run."""
    info = read_run(path)
    for key, value in asked.items():
        stored = info.attrs.get(key)
        if stored != value:
            if key == "inputs_sha256":
                raise StoreError(
                    f"{path}: cannot resume: the model's inputs differ from the stored run's (the "
                    "scenario or a file it reads, such as an economy or exposure table, changed); "
                    "restore them or start over with --overwrite"
                )
            raise StoreError(
                f"{path}: cannot resume: {key} is {value!r} but the stored run has "
                f"{stored!r}; resume with the stored run's values or start over with --overwrite"
            )
    if block_paths is not None and block_paths != info.block_paths:
        raise StoreError(
            f"{path}: cannot resume: block paths {block_paths} but the store is cut into blocks "
            f"of {info.block_paths}; drop --block-paths"
        )
    return info


def refuse_clash(
    path: Path, exists: bool, *, resume: bool, overwrite: bool, what: str, resumable: bool = True
) -> None:
    """Refuse a store of this kind (``what``: run, study, comparison) that exists without
    ``resume`` or ``overwrite``, and a ``resume`` with nothing to resume."""
    if exists and not (resume or overwrite):
        fix = "use --resume to finish it, --overwrite" if resumable else "use --overwrite"
        raise StoreError(
            f"{path}: a {what} store exists there; {fix} to replace it, or another --out"
        )
    if resume and not exists:
        raise StoreError(f"{path}: there is no {what} to resume; drop --resume to start one")


def _refuse_foreign(path: Path, is_mine: Callable[[Path], bool]) -> None:
    """Refuse a ``path`` that is a file, or a folder holding something other than this kind of
    store."""
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is not a store directory; choose another --out")
    if path.exists() and not is_mine(path) and not _holds_nothing_else(path):
        raise StoreError(f"{path}: exists and is not a riskengine store; choose another --out")


def check_out(
    path: Path,
    is_mine: Callable[[Path], bool] = is_store,
    *,
    resume: bool,
    overwrite: bool,
    what: str = "run",
    resumable: bool = True,
) -> None:
    """The checks a claim of ``path`` makes, without taking it: a run, a study and the command
    line refuse a store before they start anything costly (a model's compile, a batch
    cluster's jobs). The claim checks again, under the lock.

    Raises
    ------
    StoreError
        As the claim would: a file or another kind of folder there, a store without ``resume``
        or ``overwrite``, or nothing to resume.
    """
    if resume and overwrite:
        raise StoreError("resume and overwrite exclude each other; choose one")
    _refuse_foreign(path, is_mine)
    exists = is_mine(path)
    refuse_clash(path, exists, resume=resume, overwrite=overwrite, what=what, resumable=resumable)


@contextmanager
def claimed_directory(
    path: Path, resume: bool, is_mine: Callable[[Path], bool] = is_store
) -> Iterator[None]:
    """Hold the store's lock, creating its directory (and missing parents) if needed. What this
    call created is removed again if an error comes before the store itself (``is_mine``: a
    run's, or a study's) is written."""
    _refuse_foreign(path, is_mine)
    created = [p for p in (path, *path.parents) if not p.exists()]
    if created:
        if resume:
            raise StoreError(f"{path}: there is no run to resume; drop --resume to start one")
        try:
            path.mkdir(parents=True, exist_ok=True)  # exists: another run was faster; see lock
        except OSError as exc:
            raise StoreError(
                f"{path}: cannot create the store ({exc.strerror}); choose a writable --out"
            ) from None
    lock_group = path / ENGINE_GROUP
    had_lock = lock_group.exists()
    try:
        with locked(path):
            try:
                yield
            except BaseException:
                if not is_mine(path) and created:  # remove only what this call made
                    shutil.rmtree(path)
                elif not is_mine(path) and not had_lock:
                    shutil.rmtree(lock_group)
                raise
    finally:
        for folder in created[1:]:  # parents, deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


@contextmanager
def claim(
    path: Path,
    model: CompiledModel,
    *,
    seed: int,
    paths: int,
    backend: str,
    resolution: str,
    block_paths: int | None,
    default_block_paths: int,
    resume: bool,
    overwrite: bool,
    before_writing: Callable[[], None] = lambda: None,
) -> Iterator[Claim]:
    """Claim the store at ``path`` for a run and hold its lock until the block writes are done.

    A new run (or ``overwrite``) gets a freshly created store cut into blocks of ``block_paths``
    (``default_block_paths`` when None); ``resume`` gets the interrupted run's blocks, after
    checking that the store holds the same run (scenario, seed, paths, resolution, backend and
    block size where one is asked). Every check that can fail (the store's state, the disk's free
    space, ``before_writing``: the engine checks its backend there) runs before anything in the
    store is changed, so a refused run leaves an existing store as it was.

    Raises
    ------
    StoreError
        A store that exists (without ``resume`` or ``overwrite``), is locked by another run,
        does not match on ``resume``, cannot be created, or would not fit on the disk.
    """
    with claimed_directory(path, resume):
        refuse_clash(path, is_store(path), resume=resume, overwrite=overwrite, what="run")
        if resume:
            asked = {
                "inputs_sha256": model.identity,
                "seed": seed,
                "paths": paths,
                "resolution": resolution,
                "backend": backend,
            }
            info = _check_resumable(path, asked, block_paths)
            bp, done = info.block_paths, info.done
            todo = int((~done).sum())
            _check_disk(path, estimated_bytes(model, paths, resolution) * todo // len(done))
            before_writing()
            _remove_partial_writes(path)  # left by the writers of the interrupted run
        else:
            bp = block_paths or default_block_paths
            _check_disk(path, estimated_bytes(model, paths, resolution))
            template = _template(
                model, seed=seed, paths=paths, backend=backend, resolution=resolution,
                block_paths=bp,
            )  # fmt: skip
            before_writing()
            # Every check that can fail has passed: only now is an existing store replaced.
            clear(path)
            _create(path, template, bp)
            done = np.zeros(-(-paths // bp), dtype=bool)
        yield Claim(path, bp, done)


def write_block(path: Path, index: int, p0: int, data: dict[str, np.ndarray]) -> None:
    """Write one block's arrays into its region of the store, then record the block as done."""
    root = zarr.open_group(path, mode="r+", zarr_format=3, use_consolidated=False)
    for name in VARIABLES:
        check_dtype(name, data[name])
        root[name][p0 : p0 + len(data[name])] = data[name]
    root[BLOCK_DONE][index] = 1


def _raised_reading_chunks(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside zarr or its codecs (a damaged or unreadable chunk)."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name.split(".")[0] in ("zarr", "numcodecs"):
            return True
        tb = tb.tb_next
    return False


@contextmanager
def reading(path: str | Path) -> Iterator[xr.Dataset]:
    """Open a run (:func:`open_run`) and hold its lock shared while the caller reads it.

    While the block runs, no run can replace or resume the store (they need the lock
    exclusively); a run writing it makes this refuse at once. An error raised by zarr or its
    codecs while reading (a damaged chunk) becomes a :class:`StoreError` naming the store. A
    store on a read-only file system is read without the lock.

    Raises
    ------
    StoreError
        As :func:`open_run`; another run is writing the store; a chunk cannot be read.
    """
    path = Path(path).absolute()
    ds = open_run(path)
    fd = None
    if is_store(path):
        try:
            fd = os.open(_lock_file(path), os.O_RDONLY)
        except OSError:
            fd = None  # cannot open the lock file: read without it
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreError(
                    f"{path}: a run is writing this store; wait for it to finish"
                ) from None
            except OSError:
                pass  # no flock on this file system: read without it
    try:
        yield ds
    except InputError:
        raise
    except Exception as exc:
        if not _raised_reading_chunks(exc):
            raise
        raise StoreError(
            f"{path}: a chunk of the cube cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}); the store is "
            "damaged: run it again with --overwrite"
        ) from None
    finally:
        if fd is not None:
            os.close(fd)


def _range_of_paths(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its ``path`` coordinate (a run's ``0 .. paths - 1``, checked at both ends)
    replaced by a range index, which holds no array of paths."""
    n = ds.sizes["path"]
    if ds["path"].dtype != np.int64:
        raise CubeError(f"the run's paths are {ds['path'].dtype}, not int64")
    ends = ds["path"].isel(path=[0, -1]).values if n else np.array([0, -1])
    if ends.tolist() != [0, n - 1]:
        raise CubeError(f"the run's paths run from {ends[0]} to {ends[-1]}, not 0 to {n - 1}")
    attrs = ds["path"].attrs
    int64 = np.dtype(np.int64)
    index = xr.indexes.PandasIndex(pd.RangeIndex(n, name="path"), "path", coord_dtype=int64)
    ds = ds.drop_vars("path").assign_coords(xr.Coordinates.from_xindex(index))
    ds["path"].attrs.update(attrs)
    return ds


def open_run(path: str | Path) -> xr.Dataset:
    """Open a run's cube lazily, after the checks every reader of a run goes through.

    ``path`` is a store written by a run (which must be complete: finish an interrupted one with
    ``--resume``) or a cube written with ``Dataset.to_zarr`` (for example the reference's); the
    dataset must follow the cube's contract (:func:`riskengine.schema.validate`). Nothing of the
    cube is read but its labels. A run's paths are ``0 .. paths - 1`` by construction: their
    index is a range (``pandas.RangeIndex``, no memory whatever the paths; ``sel`` as usual). A
    cube written otherwise has its ``path`` coordinate loaded and indexed up to
    :data:`PATH_INDEX_PATHS` paths and no index beyond (select paths by position there).

    Raises
    ------
    StoreError
        No such store, no zarr store, or an incomplete run.
    CubeError
        A zarr store that holds no riskengine cube.

    Examples
    --------
    >>> import tempfile
    >>> from riskengine import simulate
    >>> store = tempfile.mkdtemp() + "/run.zarr"
    >>> _ = simulate("truce_collapse", 4, seed=1, store=store, backend="reference",
    ...              resolution="horizon")
    >>> ds = open_run(store)
    >>> ds.attrs["paths"], ds.loss.dims
    (4, ('path', 'time', 'sector', 'region'))
    """
    path = Path(path)
    if not path.is_dir():
        raise StoreError(
            f"{path}: no such run store; give the RUN.zarr folder that `riskengine run` wrote"
        )
    run = is_store(path)
    if run:
        info = read_run(path)
        if not info.done.all():
            raise StoreError(
                f"{path}: the run is incomplete ({int(info.done.sum())} of {info.n_blocks} "
                "blocks written); finish it with `riskengine run ... --resume`"
            )
    try:
        with warnings.catch_warnings():
            # A cube written without consolidated metadata (not by a run) opens all the same.
            warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
            ds = xr.open_zarr(path, create_default_indexes=False)
        # Indexes are built in memory: the labels always; a run's paths as a range (an index
        # built from the stored coordinate took two copies of it: 157 MB at 10^7 paths); other
        # cubes' paths up to PATH_INDEX_PATHS (10^9 of them would take 16 GB).
        for name in ("time", "sector", "region", "channel"):
            if name in ds.coords:
                ds = ds.set_xindex(name)
        if run and "path" in ds.coords:
            ds = _range_of_paths(ds)
        elif "path" in ds.coords and ds.sizes["path"] <= PATH_INDEX_PATHS:
            ds = ds.set_xindex("path")
    except CubeError as exc:
        raise CubeError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, zarr.errors.BaseZarrError) as exc:
        raise StoreError(
            f"{path}: not a zarr store written by `riskengine run` ({type(exc).__name__}); give "
            "the RUN.zarr folder a run wrote"
        ) from None
    try:
        return validate(ds)
    except CubeError as exc:
        raise CubeError(f"{path}: {exc}") from None
