#!/usr/bin/env bash
# A riskengine run or study as one SLURM batch job: this job is the client (one core for the
# whole run); the workers are SLURM jobs that `--cluster` submits, adapts and ends.
#
#   sbatch configs/cluster/sbatch.sh run truce_collapse --paths 100000000 --resolution year \
#       --seed 1 --out /scratch/$USER/truce_1e8.zarr
#   sbatch configs/cluster/sbatch.sh study truce_collapse --samples 1024 --paths 1000000 \
#       --seed 1 --out /scratch/$USER/study.zarr
#
# --out must be on a file system every node sees (scratch): workers write a run's blocks
# straight into it. Submitting the same command again after a walltime, a preemption or a
# failure continues where it stopped (--resume is added once the store exists, unless the
# command has --resume or --overwrite).
# RISKENGINE_CLUSTER names the cluster config (default: configs/cluster/slurm.yaml; give a copy
# with your site's queue, account, interface), RISKENGINE_JOBS and RISKENGINE_CORES size it.
#SBATCH --job-name=riskengine
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=8G
#SBATCH --time=24:00:00
#SBATCH --output=riskengine-%j.out
set -euo pipefail
command=${1:?give run or study, then its arguments}
shift
cluster=${RISKENGINE_CLUSTER:-slurm}
out=""
previous=""
replace=no
for arg in "$@"; do
    case $arg in
        --out=*) out=${arg#--out=} ;;
        --overwrite | --resume) replace=yes ;;  # the command already says what to do
    esac
    [ "$previous" = "--out" ] && out=$arg
    previous=$arg
done
[ -n "$out" ] || { echo "give --out STORE (on a shared file system)" >&2; exit 2; }
resume=""
[ -e "$out" ] && [ "$replace" = no ] && resume=--resume

# Warm the kernel cache once, here on a compute node (numba keys its cache by CPU model): a
# 100-path run compiles the kernel where the workers look for it (the config's numba_cache, else
# ~/.cache/riskengine/kernels), on the shared home, in about 40 s; every worker then loads it in
# about a second instead of all of them compiling it at once. The job script says where.
eval "$(riskengine job-script --cluster "$cluster" | grep '^export NUMBA_CACHE_DIR=' || true)"
echo "riskengine: kernels cached in ${NUMBA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/riskengine/kernels}"
warm="${TMPDIR:-/tmp}/riskengine-warm-${SLURM_JOB_ID:-$$}.zarr"
riskengine run truce_collapse --paths 100 --resolution horizon --out "$warm" --overwrite >/dev/null
rm -rf "$warm"

# SIGTERM at the end of the walltime stops the run cleanly: its worker jobs are cancelled and
# every finished block is kept for the next submission.
exec riskengine "$command" "$@" $resume --cluster "$cluster" \
    --jobs "${RISKENGINE_JOBS:-16}" --cores "${RISKENGINE_CORES:-32}"
