"""Dask clusters for a run: connect to an existing scheduler, start local worker processes, or
start workers as batch jobs (SLURM, PBS, LSF) through dask-jobqueue.

Every wait has a deadline and ends in one line: a scheduler address or file that answers
nothing, answers something else (an HTTP server), or has no workers, and a batch job that never
starts (a full or closed queue) are reported as an :class:`~riskengine.errors.InputError` naming
the option and the fix, instead of a hang or a traceback.

A batch cluster's jobs end with it: on success, on error and on Ctrl-C (the cluster cancels
them), and when the client process is killed outright (a watcher process, started in a session
of its own, cancels every job of the run's unique job name once the client is gone).

This module imports the standard library, yaml and riskengine's errors and inputs modules;
``distributed`` and ``dask_jobqueue`` when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from riskengine.errors import InputError
from riskengine.inputs import parse_yaml, read_text

__all__ = [
    "BATCH_KINDS",
    "CONNECT_SECONDS",
    "START_SECONDS",
    "WORKERS_SECONDS",
    "BatchSpec",
    "batch_cluster",
    "batch_spec",
    "builtin_batch_configs",
    "connect",
    "job_script",
    "local_cluster",
    "usable_cores",
]

# How long to wait for a scheduler to answer, for its first worker, and for a batch cluster's
# first job to start a worker (the environment variables RISKENGINE_CONNECT_SECONDS,
# RISKENGINE_WORKERS_SECONDS and RISKENGINE_START_SECONDS override them).
CONNECT_SECONDS = 20.0
WORKERS_SECONDS = 60.0
START_SECONDS = 600.0


def _seconds(variable: str, default: float) -> float:
    """A time limit from the environment variable ``variable``, else ``default``."""
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e6:
        raise InputError(f"{variable}={text!r}: give a number of seconds above 0")
    return value


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a SLURM or container allocation)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _address(scheduler: str) -> str:
    """The scheduler's address: ``scheduler`` itself, or the one in the scheduler file it names."""
    path = Path(scheduler)
    if not path.is_file():
        if "://" not in scheduler and ":" not in scheduler:
            raise InputError(
                f"--scheduler {scheduler}: neither a scheduler file nor an address; give "
                "tcp://host:port or the file `dask scheduler --scheduler-file` wrote"
            )
        return scheduler
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        address = info["address"]
        if not isinstance(address, str) or "://" not in address:
            raise ValueError
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise InputError(
            f"--scheduler {scheduler}: not a dask scheduler file (JSON with the scheduler's "
            "address); give the file `dask scheduler --scheduler-file` wrote, or tcp://host:port"
        ) from None
    return address


def connect(scheduler: str, timeout: float | None = None, workers_timeout: float | None = None):
    """A ``distributed.Client`` of the scheduler at ``scheduler`` (an address or a scheduler
    file) that has at least one worker.

    ``timeout`` (default :data:`CONNECT_SECONDS`, or ``$RISKENGINE_CONNECT_SECONDS``) bounds the
    wait for the scheduler's answer, ``workers_timeout`` (:data:`WORKERS_SECONDS`,
    ``$RISKENGINE_WORKERS_SECONDS``) the wait for its first worker.

    Raises
    ------
    InputError
        No scheduler answers there within ``timeout`` seconds (nothing listening, a listener that
        never answers, a server speaking another protocol), or it has no worker after
        ``workers_timeout`` seconds.
    """
    from distributed import Client

    timeout = timeout or _seconds("RISKENGINE_CONNECT_SECONDS", CONNECT_SECONDS)
    workers_timeout = workers_timeout or _seconds("RISKENGINE_WORKERS_SECONDS", WORKERS_SECONDS)
    address = _address(scheduler)
    outcome: dict = {}

    def attempt() -> None:
        try:
            outcome["client"] = Client(address, timeout=f"{timeout}s")
        except BaseException as exc:
            outcome["error"] = exc

    # A listener that accepts and never answers can hold distributed's handshake past its own
    # timeout: the attempt runs in a daemon thread, and is given up on at the deadline.
    thread = threading.Thread(target=attempt, name="riskengine-connect", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)
    if thread.is_alive() or "error" in outcome:
        why = (
            f"nothing answered within {timeout:g} s"
            if thread.is_alive()
            else f"{type(outcome['error']).__name__}: {outcome['error']}".splitlines()[0][:200]
        )
        raise InputError(
            f"--scheduler {scheduler}: no dask scheduler answers at {address} ({why}); give the "
            "address (tcp://host:port) or scheduler file of a running `dask scheduler`"
        )
    client = outcome["client"]
    try:
        client.wait_for_workers(1, timeout=workers_timeout)
    except (TimeoutError, OSError):
        client.close()
        raise InputError(
            f"--scheduler {scheduler}: the scheduler at {address} has no worker after "
            f"{workers_timeout:g} s; start workers (`dask worker {address}`) and run again"
        ) from None
    return client


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[object]:
    """A client of ``workers`` local worker processes of one thread each, shut down on exit.

    Raises
    ------
    InputError
        ``workers`` is not a positive integer, or more than this machine's cores.
    """
    cores = usable_cores()
    if not isinstance(workers, int) or workers <= 0:
        raise InputError(f"--workers must be a positive integer, got {workers!r}")
    if workers > cores:
        raise InputError(
            f"--workers {workers}: this machine gives this process {cores} cores, and a worker "
            f"runs one block on one core; give at most {cores} (or --scheduler for a cluster)"
        )
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


# ---- Batch clusters: workers as SLURM, PBS or LSF jobs, through dask-jobqueue ----------------

# dask-jobqueue's cluster class for each kind, and the shell command that cancels every job of a
# name: the watcher's last resort when the client is killed (the cluster itself cancels its jobs
# by id). Only SLURM is tested (tests/test_slurm.py); PBS and LSF go through the same code.
BATCH_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster"}
_CANCEL_BY_NAME = {
    "slurm": "scancel --name {name}",
    "pbs": "qselect -N {name} | xargs -r qdel",
    "lsf": "bkill -J {name} 0",
}
# How to ask the queue why a run's jobs wait (SLURM only; elsewhere the message says less).
_QUEUE_STATE = {"slurm": "squeue --noheader --name {name} --format '%i %T %r'"}
# The settings the command line overrides, and their options (for messages).
_OPTIONS = {
    "jobs": "--jobs",
    "cores": "--cores",
    "memory": "--memory",
    "walltime": "--walltime",
    "queue": "--queue",
}
# Values that go into a job script unquoted: one word, no quotes, no line breaks.
_WORD = re.compile(r"[A-Za-z0-9_.:@+/~=,%-]+")
_MEMORY = re.compile(r"\d+(\.\d+)?([kKmMgGtTpP]i?B?|B)")
# Time limits as each queue system writes them (LSF's -W is [hours:]minutes).
_WALLTIME = {
    "slurm": (re.compile(r"(\d+-)?\d+(:\d\d){0,2}"), "02:00:00"),
    "pbs": (re.compile(r"\d+(:\d\d){0,2}"), "02:00:00"),
    "lsf": (re.compile(r"(\d+:)?\d+"), "02:00 (hours:minutes)"),
}


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """The worker jobs of a batch cluster: what :func:`batch_cluster` submits.

    Made by :func:`batch_spec` from a config file, which checks every value; the defaults are
    the built-in configs' (``configs/cluster/slurm.yaml``, ``pbs.yaml``, ``lsf.yaml``).

    Parameters
    ----------
    kind : {"slurm", "pbs", "lsf"}
        The queue system.
    jobs : int
        The most jobs at once: the cluster adapts between one job and ``jobs`` to the blocks
        left, and ends them all at the end.
    cores : int
        Cores per job; a job runs one single-threaded worker process per core.
    memory : str
        Memory per job (``120GB``), shared by its workers.
    walltime : str
        Time limit per job as the queue system writes it (``02:00:00``; LSF: ``02:00``, hours
        and minutes).
    queue, account : str or None
        Partition or queue, and the account (LSF: project) to charge; None: the system's
        default.
    interface : str or None
        The network interface the workers reach the scheduler on (``ib0``); None: the client
        host's default address.
    host : str or None
        The address the scheduler listens on, instead of an interface (``127.0.0.1`` on one
        node).
    log_directory : str or None
        Folder for the jobs' output files; None: the queue system's default (the folder the run
        was started from).
    numba_cache : str or None
        Folder the workers keep compiled kernels in (``NUMBA_CACHE_DIR``); None: riskengine's
        default, ``~/.cache/riskengine/kernels``. On a shared file system (a home folder every
        node sees) a kernel compiles once for every node.
    python : str or None
        The Python that runs the workers; None: this process's, which must then exist at the
        same path on every node (a shared virtual environment).
    job_extra : tuple of str
        Extra directives of the job script (``--gres=gpu:1``, ``--constraint=...``).
    prologue : tuple of str
        Shell lines run before the workers start (``module load ...``).
    source : str
        The config the spec came from, for messages.
    """

    kind: str
    jobs: int
    cores: int
    memory: str
    walltime: str
    queue: str | None
    account: str | None
    interface: str | None
    host: str | None
    log_directory: str | None
    numba_cache: str | None
    python: str | None
    job_extra: tuple[str, ...]
    prologue: tuple[str, ...]
    source: str = ""


def builtin_batch_configs() -> dict[str, Path]:
    """Names and files of the cluster configs in ``configs/cluster`` (``slurm``, ``pbs``,
    ``lsf``)."""
    folder = resources.files("riskengine.data") / "cluster"
    return {
        p.name.removesuffix(".yaml"): Path(str(p))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }


def _checked(key: str, value: object, where: str, kind: str) -> object:
    """``value`` of the setting ``key`` (for a ``kind`` cluster) as :class:`BatchSpec` holds it.

    Raises
    ------
    InputError
        A bad value; the message starts with ``where`` (the file and key, or the option).
    """

    def refuse(fix: str) -> InputError:
        return InputError(f"{where} {value!r}: {fix}")

    if key == "kind":
        if value not in BATCH_KINDS:
            raise refuse(f"give one of {', '.join(BATCH_KINDS)}")
    elif key in ("jobs", "cores"):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise refuse("give a whole number from 1 to 100,000")
    elif key in ("job_extra", "prologue"):
        lines = value if isinstance(value, list | tuple) else [value]
        if not all(isinstance(v, str) and v.strip() and "\n" not in v for v in lines):
            raise refuse("give a list of one-line strings")
        return tuple(lines)
    elif value is None and key not in ("memory", "walltime"):
        return None
    elif not isinstance(value, str) or not _WORD.fullmatch(value):
        raise refuse("give one word (no spaces, quotes or line breaks)")
    elif key == "memory" and not _MEMORY.fullmatch(value):
        raise refuse("give an amount such as 120GB")
    elif key == "walltime" and not _WALLTIME[kind][0].fullmatch(value):
        raise refuse(f"give a {kind} time limit such as {_WALLTIME[kind][1]}")
    return value


def _config(path: Path) -> dict:
    """The settings in the cluster config file ``path``, by key, unchecked."""
    text, _ = read_text(path, InputError, "a cluster config (YAML)")
    data = parse_yaml(text, path, InputError)
    if not isinstance(data, dict) or "kind" not in data:
        raise InputError(
            f"{path}: not a cluster config (a mapping with kind: {'|'.join(BATCH_KINDS)}); see "
            "configs/cluster/slurm.yaml"
        )
    known = [f.name for f in dataclasses.fields(BatchSpec) if f.name != "source"]
    for key in data:
        if key not in known:
            raise InputError(f"{path}: unknown key {key!r}; the keys are {', '.join(known)}")
    return data


def batch_spec(cluster: str | Path, **overrides: object) -> BatchSpec:
    """The worker jobs of a batch cluster, from a config and the command line's options.

    Parameters
    ----------
    cluster : str or Path
        A built-in config (``slurm``, ``pbs``, ``lsf``: the files in ``configs/cluster``) or a
        YAML file of :class:`BatchSpec`'s fields. ``kind`` is required; the keys a file leaves
        out take the built-in config of its kind's values.
    **overrides
        ``jobs``, ``cores``, ``memory``, ``walltime``, ``queue``: the options ``--jobs`` ...
        ``--queue``; None keeps the config's value.

    Returns
    -------
    BatchSpec
        Every value checked.

    Raises
    ------
    InputError
        ``cluster`` is neither; the file is not a mapping, has an unknown key or a bad value;
        an override is bad. The message names the file and key, or the option.
    """
    unknown = set(overrides) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"batch_spec() got unexpected keyword arguments {sorted(unknown)}")
    builtin = builtin_batch_configs()
    source = str(cluster)
    path = builtin.get(source, Path(source))
    if source not in builtin and not path.is_file():
        raise InputError(
            f"--cluster {source}: neither {', '.join(builtin)} nor a cluster config file; give "
            "one of those names or a YAML file like configs/cluster/slurm.yaml"
        )
    data = _config(path)
    kind = _checked("kind", data["kind"], f"{path}: kind", "")
    defaults = _config(builtin[kind])
    values = {key: _checked(key, data.get(key, defaults[key]), f"{path}: {key}", kind)
              for key in defaults}  # fmt: skip
    for key, value in overrides.items():
        if value is not None:
            values[key] = _checked(key, value, _OPTIONS[key], kind)
    return BatchSpec(**values, source=source)


class _Refused(RuntimeError):
    """The queue refused a job: recorded for the one-line message, so not logged again."""


def _not_refused(record: logging.LogRecord) -> bool:
    """A logging filter: drops the tracebacks of refused jobs that tornado's and dask's event
    loops log (the run reports the refusal once, in its error line)."""
    return not (record.exc_info and isinstance(record.exc_info[1], _Refused))


# The loggers through which a refused job's exception surfaces.
_LOOP_LOGGERS = ("tornado.application", "asyncio", "distributed.deploy.spec",
                 "distributed.deploy.adaptive", "distributed.deploy.adaptive_core")  # fmt: skip


@contextlib.contextmanager
def _refusals_unlogged() -> Iterator[None]:
    """Within: the event loops' loggers drop the tracebacks of refused jobs."""
    for logger in _LOOP_LOGGERS:
        logging.getLogger(logger).addFilter(_not_refused)
    try:
        yield
    finally:
        for logger in _LOOP_LOGGERS:
            logging.getLogger(logger).removeFilter(_not_refused)


def _restore_ctrl_c(before: object) -> None:
    """Undo dask_jobqueue's SIGINT handler: importing its runner module makes Ctrl-C a silent
    ``sys.exit()`` (exit code 0, as if the run had succeeded). Ctrl-C must stay a
    KeyboardInterrupt, also when something else imported dask_jobqueue first."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (and it holds the one that matters)
    for handler in (signal.getsignal(signal.SIGINT), before):
        if getattr(handler, "__module__", "") == "dask_jobqueue.runner":
            signal.signal(signal.SIGINT, signal.default_int_handler)
            return


def _check_host(spec: BatchSpec) -> None:
    """The scheduler can listen on ``spec.host`` (distributed would only say "cannot get address
    of non-running Server")."""
    if spec.host is None:
        return
    try:
        family = socket.getaddrinfo(spec.host, 0, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((spec.host, 0))
    except OSError as exc:
        raise InputError(
            f"{spec.source}: host {spec.host!r}: the scheduler cannot listen there "
            f"({exc.strerror or exc}); give an address of this machine, or interface instead"
        ) from None


class _Submissions:
    """What the queue system said about a run's job submissions: every refusal, for the one-line
    message while no worker has started; after that, a warning the first time (the run goes on
    with the workers it has)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.refusals: list[str] = []
        self.started = False
        self._warned = False

    def refused(self, said: str) -> None:
        self.refusals.append(said)
        if self.started and not self._warned:
            self._warned = True
            logging.getLogger(__name__).warning(
                "riskengine: the queue refused a further %s worker job (%s); the run goes on "
                "with the workers it has",
                self.kind,
                said,
            )


def _jobqueue_cluster(spec: BatchSpec, name: str, submissions: _Submissions):
    """dask-jobqueue's cluster for ``spec``, its jobs named ``name``; what the queue system says
    to a submission that fails goes to ``submissions``."""
    ctrl_c = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    except ImportError:
        raise InputError(
            f"--cluster {spec.source}: needs dask-jobqueue; pip install 'riskengine[cluster]'"
        ) from None
    finally:
        _restore_ctrl_c(ctrl_c)
    _check_host(spec)
    cluster_class = getattr(dask_jobqueue, BATCH_KINDS[spec.kind])

    class RecordingJob(cluster_class.job_cls):
        async def _submit_job(self, script_filename):
            try:
                if spec.kind == "lsf":  # dask-jobqueue's own pipes bsub's stderr to /dev/null
                    command = f"{self.submit_command} < {shlex.quote(script_filename)}"
                    return await self._call([command], shell=True)
                return await super()._submit_job(script_filename)
            except RuntimeError as exc:  # the command's output, after "stderr:"
                said = str(exc).split("stderr:", 1)[-1].strip().splitlines()
                submissions.refused(said[-1] if said else str(exc).splitlines()[0])
            except OSError as exc:  # no sbatch (qsub, bsub) here
                submissions.refused(
                    f"{self.submit_command.split()[0]}: {exc.strerror or exc}; run on a node "
                    "that submits jobs (the login node)"
                )
            raise _Refused(submissions.refusals[-1])

    cache = [] if spec.numba_cache is None else [
        f"mkdir -p {shlex.quote(os.path.expanduser(spec.numba_cache))}",
        f"export NUMBA_CACHE_DIR={shlex.quote(os.path.expanduser(spec.numba_cache))}",
    ]  # fmt: skip
    kwargs = {
        "job_cls": RecordingJob,
        "cores": spec.cores,
        # One single-threaded worker process per core: the engine runs one block per worker
        # thread on one core (numba's own threads are set to 1 inside a block).
        "processes": spec.cores,
        "memory": spec.memory,
        "walltime": spec.walltime,
        "queue": spec.queue,
        "project" if spec.kind == "lsf" else "account": spec.account,
        "interface": spec.interface,
        "job_name": name,
        "python": spec.python or sys.executable,
        "job_script_prologue": [*cache, "export OMP_NUM_THREADS=1", *spec.prologue],
        "job_extra_directives": list(spec.job_extra),
        "log_directory": os.path.expanduser(spec.log_directory) if spec.log_directory else None,
    }
    if spec.host is not None:
        kwargs["scheduler_options"] = {"host": spec.host}
    try:
        with warnings.catch_warnings():  # a busy 8787 only moves the dashboard: its link says so
            warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
            return cluster_class(**kwargs)
    except (RuntimeError, ValueError, OSError) as exc:  # e.g. no such network interface
        said = str(exc).removeprefix("Cluster failed to start: ").splitlines()[0][:300]
        raise InputError(
            f"{spec.source}: the {spec.kind} cluster's scheduler cannot start ({said}); check "
            "interface and host"
        ) from None


def job_script(spec: BatchSpec) -> str:
    """The job script :func:`batch_cluster` submits, to check it before a run.

    Parameters
    ----------
    spec : BatchSpec
        The worker jobs, from :func:`batch_spec`.

    Returns
    -------
    str
        The script, with the job name ``riskengine`` (a run names its jobs ``rk-`` and a
        token, which its watcher cancels by).

    Raises
    ------
    InputError
        dask-jobqueue is missing, or the scheduler cannot start on ``spec``'s interface or host.
    """
    with _jobqueue_cluster(spec, "riskengine", _Submissions(spec.kind)) as cluster:
        return cluster.job_script()


def _cancel_by_name(kind: str, name: str) -> None:
    """Cancel every job named ``name`` (quietly: none may be left; a queue system that does not
    answer within a minute is left to the watcher, which tries again once this process ends)."""
    try:
        subprocess.run(
            _CANCEL_BY_NAME[kind].format(name=name),
            shell=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        logging.getLogger(__name__).warning(
            "riskengine: cancelling the jobs named %s did not finish in 60 s", name
        )


def _watch(kind: str, name: str) -> subprocess.Popen:
    """A process, in a session of its own (so that Ctrl-C and a kill of this process group do
    not reach it), that cancels the jobs named ``name`` once this process has ended."""
    script = (
        f"trap '' INT HUP; while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        + _CANCEL_BY_NAME[kind].format(name=name)
    )
    return subprocess.Popen(
        ["sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _waiting(kind: str, name: str) -> str:
    """Why no job of ``name`` has started a worker, in a few words."""
    if kind not in _QUEUE_STATE:
        return "no job started"
    try:
        listed = subprocess.run(
            _QUEUE_STATE[kind].format(name=name),
            shell=True,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.split()
    except subprocess.TimeoutExpired:
        return "the queue did not answer"
    jobs = [" ".join(listed[i : i + 3]) for i in range(0, len(listed) - 2, 3)]
    return "jobs " + "; ".join(jobs) if jobs else "no job is queued"


@contextlib.contextmanager
def batch_cluster(
    cluster: BatchSpec | str | Path, start_timeout: float | None = None, **overrides: object
) -> Iterator[object]:
    """A ``distributed.Client`` whose workers run as batch jobs (SLURM, PBS, LSF).

    The scheduler runs in this process; the cluster adapts between one job and ``spec.jobs``
    to the work queued (the blocks left), and every job is cancelled on the way out: on
    success, on an error, on Ctrl-C, and, through a watcher process, when this process is
    killed. Use it around :func:`riskengine.simulate` (or ``study``, ``counterfactual``)::

        with batch_cluster("slurm", jobs=16, cores=32, queue="compute") as client:
            rk.simulate(model, 10**8, seed=1, store="/scratch/run.zarr", client=client,
                        resolution="year")

    Parameters
    ----------
    cluster : BatchSpec, str or Path
        A spec, or a built-in config name or YAML file for :func:`batch_spec`.
    start_timeout : float, optional
        Seconds to wait for the first job to start a worker (default :data:`START_SECONDS`, or
        ``$RISKENGINE_START_SECONDS``).
    **overrides
        ``jobs``, ``cores``, ``memory``, ``walltime``, ``queue``, for :func:`batch_spec`.

    Yields
    ------
    distributed.Client
        A client of the cluster, once its first worker has started.

    Raises
    ------
    InputError
        A bad config; dask-jobqueue missing; a scheduler that cannot start on the config's
        interface or host; the queue refused the job (or has no ``sbatch`` here); or no job
        started a worker within ``start_timeout`` (a full or closed queue): the message says
        what the queue says, and every job is cancelled.
    """
    from distributed import Client

    spec = cluster if isinstance(cluster, BatchSpec) else batch_spec(cluster, **overrides)
    start_timeout = start_timeout or _seconds("RISKENGINE_START_SECONDS", START_SECONDS)
    # A unique name: the watcher cancels by it, and it tells this run's jobs from others.
    name = f"rk-{secrets.token_hex(4)}"
    submissions = _Submissions(spec.kind)
    with _refusals_unlogged():
        jobs = _jobqueue_cluster(spec, name, submissions)
        watcher = _watch(spec.kind, name)
        try:
            with Client(jobs) as client:
                jobs.adapt(minimum_jobs=1, maximum_jobs=spec.jobs)
                deadline = time.monotonic() + start_timeout
                while not client.scheduler_info()["workers"]:
                    if submissions.refusals:
                        raise InputError(
                            f"--cluster {spec.source}: the queue refused the job "
                            f"({submissions.refusals[-1]}); check --queue and the config's "
                            "settings"
                        )
                    if time.monotonic() > deadline:
                        raise InputError(
                            f"--cluster {spec.source}: no {spec.kind} job started a worker "
                            f"within {start_timeout:g} s ({_waiting(spec.kind, name)}); check "
                            "--queue and the queue's limits, or raise RISKENGINE_START_SECONDS"
                        )
                    time.sleep(0.25)
                submissions.started = True
                yield client
        finally:
            try:
                jobs.close()
            except Exception:  # a job the queue refused leaves the cluster unable to close
                logging.getLogger(__name__).debug("closing the batch cluster", exc_info=True)
            _cancel_by_name(spec.kind, name)
            watcher.kill()
            watcher.wait()
