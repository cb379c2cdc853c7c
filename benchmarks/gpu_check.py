"""On a machine with a GPU: check that the CUDA kernel equals the CPU kernel, and time it.

    python benchmarks/gpu_check.py                      # 10 000 paths of truce_collapse
    python benchmarks/gpu_check.py --paths 100000 --repeat 5
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_check.py --paths 4 --repeat 1   # no GPU

Prints the largest relative difference of each cube variable, whether all agree to the kernels'
tolerance (``riskengine.backends.KERNEL_RTOL``, or ``KERNEL_ATOL_OF_MAX`` of each variable's
largest value), and the GPU's path-months
per second (best of ``--repeat`` timed runs after a warm-up that compiles the kernel), counting
the copies to and from the device. Exit 0 when CUDA equals CPU,
1 when it does not, 2 when no GPU is found.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from numba import cuda

import riskengine as rk
from riskengine.backends import KERNEL_ATOL_OF_MAX as ATOL_OF_MAX
from riskengine.backends import KERNEL_RTOL as RTOL
from riskengine.backends import block_arrays, run_block_into
from riskengine.kernels import cuda as cuda_kernel
from riskengine.schema import periods


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--scenario", default="truce_collapse")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resolution", default="month")
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not cuda.is_available():
        print("no CUDA device found (and NUMBA_ENABLE_CUDASIM is not 1)", file=sys.stderr)
        return 2
    model = rk.compile_model(rk.load_scenario(args.scenario))
    period_of_month, starts = periods(model.start, model.horizon, args.resolution)
    P, T = args.paths, model.horizon
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        device = "numba's CUDA simulator"
    else:
        device = cuda.get_current_device().name
        device = device.decode() if isinstance(device, bytes) else device
    print(f"device: {device}; scenario {args.scenario}: {P} paths")

    cpu = block_arrays(model, P, len(starts))
    started = time.perf_counter()
    run_block_into(model, args.seed, 0, P, period_of_month, cpu, backend="cpu")
    print(f"CPU kernel: {P * T / (time.perf_counter() - started):.4g} path-months/s")

    gpu = block_arrays(model, P, len(starts))
    warm = min(P, cuda_kernel.TILE_PATHS)  # the timed runs' tile: their kernel compiled here
    run_block_into(
        model,
        args.seed,
        0,
        warm,
        period_of_month,
        block_arrays(model, warm, len(starts)),
        backend="cuda",
    )
    best = np.inf
    for _ in range(args.repeat):
        started = time.perf_counter()
        run_block_into(model, args.seed, 0, P, period_of_month, gpu, backend="cuda")
        best = min(best, time.perf_counter() - started)
    print(f"GPU kernel with transfers: {P * T / best:.4g} path-months/s (best of {args.repeat})")

    agree = True
    for name, want in cpu.items():
        got = gpu[name]
        atol = ATOL_OF_MAX * float(np.max(np.abs(want), initial=0.0))
        scale = np.maximum(np.abs(want), atol if atol > 0 else np.finfo(np.float32).tiny)
        worst = float(np.max(np.abs(got.astype(np.float64) - want) / scale, initial=0.0))
        ok = bool(np.allclose(got, want, rtol=RTOL, atol=atol))
        agree &= ok
        print(f"  {name}: largest relative difference {worst:.2e}{'' if ok else '  FAILS'}")
    verdict = "equals" if agree else "does NOT equal"
    print(f"CUDA {verdict} CPU to rtol {RTOL:g} on {P} paths")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
