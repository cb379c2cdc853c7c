"""Run a scenario on a SLURM cluster through dask-jobqueue.

The dask scheduler runs in this process (on the login node); each SLURM job starts one
single-threaded dask worker process per core; ``riskengine run --scheduler`` then runs the
blocks on them and shows the progress bar and the risk table. Workers write their blocks straight
into the store, so ``--out`` must be on a file system the compute nodes share (scratch)::

    pip install dask-jobqueue
    python slurm.py --jobs 16 --cores 32 --memory 120GB --walltime 02:00:00 -- \\
        truce_collapse --paths 100000000 --resolution year --out /scratch/$USER/truce_1e8.zarr

Everything after ``--`` goes to ``riskengine run`` (``--command study``: to ``riskengine study``,
whose points and blocks run on the same workers). If the allocation ends before the run,
run the same command again with ``--resume`` added: only the missing blocks are computed.
``--print-job-script`` prints the SLURM job script and exits (check it before submitting).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    cut = argv.index("--") if "--" in argv else len(argv)
    own, run_args = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=4, help="SLURM jobs (nodes) to start")
    p.add_argument("--cores", type=int, default=32, help="cores per job: worker processes")
    p.add_argument("--memory", default="120GB", help="memory per job")
    p.add_argument("--walltime", default="02:00:00", help="time limit per job")
    p.add_argument("--queue", default=None, help="SLURM partition (-p)")
    p.add_argument("--account", default=None, help="SLURM account (-A)")
    p.add_argument(
        "--numba-cache",
        default=str(Path.home() / ".riskengine" / "numba-cache"),
        help="shared folder for compiled kernels (NUMBA_CACHE_DIR of the workers)",
    )
    p.add_argument("--command", choices=("run", "study"), default="run",
                   help="riskengine command to run on the cluster")  # fmt: skip
    p.add_argument("--print-job-script", action="store_true", help="print it and exit")
    return p.parse_args(own), run_args


def main(argv: list[str]) -> int:
    from dask_jobqueue import SLURMCluster

    args, run_args = parse(argv)
    cluster = SLURMCluster(
        cores=args.cores,
        # One single-threaded worker process per core: the engine runs one block per worker
        # thread on one core (numba's own threads are set to 1 inside a block).
        processes=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        job_script_prologue=[
            f"export NUMBA_CACHE_DIR={args.numba_cache}",
            "export OMP_NUM_THREADS=1",
        ],
    )
    with cluster:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        if not run_args:
            print(f"give the riskengine {args.command} arguments after --", file=sys.stderr)
            return 2
        os.makedirs(args.numba_cache, exist_ok=True)
        cluster.scale(jobs=args.jobs)
        riskengine = shutil.which("riskengine") or "riskengine"
        command = [riskengine, args.command, *run_args, "--scheduler", cluster.scheduler_address]
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
