#!/usr/bin/env bash
# An existing dask cluster: one scheduler, workers on any hosts that see the run's store through
# a shared file system (workers write their blocks straight into it).
#
#   on one host:          configs/cluster/scheduler.sh scheduler
#   on every worker host: configs/cluster/scheduler.sh worker
#   from any host:        configs/cluster/scheduler.sh run truce_collapse --paths 100000000 \
#                             --resolution year --out /shared/runs/truce_1e8.zarr
#
# SCHEDULER_FILE must be on the shared file system. NUMBA_CACHE_DIR holds the compiled kernels:
# the first worker to compile writes them, every later worker process loads them in about a
# second (numba keys its cache by CPU model, so mixed node types each get their own entry).
set -euo pipefail
SCHEDULER_FILE=${SCHEDULER_FILE:-$HOME/.riskengine/scheduler.json}
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$HOME/.riskengine/numba-cache}
mkdir -p "$(dirname "$SCHEDULER_FILE")" "$NUMBA_CACHE_DIR"
role=${1:?give scheduler, worker or run}
shift
case "$role" in
  # The scheduler's dashboard (port 8787) shows the blocks as they run.
  scheduler) exec dask scheduler --scheduler-file "$SCHEDULER_FILE" "$@" ;;
  # One single-threaded worker process per core: the engine runs one block per worker thread
  # on one core, so threads would only share a process's memory, not speed it up.
  worker) exec dask worker --scheduler-file "$SCHEDULER_FILE" --nworkers "$(nproc)" \
            --nthreads 1 "$@" ;;
  run) exec riskengine run "$@" --scheduler "$SCHEDULER_FILE" ;;
  *) echo "unknown role $role: give scheduler, worker or run" >&2; exit 2 ;;
esac
