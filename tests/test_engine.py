"""The engine through the Python API: real zarr stores on disk, the local threaded scheduler.

Multi-process schedulers are in test_cluster.py, the command line in test_cli_run.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from cubes import BACKEND, assert_bitwise_equal, chunk_files, done_flags, snapshot
from kernel_checks import assert_block_equal

import riskengine as rk
from riskengine import reference
from riskengine.errors import RunError, StoreError
from riskengine.schema import CUBE
from riskengine.store import locked, read_run

SEED = 11
PATHS = 2000
BLOCK = 1000


@pytest.fixture(scope="module")
def oracle(truce_collapse):
    """The numpy reference model's cube, straight from riskengine.reference (240 paths)."""
    return reference.simulate(truce_collapse, 240, SEED, resolution="quarter")


@pytest.fixture(scope="module")
def run_store(truce_collapse, tmp_path_factory):
    """A complete run in a store: two blocks of 1000 paths."""
    store = tmp_path_factory.mktemp("run") / "run.zarr"
    rk.simulate(
        truce_collapse, PATHS, SEED, store=store, backend=BACKEND, block_paths=BLOCK,
        resolution="quarter",
    )  # fmt: skip
    return store


def test_reference_backend_through_the_engine_is_the_reference(truce_collapse, oracle, tmp_path):
    ds = rk.simulate(truce_collapse, 240, SEED, store=tmp_path / "r.zarr", backend="reference",
                     block_paths=70, resolution="quarter")  # fmt: skip
    assert_bitwise_equal(ds, oracle)


def test_cpu_run_through_the_engine_equals_the_reference(run_store, oracle):
    ds = rk.open_run(run_store).isel(path=slice(0, 240))
    assert_block_equal({n: ds[n].values for n in CUBE}, {n: oracle[n].values for n in CUBE})


def test_in_memory_run_equals_the_stored_run(truce_collapse, run_store):
    ds = rk.simulate(truce_collapse, PATHS, SEED, backend=BACKEND, block_paths=337,
                     resolution="quarter")  # fmt: skip
    assert_bitwise_equal(ds, xr.open_zarr(run_store))


def test_store_opens_with_plain_xarray_without_warnings(run_store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(run_store)
        assert float(ds.loss.sum()) > 0


def test_store_follows_the_cube_contract(run_store, truce_collapse):
    ds = xr.open_zarr(run_store)
    for name, var in CUBE.items():
        assert ds[name].dims == var.dims
        assert ds[name].dtype == var.dtype
        units = truce_collapse.unit if var.units == "economy" else var.units
        assert ds[name].attrs == {"units": units, "long_name": var.long_name}
    assert ds.path.dtype == np.int64 and ds.path.values.tolist() == list(range(PATHS))
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert str(ds.time.values[1])[:10] == "2027-03-01"  # quarters from the start month 2026-12
    assert ds.region.values.tolist() == list(truce_collapse.regions)
    assert ds.sector.values.tolist() == list(truce_collapse.sectors)
    assert ds.channel.values.tolist() == list(truce_collapse.channels)
    text = truce_collapse.scenario.source_text
    attrs = ds.attrs
    assert attrs["scenario"] == text
    assert attrs["scenario_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (attrs["seed"], attrs["paths"], attrs["backend"], attrs["resolution"]) == (
        SEED, PATHS, BACKEND, "quarter",
    )  # fmt: skip
    assert attrs["riskengine_version"] == rk.__version__
    created = dt.datetime.fromisoformat(attrs["created"])
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(hours=1)


def test_a_runs_paths_open_as_a_range(run_store, tmp_path):
    """open_run indexes a run's paths as a range, which holds no array of them (an index built
    from the stored coordinate held two copies: 157 MB at 10^7 paths), and selects as before."""
    import pandas as pd

    ds = rk.open_run(run_store)
    assert isinstance(ds.xindexes["path"].index, pd.RangeIndex)
    assert ds.path.dtype == np.int64 and ds.path.values.tolist() == list(range(PATHS))
    plain = xr.open_zarr(run_store)
    for pick in (7, [3, 1999], slice(10, 20)):
        assert_bitwise_equal(ds.sel(path=pick), plain.sel(path=pick))
    # a store whose paths are not 0 .. P - 1 is refused, naming them
    broken = tmp_path / "broken.zarr"
    shutil.copytree(run_store, broken)
    zarr.open_group(broken, mode="r+")["path"][-1] = 5
    with pytest.raises(rk.CubeError, match=r"broken\.zarr: the run's paths run from 0 to 5, not"):
        rk.open_run(broken)


def test_store_chunks_are_the_blocks(run_store):
    root = zarr.open_group(run_store, mode="r")
    assert root.metadata.zarr_format == 3
    for name in CUBE:
        assert root[name].chunks[0] == BLOCK
        assert root[name].chunks[1:] == root[name].shape[1:]
    info = read_run(run_store)
    assert info.block_paths == BLOCK and info.done.tolist() == [True, True]


def test_block_size_does_not_change_the_cube(truce_collapse, run_store, tmp_path):
    other = rk.simulate(truce_collapse, PATHS, SEED, store=tmp_path / "b.zarr", backend=BACKEND,
                        block_paths=337, resolution="quarter")  # fmt: skip
    assert_bitwise_equal(other, xr.open_zarr(run_store))


def test_first_paths_of_a_longer_run_are_the_shorter_run(truce_collapse, tmp_path):
    short = rk.simulate(truce_collapse, 1000, SEED, store=tmp_path / "s.zarr", backend=BACKEND,
                        resolution="horizon")  # fmt: skip
    long = rk.simulate(truce_collapse, 2000, SEED, store=tmp_path / "l.zarr", backend=BACKEND,
                       block_paths=300, resolution="horizon")  # fmt: skip
    assert_bitwise_equal(long.isel(path=slice(0, 1000)), short)


def test_coarser_resolution_sums_the_months(truce_collapse):
    month = rk.simulate(truce_collapse, 200, SEED, backend=BACKEND)
    year = rk.simulate(truce_collapse, 200, SEED, backend=BACKEND, resolution="year")
    assert year.sizes["time"] == 5
    np.testing.assert_array_equal(year.time.values, month.time.values[::12])
    for name in ("loss", "credit_loss", "severity", "tension"):
        monthly = month[name].astype(np.float64)
        summed = monthly.coarsen(time=12).sum().values
        # Each month is rounded to float32 before this sum (6e-8 of it), the year's sum once:
        # gains and losses of a node can cancel, so the bound is on the sum of magnitudes.
        magnitude = abs(monthly).coarsen(time=12).sum().values
        assert (abs(year[name].values - summed) <= 1e-6 * magnitude + 1e-6).all(), name
    np.testing.assert_array_equal(year.weight.values, month.weight.values)


def test_resume_runs_only_missing_blocks(truce_collapse, run_store, tmp_path):
    store = tmp_path / "r.zarr"
    shutil.copytree(run_store, store)
    # The state a run killed after block 1 leaves: block 0 never written.
    for rel in chunk_files(store, 0):
        (store / rel).unlink()
    (store / "riskengine" / "block_done" / "c" / "0").unlink()
    debris = store / "loss" / "c" / "0" / "0" / "0" / "0.5f0c.partial"  # a write cut short
    debris.parent.mkdir(parents=True, exist_ok=True)
    debris.write_bytes(b"half a chunk")
    kept = chunk_files(store, 1)
    with pytest.raises(StoreError, match=r"incomplete \(1 of 2 blocks"):
        rk.open_run(store)
    ds = rk.simulate(truce_collapse, PATHS, SEED, store=store, backend=BACKEND,
                     resolution="quarter", resume=True)  # fmt: skip
    assert done_flags(store) == {0, 1}
    assert not debris.exists()
    assert chunk_files(store, 1) == kept  # block 1 was not written again
    assert_bitwise_equal(ds, xr.open_zarr(run_store))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": SEED + 1}, "seed is 12 but the stored run has 11"),
        ({"paths": PATHS + 1}, "paths is 2001 but the stored run has 2000"),
        ({"resolution": "year"}, "resolution is 'year' but the stored run has 'quarter'"),
        ({"backend": "reference"}, "backend is 'reference' but the stored run has 'cpu'"),
        ({"block_paths": 50}, "block paths 50 but the store is cut into blocks of 1000"),
    ],
)
def test_resume_refuses_another_run(truce_collapse, run_store, change, message):
    before = {f: f.stat().st_mtime_ns for f in run_store.rglob("*")}
    args = {"paths": PATHS, "seed": SEED, "backend": BACKEND, "resolution": "quarter"} | change
    with pytest.raises(StoreError, match=message):
        rk.simulate(truce_collapse, store=run_store, resume=True, **args)
    assert {f: f.stat().st_mtime_ns for f in run_store.rglob("*")} == before


def test_resume_refuses_another_scenario(run_store, tmp_path):
    text = rk.load_scenario("truce_collapse").source_text.replace("p_off: 0.083 ", "p_off: 0.09 ")
    (tmp_path / "other.yaml").write_text(text)
    other = rk.load_scenario(tmp_path / "other.yaml")
    with pytest.raises(StoreError, match=r"cannot resume: the model's inputs differ"):
        rk.simulate(other, PATHS, SEED, store=run_store, backend=BACKEND, resolution="quarter",
                    resume=True)  # fmt: skip


def test_existing_store_is_kept_without_overwrite(truce_collapse, run_store, tmp_path):
    store = tmp_path / "o.zarr"
    shutil.copytree(run_store, store)
    before = snapshot(store)
    with pytest.raises(StoreError, match="a run store exists there; use --resume"):
        rk.simulate(truce_collapse, 10, 1, store=store, backend=BACKEND)
    assert snapshot(store) == before
    ds = rk.simulate(truce_collapse, 10, 1, store=store, backend=BACKEND, overwrite=True)
    assert ds.sizes["path"] == 10 and ds.attrs["seed"] == 1
    assert_bitwise_equal(ds, rk.simulate(truce_collapse, 10, 1, backend=BACKEND))


def test_a_directory_that_is_not_a_store_is_never_touched(truce_collapse, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a riskengine store"):
        rk.simulate(truce_collapse, 10, 1, store=tmp_path, backend=BACKEND, overwrite=True)
    assert [f.name for f in tmp_path.iterdir()] == ["notes.txt"]


def test_another_zarr_store_is_never_replaced(truce_collapse, tmp_path):
    store = tmp_path / "other.zarr"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_zarr(store, zarr_format=3, consolidated=False)
    before = snapshot(store)
    with pytest.raises(StoreError, match="not a riskengine store"):
        rk.simulate(truce_collapse, 10, 1, store=store, backend=BACKEND, overwrite=True)
    assert snapshot(store) == before


def test_a_refused_run_leaves_an_empty_directory_empty(truce_collapse, tmp_path):
    with pytest.raises(StoreError, match="GB free"):
        rk.simulate(truce_collapse, 10**13, 1, store=tmp_path, backend=BACKEND)
    assert list(tmp_path.iterdir()) == []
    ds = rk.simulate(truce_collapse, 10, 1, store=tmp_path, backend=BACKEND)  # empty: accepted
    assert ds.sizes["path"] == 10


def test_a_locked_store_is_refused(truce_collapse, run_store):
    with locked(run_store), pytest.raises(StoreError, match="another process is using this store"):
        rk.simulate(truce_collapse, PATHS, SEED, store=run_store, backend=BACKEND,
                    resolution="quarter", resume=True)  # fmt: skip


def test_a_store_larger_than_the_free_disk_is_refused(truce_collapse, tmp_path):
    with pytest.raises(StoreError, match="GB free; use a coarser --resolution"):
        rk.simulate(truce_collapse, 10**13, 1, store=tmp_path / "a" / "big.zarr", backend=BACKEND)
    assert list(tmp_path.iterdir()) == []  # neither the store nor its new parent remain


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ({"paths": 0}, RunError, "paths must be a positive integer, got 0"),
        ({"seed": -1}, RunError, r"seed must lie in \[0, 2\*\*64\)"),
        ({"resolution": "week"}, RunError, "resolution 'week' is unknown"),
        ({"backend": "gpu"}, RunError, "backend 'gpu' is unknown"),
        ({"block_paths": 0}, RunError, "block_paths must be a positive integer"),
        ({"resume": True}, RunError, "resume and overwrite apply to a store"),
    ],
)
def test_bad_arguments(truce_collapse, args, error, message):
    full = {"paths": 10, "seed": 1, "backend": BACKEND} | args
    with pytest.raises(error, match=message):
        rk.simulate(truce_collapse, **full)


def test_open_run_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(StoreError, match="no such run store"):
        rk.open_run(tmp_path / "missing.zarr")
    with pytest.raises(StoreError, match="not a zarr store written by `riskengine run`"):
        rk.open_run(tmp_path)
    not_cube = tmp_path / "not_cube.zarr"
    xr.Dataset({"x": ("path", np.zeros(3))}).to_zarr(not_cube, zarr_format=3, consolidated=False)
    with pytest.raises(rk.CubeError, match=r"not_cube\.zarr: not a riskengine cube: .* 'loss'"):
        rk.open_run(not_cube)


# --- in-memory runs: one preallocated cube, refused when it cannot fit -------------------------


def test_an_in_memory_run_that_cannot_fit_is_refused(truce_collapse, monkeypatch):
    from riskengine import engine

    monkeypatch.setattr(engine, "available_memory", lambda: 100 * 2**20)
    cube = engine.estimated_bytes(truce_collapse, 20_000, "month")
    assert cube > 100 * 2**20
    with pytest.raises(RunError, match=r"needs about 0\.46\d GB but 0\.105 GB .* give a store"):
        rk.simulate(truce_collapse, 20_000, SEED, backend=BACKEND)
    # the same run at horizon resolution fits
    assert rk.simulate(truce_collapse, 20_000, SEED, backend=BACKEND, resolution="horizon")


def test_an_in_memory_run_peaks_at_its_cube_plus_a_block(tmp_path):
    """The blocks are written into one preallocated cube (they were once concatenated into a
    second copy, doubling the peak). Measured in a fresh process: the resident set's peak over
    its level before the run."""
    code = """
import resource, riskengine as rk
from riskengine.engine import estimated_bytes
model = rk.compile_model(rk.load_scenario("truce_collapse"))
rk.simulate(model, 64, 1)  # kernel loaded, buffers warm
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
ds = rk.simulate(model, 20_000, 1, block_paths=1000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cube, block = (estimated_bytes(model, n, "month") for n in (20_000, 1000))
print(after - before, cube, block)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown, cube, block = map(int, out.stdout.split())
    assert grown < cube + 4 * block + 100 * 2**20, (grown, cube, block)
