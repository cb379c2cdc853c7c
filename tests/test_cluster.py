"""The engine on real dask clusters of processes: LocalCluster, and a scheduler and workers
started from the dask command line on 127.0.0.1; a worker killed in the middle of a run."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("kind", ["slurm", "pbs", "lsf"])
def test_a_config_file_takes_what_it_leaves_out_from_its_kinds_builtin(tmp_path, kind):
    (tmp_path / "site.yaml").write_text(f"kind: {kind}\nqueue: compute\nmemory: 64G\n")
    spec = batch_spec(tmp_path / "site.yaml", cores=16)
    builtin = batch_spec(kind)
    assert (spec.queue, spec.memory, spec.cores) == ("compute", "64G", 16)
    assert spec.walltime == builtin.walltime and spec.log_directory == builtin.log_directory
    assert spec.walltime == ("02:00" if kind == "lsf" else "02:00:00")  # LSF's -W: hours:minutes


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
        (
            "kind: lsf\n",
            ["--walltime", "02:00:00"],
            r"--walltime '02:00:00': give a lsf time limit such as 02:00 \(hours:minutes\)",
        ),
        (
            "kind: slurm\ninterface: nope0\n",
            [],
            r"slurm\.yaml: the slurm cluster's scheduler cannot start \('nope0' is not a valid "
            r"network interface.*\); check interface and host",
        ),
        (
            "kind: slurm\nhost: 192.0.2.77\n",
            [],
            r"slurm\.yaml: host '192\.0\.2\.77': the scheduler cannot listen there \(Cannot "
            r"assign requested address\); give an address of this machine",
        ),
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


def _without_queue_commands(tmp_path):
    """An environment whose PATH holds riskengine's Python and the shell, and no sbatch."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    return {"PATH": f"{BIN}:{bin_dir}"}


def test_no_sbatch_here_is_one_line_and_exit_2_at_once(tmp_path):
    """A login node without sbatch (on PATH): said at once, not after the start time limit."""
    (tmp_path / "slurm.yaml").write_text("kind: slurm\nhost: 127.0.0.1\ncores: 1\n")
    run = riskengine("run", "truce_collapse", "--paths", "10", "--out", tmp_path / "run.zarr",
                     "--cluster", tmp_path / "slurm.yaml",
                     env={**_without_queue_commands(tmp_path),
                          "RISKENGINE_START_SECONDS": "100"})  # fmt: skip
    try:
        _, err = run.communicate(timeout=90)  # well within the 100 s it would otherwise wait
    finally:
        run.kill()
    assert run.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(r"the queue refused the job \(sbatch: No such file or directory; run on a "
                     r"node that submits jobs \(the login node\)\)", err), err  # fmt: skip
    assert not (tmp_path / "run.zarr").exists()


@pytest.mark.parametrize(
    ("command", "store", "says"),
    [
        (
            ["run", "truce_collapse", "--paths", "10"],
            "run",
            r"run\.zarr: a run store exists there; use --resume to finish it, --overwrite",
        ),
        (["run", "truce_collapse", "--paths", "0"], None, r"paths must be a positive integer"),
        (
            ["run", "truce_collapse", "--paths", "10", "--resume"],
            None,
            r"run\.zarr: there is no run to resume; drop --resume",
        ),
        (
            ["run", "truce_collapse", "--paths", "10", "--resume", "--overwrite"],
            "run",
            r"resume and overwrite exclude each other",
        ),
        (
            ["study", "truce_collapse", "--samples", "2", "--paths", "10"],
            "run",
            r"run\.zarr: exists and is not a riskengine store",
        ),
        (
            ["compare", "truce_collapse", "--paths", "10", "--off", "rare_earths"],
            "run",
            r"run\.zarr: exists and is not a riskengine store",
        ),
    ],
)
def test_the_arguments_and_store_are_checked_before_jobs_are_submitted(
    tmp_path, command, store, says
):
    """Without sbatch, a command that got as far as the cluster would say so: these fail first,
    and the existing store is left as it was."""
    out = tmp_path / "run.zarr"
    if store == "run":
        rk.simulate("truce_collapse", 3, SEED, store=out, resolution="horizon")
    before = sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else None
    (tmp_path / "slurm.yaml").write_text("kind: slurm\nhost: 127.0.0.1\ncores: 1\n")
    done = subprocess.run(
        [BIN / "riskengine", *command, "--out", out, "--cluster", tmp_path / "slurm.yaml"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **_without_queue_commands(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert re.search(says, done.stderr), done.stderr
    after = sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else None
    assert after == before


def test_ctrl_c_stays_a_keyboard_interrupt_whoever_imported_dask_jobqueue_first():
    """dask_jobqueue's import makes Ctrl-C a silent sys.exit() (exit code 0): undone also when
    the user's code imported it before riskengine did."""
    pytest.importorskip("dask_jobqueue")
    code = (
        "import signal, dask_jobqueue\n"
        "from riskengine.cluster import batch_spec, job_script\n"
        "assert signal.getsignal(signal.SIGINT).__module__ == 'dask_jobqueue.runner'\n"
        "job_script(batch_spec('slurm'))\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
    )
    done = subprocess.run([BIN / "python", "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
