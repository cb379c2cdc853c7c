"""The engine on real dask clusters of processes: LocalCluster, and a scheduler and workers
started from the dask command line on 127.0.0.1; a worker killed in the middle of a run."""

from __future__ import annotations

import re
import signal
import subprocess

import pytest
from cubes import BACKEND, assert_bitwise_equal, done_flags
from dask_procs import BIN, dask_cluster, riskengine, wait_for

import riskengine as rk
from riskengine.cluster import batch_spec
from riskengine.store import read_run

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

SEED = 5
PATHS = 2000


@pytest.fixture(scope="module")
def threaded(truce_collapse, tmp_path_factory):
    """The run on the local threaded scheduler, the others' yardstick."""
    store = tmp_path_factory.mktemp("threads") / "run.zarr"
    return rk.simulate(truce_collapse, PATHS, SEED, store=store, backend=BACKEND,
                       block_paths=137, resolution="year")  # fmt: skip


@pytest.mark.parametrize(("n_workers", "block_paths"), [(1, 200), (2, 91)])
def test_local_cluster_of_processes_gives_the_threaded_cube(
    truce_collapse, threaded, tmp_path, n_workers, block_paths
):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        ds = rk.simulate(truce_collapse, PATHS, SEED, store=tmp_path / "run.zarr",
                         backend=BACKEND, client=client, block_paths=block_paths,
                         resolution="year")  # fmt: skip
        in_memory = rk.simulate(truce_collapse, PATHS, SEED, backend=BACKEND, client=client,
                                block_paths=block_paths, resolution="year")  # fmt: skip
        assert len(client.nthreads()) == n_workers
    assert_bitwise_equal(ds, threaded)
    assert_bitwise_equal(in_memory, threaded)


def test_scheduler_and_workers_from_the_dask_cli_give_the_threaded_cube(
    truce_collapse, threaded, tmp_path
):
    from distributed import Client

    with dask_cluster(tmp_path) as cluster:
        with Client(scheduler_file=str(cluster.scheduler_file)) as client:
            ds = rk.simulate(truce_collapse, PATHS, SEED, store=tmp_path / "run.zarr",
                             backend=BACKEND, client=client, block_paths=250,
                             resolution="year")  # fmt: skip
            workers = client.run(lambda dask_worker: dask_worker.address)
        assert len(workers) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in workers)
    assert_bitwise_equal(ds, threaded)


def test_a_worker_killed_mid_run_leaves_a_complete_identical_cube(truce_collapse, tmp_path):
    paths, block_paths = 8000, 50
    store = tmp_path / "run.zarr"
    with dask_cluster(tmp_path) as cluster:
        run = riskengine(
            "run", "truce_collapse", "--paths", paths, "--block-paths", block_paths, "--out",
            store, "--seed", SEED, "--backend", BACKEND, "--resolution", "horizon",
            "--scheduler", cluster.scheduler_file,
        )  # fmt: skip
        try:
            wait_for(lambda: len(done_flags(store)) >= 2 or run.poll() is not None, 120,
                     "two blocks written")  # fmt: skip
            done_at_kill = len(done_flags(store))
            cluster.workers[0].send_signal(signal.SIGKILL)
            _, err = run.communicate(timeout=240)
        finally:
            run.kill()
        assert cluster.workers[0].wait(timeout=10) == -signal.SIGKILL
    assert run.returncode == 0, err
    assert done_at_kill < paths // block_paths  # the worker died in the middle of the run
    assert read_run(store).done.all()
    expected = rk.simulate(truce_collapse, paths, SEED, backend=BACKEND, resolution="horizon")
    assert_bitwise_equal(rk.open_run(store), expected)


def test_job_script_starts_one_single_threaded_worker_per_core():
    pytest.importorskip("dask_jobqueue")
    done = subprocess.run(
        [BIN / "riskengine", "job-script", "--cluster", "slurm", "--cores", "8", "--memory",
         "16GB", "--queue", "compute"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert "#SBATCH --cpus-per-task=8" in script and "#SBATCH -p compute" in script
    assert "--nthreads 1" in script and "--nworkers 8" in script
    assert "export OMP_NUM_THREADS=1" in script
    # The workers run the client's Python (riskengine's environment), one process per core.
    assert re.search(rf"^{re.escape(str(BIN))}/python\S* -m distributed.cli.dask_worker ", script,
                     flags=re.M)  # fmt: skip


@pytest.mark.parametrize("kind", ["slurm", "pbs", "lsf"])
def test_every_builtin_cluster_config_is_valid(kind):
    spec = batch_spec(kind, jobs=3)
    assert spec.kind == kind and spec.jobs == 3 and spec.cores == 32


@pytest.mark.parametrize(
    ("config", "options", "says"),
    [
        ("kind: slurm\nnodes: 3\n", [], r"slurm\.yaml: unknown key 'nodes'; the keys are kind, "),
        ("kind: slurm\nmemory: lots\n", [], r"slurm\.yaml: memory 'lots': give an amount"),
        ("kind: sge\n", [], r"slurm\.yaml: kind 'sge': give one of slurm, pbs, lsf"),
        ("cores: 4\n", [], r"slurm\.yaml: not a cluster config \(a mapping with kind: "),
        ('kind: slurm\nprologue: ["a\\nb"]\n', [], r"prologue \['a\\nb'\]: give a list of one"),
        ("kind: slurm\n", ["--jobs", "0"], r"--jobs 0: give a whole number from 1"),
        ("kind: slurm\n", ["--walltime", "2h; rm"], r"--walltime '2h; rm': give one word"),
        ("kind: slurm\n", ["--workers", "1"], r"--workers and --cluster exclude each other"),
        (None, ["--jobs", "2"], r"--jobs sizes the jobs of --cluster; add --cluster slurm"),
    ],
)
def test_a_bad_cluster_config_is_one_line_and_exit_2(tmp_path, config, options, says):
    """Refused before anything starts: no job is submitted, no store is made."""
    cluster = []
    if config is not None:
        (tmp_path / "slurm.yaml").write_text(config)
        cluster = ["--cluster", tmp_path / "slurm.yaml"]
    done = subprocess.run(
        [BIN / "riskengine", "run", "truce_collapse", "--paths", "10", "--out",
         tmp_path / "run.zarr", *cluster, *options],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert re.search(says, done.stderr), done.stderr
    assert not (tmp_path / "run.zarr").exists()
