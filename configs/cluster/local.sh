#!/usr/bin/env bash
# A local cluster: one single-threaded dask worker process per core of this machine.
#
#   configs/cluster/local.sh truce_collapse --paths 1000000 --out runs/truce_1e6.zarr
#
# Every riskengine run option can follow (--resolution, --seed, --resume, ...). Without --workers,
# `riskengine run` uses dask's threaded scheduler in one process, which is as fast on one machine;
# worker processes add isolation (a crashed block does not take the run down) and are the same
# code path as a real cluster.
set -euo pipefail
exec riskengine run "$@" --workers "$(nproc)"
