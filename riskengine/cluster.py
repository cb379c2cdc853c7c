"""Dask clusters for a run: connect to an existing scheduler, or start local worker processes.

Every wait on the network has a deadline and ends in one line: a scheduler address or file that
answers nothing, answers something else (an HTTP server), or has no workers is reported as an
:class:`~riskengine.errors.InputError` naming ``--scheduler`` and the fix, instead of a hang or a
traceback.

This module imports the standard library and riskengine.errors; ``distributed`` when a cluster is
asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from riskengine.errors import InputError

__all__ = ["CONNECT_SECONDS", "WORKERS_SECONDS", "connect", "local_cluster", "usable_cores"]

# How long to wait for a scheduler to answer, and for its first worker (the environment
# variables RISKENGINE_CONNECT_SECONDS and RISKENGINE_WORKERS_SECONDS override them).
CONNECT_SECONDS = 20.0
WORKERS_SECONDS = 60.0


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
