"""Test helpers: a one-node SLURM cluster on 127.0.0.1, from Debian's packages (``slurm-wlm``,
``munge``), started as root with a configuration of its own in a temporary folder: its own
ports, state, munge key and socket, so that nothing of a system SLURM is read or touched. The
daemons run in the foreground as this process's children and are killed on the way out, after
every job is cancelled.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dask_procs import wait_for

PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
START_TIMEOUT = 60.0


def unavailable() -> str | None:
    """Why a SLURM cluster cannot be started here, or None."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} not found); as root: "
            "apt-get install slurm-wlm munge (.ci/run does)"
        )
    if os.geteuid() != 0:
        return "starting munged, slurmctld and slurmd needs root"
    return None


@dataclass
class Slurm:
    folder: Path
    env: dict[str, str]  # SLURM_CONF: what sbatch, squeue and scancel need to find the cluster

    def jobs(self) -> list[tuple[str, str, str]]:
        """(job id, state, job name) of every job in the queue."""
        out = subprocess.run(
            ["squeue", "--noheader", "--format", "%i %T %j"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return [tuple(line.split()) for line in out.splitlines() if line.strip()]

    def scancel(self, *args: str) -> None:
        subprocess.run(["scancel", *args], env={**os.environ, **self.env}, check=True, timeout=30)

    def config(self, folder: Path, **settings: object) -> Path:
        """A riskengine cluster config (YAML) for this cluster, ``settings`` on top."""
        values = {
            "kind": "slurm",
            "jobs": 2,
            "cores": 1,
            "memory": "2GB",
            "walltime": "00:30:00",
            "queue": "debug",
            "host": "127.0.0.1",
            "log_directory": str(folder / "jobs"),
            **settings,
        }
        path = folder / "slurm-test.yaml"
        path.write_text("".join(f"{k}: {v}\n" for k, v in values.items()), encoding="utf-8")
        return path


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _memory_mb() -> int:
    """Most of this machine's memory, for the node's RealMemory."""
    with open("/proc/meminfo", encoding="ascii") as fh:
        total_kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    return int(total_kb / 1024 * 0.8)


def _configuration(folder: Path, host: str) -> str:
    ctld_port, d_port = _free_ports(2)
    return f"""\
ClusterName=riskengine-tests
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
# A partition that takes jobs and never runs them: a queue that is full for good.
PartitionName=down Nodes={host} MaxTime=INFINITE State=DOWN
"""


@contextmanager
def slurm_cluster() -> Iterator[Slurm]:
    """munged, slurmctld and slurmd on 127.0.0.1, with partitions ``debug`` (up, the default)
    and ``down`` (accepts jobs, never starts them)."""
    # Short: munge's socket path must fit a Unix socket address (108 bytes).
    folder = Path(tempfile.mkdtemp(prefix="rk-slurm-"))
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_configuration(folder, host), encoding="ascii")
    slurm = Slurm(folder, {"SLURM_CONF": str(conf)})
    env = {**os.environ, **slurm.env}
    log = (folder / "daemons.log").open("w")
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run(["mungekey", "--create", "--keyfile", folder / "munge.key"], check=True,
                       capture_output=True, timeout=30)  # fmt: skip
        daemons = [
            ["munged", "--foreground", "--force", f"--socket={folder}/munge.socket",
             f"--key-file={folder}/munge.key", f"--pid-file={folder}/munged.pid",
             f"--seed-file={folder}/munged.seed", f"--log-file={folder}/munged.log"],
            ["slurmctld", "-D", "-i"],  # -i: ignore state from an earlier run (there is none)
            ["slurmd", "-D"],
        ]  # fmt: skip
        for command in daemons:
            procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
            if command[0] == "munged":
                wait_for((folder / "munge.socket").exists, START_TIMEOUT, "munged's socket")

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "--noheader", "--partition", "debug", "--format", "%T"],
                                 env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
            return out.stdout.strip() == "idle"

        wait_for(node_idle, START_TIMEOUT, "the SLURM node to be idle", poll=0.5)
        yield slurm
    finally:
        if procs:
            subprocess.run(["scancel", "--full", "--user", "root"], env=env, timeout=30,
                           capture_output=True, check=False)  # fmt: skip
            time.sleep(1)
        for p in reversed(procs):
            p.kill()
            p.wait(timeout=30)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
