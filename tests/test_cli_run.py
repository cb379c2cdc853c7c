"""``riskengine run`` as a real subprocess: bad input, the end-of-run table, and SIGKILL mid-run
followed by ``--resume``."""

from __future__ import annotations

import io
import os
import signal

import pytest
from cubes import BACKEND, assert_bitwise_equal, chunk_files, done_flags, snapshot
from dask_procs import COLUMNS, riskengine, wait_for
from rich.console import Console

import riskengine as rk
from riskengine.errors import StoreError
from riskengine.store import locked, read_run

pytestmark = pytest.mark.timeout(300)


def _has_gpu() -> bool:
    from riskengine.kernels import cuda

    return cuda.available()


NO_GPU = pytest.mark.skipif(_has_gpu(), reason="a CUDA device is present: --backend cuda runs")

SEED = 7


def finish(proc, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A complete store of 20 paths, seed 7, yearly."""
    store = tmp_path_factory.mktemp("existing") / "run.zarr"
    rk.simulate("truce_collapse", 20, SEED, store=store, backend=BACKEND, resolution="year")
    return store


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch", "--paths", "10"], "nosuch: no such scenario file or built-in name"),
        (["truce_collapse", "--paths", "0"], "paths must be a positive integer, got 0"),
        (["truce_collapse", "--paths", "-3"], "paths must be a positive integer, got -3"),
        (["truce_collapse", "--paths", "10", "--backend", "fpga"], "backend 'fpga' is unknown"),
        pytest.param(["truce_collapse", "--paths", "10", "--backend", "cuda"],
                     "no CUDA device found; use --backend cpu", marks=NO_GPU),
        (["truce_collapse", "--paths", "10", "--resolution", "week"], "resolution 'week'"),
        (["truce_collapse", "--paths", "10", "--seed", "-1"], "seed must lie in [0, 2**64)"),
        (["truce_collapse", "--paths", "10", "--workers", "1", "--scheduler", "x:1"],
         "--workers and --scheduler exclude each other"),
        (["truce_collapse", "--paths", "10", "--resume"], "there is no run to resume"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_creates_nothing(tmp_path, args, message):
    out = tmp_path / "new.zarr"
    # click keeps an option's last value: a --backend in args overrides the first one.
    code, _, err = finish(riskengine("run", "--backend", BACKEND, *args, "--out", out))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not out.exists()


def test_unwritable_store_exits_2(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run.zarr"
    code, _, err = finish(riskengine("run", "truce_collapse", "--paths", 10, "--out", out))
    assert code == 2 and err.count("\n") == 1
    assert "cannot create the store (Not a directory); choose a writable --out" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "a run store exists there; use --resume to finish it, --overwrite to replace it"),
        (["--resume", "--seed", "8"], "cannot resume: seed is 8 but the stored run has 7"),
        (["--resume", "--paths", "21"], "cannot resume: paths is 21 but the stored run has 20"),
        (["--resume", "--resolution", "month"], "cannot resume: resolution is 'month'"),
        pytest.param(["--overwrite", "--backend", "cuda"], "no CUDA device found", marks=NO_GPU),
        (["--overwrite", "--paths", str(10**13)], "GB free; use a coarser --resolution"),
    ],
)
def test_an_existing_store_is_never_touched_by_a_refused_run(existing, args, message):
    before = snapshot(existing)
    same = ["--paths", 20, "--seed", SEED, "--backend", BACKEND, "--resolution", "year"]
    code, _, err = finish(riskengine("run", "truce_collapse", *same, *args, "--out", existing))
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert snapshot(existing) == before


def test_a_store_locked_by_another_process_is_refused(existing):
    with locked(existing):
        code, _, err = finish(riskengine(
            "run", "truce_collapse", "--paths", 20, "--seed", SEED, "--backend", BACKEND,
            "--resolution", "year", "--resume", "--out", existing,
        ))  # fmt: skip
    assert code == 2 and "another process is using this store" in err


def test_run_on_local_worker_processes_ends_with_the_risk_table(existing, tmp_path):
    out = tmp_path / "run.zarr"
    code, stdout, err = finish(riskengine(
        "run", "truce_collapse", "--paths", 20, "--seed", SEED, "--backend", BACKEND,
        "--resolution", "year", "--out", out, "--workers", 2, "--block-paths", 7,
    ))  # fmt: skip
    assert code == 0, err
    # 20 paths x ((84 loss + 6 banks' credit + 4 severity + 1 tension) float32 x 5 years +
    # float64 weight + (7 + 7 + 6) float64 summaries + 6 x 15 float32 credit by segment)
    assert "about 48.6 kB before compression" in stdout
    ds = rk.open_run(out)
    assert_bitwise_equal(ds, rk.open_run(existing))
    table = Console(width=COLUMNS, file=io.StringIO())
    table.print(rk.risk_table(ds, levels=(0.99,)))
    table.print(rk.formatting.bank_table(ds, levels=(0.99,)))
    assert table.file.getvalue() in stdout


def one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def test_sigkill_mid_run_then_resume_gives_the_same_cube(tmp_path, truce_collapse):
    paths, block_paths = 8000, 50
    n_blocks = paths // block_paths
    store = tmp_path / "run.zarr"
    args = ["run", "truce_collapse", "--paths", paths, "--seed", SEED, "--backend", BACKEND,
            "--resolution", "horizon", "--out", store]  # fmt: skip
    # On one core, the blocks run one at a time: the kill lands mid-run on any machine.
    first = riskengine(*args, "--block-paths", block_paths, preexec_fn=one_core)
    try:
        wait_for(lambda: len(done_flags(store)) >= 3 or first.poll() is not None, 120,
                 "three blocks written")  # fmt: skip
        with pytest.raises(StoreError, match="another process is using this store"), locked(store):
            pass  # the running run holds the store's lock
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        first.kill()
    done = done_flags(store)
    assert 3 <= len(done) < n_blocks
    kept = {i: chunk_files(store, i) for i in done}
    code, stdout, err = finish(riskengine(*args, "--resume"))
    assert code == 0, err
    to_go = paths - len(done) * block_paths
    assert f"resuming: {len(done)} of {n_blocks} blocks already done; {to_go:,} paths" in stdout
    assert f"wrote {n_blocks - len(done)} of {n_blocks} blocks" in stdout
    assert {i: chunk_files(store, i) for i in done} == kept  # done blocks were not rewritten
    assert read_run(store).done.all()
    assert not list(store.rglob("*.partial"))  # no debris of writes cut short by the kill
    expected = rk.simulate(truce_collapse, paths, SEED, backend=BACKEND, resolution="horizon")
    assert_bitwise_equal(rk.open_run(store), expected)
