"""Test helpers: a real dask cluster (scheduler and workers started from their command line on
127.0.0.1) and ``riskengine run`` subprocesses. Every process is killed on the way out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
COLUMNS = 200  # the terminal width the subprocesses' rich output is laid out for


@dataclass
class Cluster:
    scheduler_file: Path
    workers: list[subprocess.Popen]


def wait_for(condition, timeout: float, what: str, poll: float = 0.02) -> None:
    """Poll ``condition()`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(poll)


@contextmanager
def dask_cluster(folder: Path, n_workers: int = 2) -> Iterator[Cluster]:
    """``dask scheduler`` and ``n_workers`` ``dask worker`` processes (one thread each, no nanny,
    so that killing a worker's process kills the worker), all on 127.0.0.1."""
    from distributed import Client

    scheduler_file = folder / "scheduler.json"
    log = (folder / "dask.log").open("w")
    procs: list[subprocess.Popen] = []
    common = {"stdout": log, "stderr": subprocess.STDOUT, "cwd": folder}
    try:
        procs.append(subprocess.Popen([
            BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", scheduler_file,
        ], **common))  # fmt: skip
        wait_for(scheduler_file.exists, START_TIMEOUT, "the scheduler file")
        for i in range(n_workers):
            procs.append(subprocess.Popen([
                BIN / "dask", "worker", "--scheduler-file", scheduler_file, "--nthreads", "1",
                "--nworkers", "1", "--no-dashboard", "--no-nanny", "--host", "127.0.0.1",
                "--local-directory", folder / f"worker{i}",
            ], **common))  # fmt: skip
        if n_workers:
            with Client(scheduler_file=str(scheduler_file), timeout=START_TIMEOUT) as client:
                client.wait_for_workers(n_workers, timeout=START_TIMEOUT)
        yield Cluster(scheduler_file, procs[1:])
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait(timeout=30)
        log.close()


def riskengine(*args, **popen) -> subprocess.Popen:
    """``riskengine ARGS`` as a subprocess, its output captured as text (``env`` adds to the
    environment)."""
    env = {**os.environ, **popen.pop("env", {}), "COLUMNS": str(COLUMNS)}
    return subprocess.Popen(
        [BIN / "riskengine", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )
