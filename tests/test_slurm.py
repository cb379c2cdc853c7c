"""``riskengine run --cluster slurm`` on a real one-node SLURM cluster (munged, slurmctld and
slurmd on 127.0.0.1, started by the fixture): the cube equals a local run's bit for bit, also
after a worker job is cancelled mid-run and after the client is killed and the run resumed; a
job that never starts is reported within the time limit; the queue is empty after every test.

Starting SLURM needs root and Debian's slurm-wlm and munge (.ci/run installs them): elsewhere the
module skips, saying why, unless RISKENGINE_REQUIRE_SLURM is set (as .ci/run sets it once the
install worked), when it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cubes import BACKEND, assert_bitwise_equal, done_flags
from dask_procs import riskengine, wait_for
from slurm_procs import slurm_cluster, unavailable

import riskengine as rk
from riskengine.cluster import batch_cluster
from riskengine.store import read_run

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

SEED = 5
# Long enough that a kill lands mid-run: 60 blocks of 50 paths at horizon resolution.
LONG = ("--paths", 3000, "--block-paths", 50, "--resolution", "horizon", "--seed", SEED,
        "--backend", BACKEND)  # fmt: skip


@pytest.fixture(scope="module")
def slurm():
    why = unavailable()
    if why is not None:
        if os.environ.get("RISKENGINE_REQUIRE_SLURM"):
            pytest.fail(f"RISKENGINE_REQUIRE_SLURM is set, but {why}")
        pytest.skip(why)
    with slurm_cluster() as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def queue_empty_after(slurm):
    """Every test leaves the queue empty: nothing queued or running once the command is over."""
    yield
    # A cancelled job shows as COMPLETING for a moment while slurmd ends its processes.
    wait_for(lambda: not slurm.jobs(), 20, f"an empty queue (it holds {slurm.jobs()})", poll=0.2)


def _run(slurm, tmp_path, store, *args, **popen):
    env = {**slurm.env, **popen.pop("env", {})}
    return riskengine("run", "truce_collapse", "--out", store, "--cluster",
                      slurm.config(tmp_path), *args, env=env, **popen)  # fmt: skip


def _finished(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _local(truce_collapse):
    return rk.simulate(truce_collapse, 3000, SEED, backend=BACKEND, resolution="horizon")


def test_run_on_slurm_gives_the_local_cube(slurm, truce_collapse, tmp_path):
    store = tmp_path / "run.zarr"
    code, out, err = _finished(_run(slurm, tmp_path, store, "--paths", 2000, "--block-paths",
                                    137, "--resolution", "year", "--seed", SEED, "--backend",
                                    BACKEND, "--jobs", 2))  # fmt: skip
    assert code == 0, err
    assert "wrote 15 of 15 blocks" in out
    # The blocks ran on SLURM jobs: their workers' logs are in the config's log_directory.
    assert list((tmp_path / "jobs").glob("rk-*.err"))
    expected = rk.simulate(truce_collapse, 2000, SEED, backend=BACKEND, resolution="year")
    assert_bitwise_equal(rk.open_run(store), expected)


def test_batch_cluster_serves_the_python_api(slurm, truce_collapse, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
    with batch_cluster(slurm.config(tmp_path), jobs=1) as client:
        ds = rk.simulate(truce_collapse, 500, SEED, backend=BACKEND, client=client,
                         block_paths=100, resolution="year")  # fmt: skip
        jobs = slurm.jobs()
    # One job (jobs=1), named after the run (rk- and a token of its own), ran the blocks.
    assert len(jobs) == 1 and jobs[0][1] == "RUNNING" and jobs[0][2].startswith("rk-")
    expected = rk.simulate(truce_collapse, 500, SEED, backend=BACKEND, resolution="year")
    assert_bitwise_equal(ds, expected)


def test_a_cancelled_worker_job_leaves_a_complete_identical_cube(slurm, truce_collapse, tmp_path):
    store = tmp_path / "run.zarr"
    run = _run(slurm, tmp_path, store, *LONG, "--jobs", 2)
    try:
        wait_for(lambda: len(done_flags(store)) >= 4 or run.poll() is not None, 180,
                 "four blocks written")  # fmt: skip
        running = [job for job, state, _ in slurm.jobs() if state == "RUNNING"]
        slurm.scancel(running[0])
        done_at_cancel = len(done_flags(store))
        code, _, err = _finished(run)
    finally:
        run.kill()
    assert code == 0, err
    assert done_at_cancel < 60  # the job was cancelled in the middle of the run
    assert read_run(store).done.all()
    assert_bitwise_equal(rk.open_run(store), _local(truce_collapse))


def test_a_killed_client_leaves_no_job_and_resume_finishes(slurm, truce_collapse, tmp_path):
    store = tmp_path / "run.zarr"
    run = _run(slurm, tmp_path, store, *LONG)
    try:
        wait_for(lambda: len(done_flags(store)) >= 2 or run.poll() is not None, 180,
                 "two blocks written")  # fmt: skip
        assert slurm.jobs()
        run.send_signal(signal.SIGKILL)  # no handler runs: the watcher process cancels the jobs
        run.wait(timeout=30)
    finally:
        run.kill()
    wait_for(lambda: not slurm.jobs(), 30, "the killed client's jobs to be cancelled", poll=0.2)
    assert not read_run(store).done.all()
    code, _, err = _finished(_run(slurm, tmp_path, store, *LONG, "--resume"))
    assert code == 0, err
    assert_bitwise_equal(rk.open_run(store), _local(truce_collapse))


def test_workers_end_by_themselves_when_client_and_watcher_are_killed(slurm, tmp_path):
    """Inside a batch job SLURM kills the watcher along with the client: the worker jobs then
    end by themselves (a dask worker exits once it loses its scheduler)."""
    client = tmp_path / "client.py"
    client.write_text(
        "import time\nfrom riskengine.cluster import batch_cluster\n"
        f"with batch_cluster({str(slurm.config(tmp_path))!r}, jobs=1):\n"
        "    print('up', flush=True)\n    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, client], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **slurm.env})  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "up"
        assert [state for _, state, _ in slurm.jobs()] == ["RUNNING"]
        found = subprocess.run(["pgrep", "-f", f"kill -0 {proc.pid} "], capture_output=True,
                               text=True, check=True)  # fmt: skip
        for pid in found.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    wait_for(lambda: not slurm.jobs(), 30, "the orphaned workers to end", poll=0.2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_cancel_the_jobs(slurm, tmp_path, sig):
    store = tmp_path / "run.zarr"
    run = _run(slurm, tmp_path, store, *LONG)
    try:
        wait_for(lambda: len(done_flags(store)) >= 1 or run.poll() is not None, 180,
                 "a block written")  # fmt: skip
        run.send_signal(sig)
        code, _, err = _finished(run, timeout=60)
    finally:
        run.kill()
    assert code == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted; what was written is kept")
    # Cancelled before the command returned, not by the watcher (COMPLETING: slurmd is ending
    # the cancelled job's processes).
    assert not [job for job in slurm.jobs() if job[1] in ("PENDING", "RUNNING")]


@pytest.mark.parametrize(
    ("queue", "says"),
    [
        # queued, never started: a queue that is full for good
        ("down", r"no slurm job started a worker within 8 s \(jobs \d+ PENDING PartitionDown\)"),
        # refused by sbatch at once
        ("nosuch", r"the queue refused the job \(sbatch: .*Invalid partition name specified\)"),
    ],
)
def test_a_job_that_never_starts_is_reported_in_time(slurm, tmp_path, queue, says):
    start = time.monotonic()
    run = _run(slurm, tmp_path, tmp_path / "run.zarr", "--paths", 100, "--queue", queue,
               env={"RISKENGINE_START_SECONDS": "8"})  # fmt: skip
    code, _, err = _finished(run, timeout=120)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert re.fullmatch(rf"error: --cluster \S+: {says}; check --queue .*\n", err), err
    assert time.monotonic() - start < 60
    assert not (tmp_path / "run.zarr").exists()


def test_the_sbatch_recipe_runs_and_resubmitted_resumes(slurm, truce_collapse, tmp_path):
    """configs/cluster/sbatch.sh as a SLURM job that is the client (its workers are further
    jobs): the cube equals a local run's; the same command submitted again adds --resume and
    leaves the finished store as it was; with --overwrite it adds nothing and runs again."""
    from riskengine.kernels.targets import kernel_cache_dir

    recipe = Path(__file__).parents[1] / "configs" / "cluster" / "sbatch.sh"
    store = tmp_path / "run.zarr"
    expected = rk.simulate(truce_collapse, 300, SEED, backend=BACKEND, resolution="horizon")
    # The config's own kernel cache, filled from this process's (compiling again would take a
    # minute); the recipe's warm-up must use it, as the workers do.
    shutil.copytree(kernel_cache_dir(), tmp_path / "kernels")
    env = {**os.environ, **slurm.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RISKENGINE_CLUSTER": str(slurm.config(tmp_path, numba_cache=tmp_path / "kernels")),
           "RISKENGINE_JOBS": "1", "RISKENGINE_CORES": "1"}  # fmt: skip

    def submit(*extra: str) -> tuple[int, int, str]:
        log = tmp_path / f"client-{len(list(tmp_path.glob('client-*')))}.out"
        job = subprocess.run(
            ["sbatch", "--parsable", "--mem=2G", "--partition=debug", f"--output={log}", recipe,
             "run", "truce_collapse", "--paths", "300", "--resolution", "horizon", "--seed",
             str(SEED), "--backend", BACKEND, f"--out={store}", *extra],
            env=env, check=True, timeout=60, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        # (not sbatch --wait: it polls ever more slowly, up to half a minute)
        wait_for(lambda: job not in [j for j, *_ in slurm.jobs()], 180, f"job {job} to end")
        said = log.read_text()
        assert f"riskengine: kernels cached in {tmp_path / 'kernels'}" in said, said
        wrote = re.search(r"wrote (\d+) of (\d+) blocks", said)
        assert wrote, said
        return int(wrote[1]), int(wrote[2]), said

    written, blocks, said = submit()
    assert written == blocks, said
    assert_bitwise_equal(rk.open_run(store), expected)
    written, _, said = submit()  # the store exists: resumed, with nothing left to do
    assert written == 0, said
    written, _, said = submit("--overwrite")  # not --resume as well (they exclude each other)
    assert written == blocks, said
    assert_bitwise_equal(rk.open_run(store), expected)
