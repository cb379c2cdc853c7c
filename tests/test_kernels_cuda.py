"""The CUDA kernel: equal to the reference in numba's simulator; compiles for a real GPU target.

Simulator runs happen in subprocesses with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is
imported, so that the rest of the suite keeps the real numba.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import riskengine as rk
from riskengine.backends import block_arrays
from riskengine.kernels import rng
from riskengine.kernels.credit import years
from riskengine.kernels.layout import kernel_model
from riskengine.schema import periods

HERE = Path(__file__).parent
ROOT = HERE.parent


def _simulated(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_cuda_kernel_in_simulator_equals_reference_for_every_scenario():
    result = _simulated([str(HERE / "cuda_sim_check.py")])
    assert result.returncode == 0, result.stdout + result.stderr
    for name in rk.builtin_scenarios():
        assert f"{name}: CUDA (simulator) equals reference" in result.stdout
    for shared in (2, 0):
        assert f"{shared} matrices in shared memory: CUDA (simulator) equals reference" in (
            result.stdout
        )
    assert "engine, 4 blocks on the threaded scheduler: CUDA (simulator) equals CPU" in (
        result.stdout
    )


def test_gpu_check_script_runs_in_simulator():
    """benchmarks/gpu_check.py, the script for a GPU machine, at a tiny size."""
    result = _simulated([str(ROOT / "benchmarks" / "gpu_check.py"), "--paths", "6"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CUDA equals CPU to rtol 1e-05 on 6 paths" in result.stdout


def _nvvm_missing() -> str | None:
    try:
        import numba_cuda  # noqa: F401  (numba's own numba.cuda is deprecated: use the extra)
        from numba.cuda.cudadrv.nvvm import NVVM

        NVVM()
    except Exception as exc:  # numba raises several kinds when no NVVM library is found
        return f"no numba-cuda with NVVM here (install the cuda extra): {exc}".splitlines()[0]
    return None


@pytest.mark.parametrize("shared", [0, 1])
def test_cuda_kernel_compiles_for_compute_90(truce_collapse, shared, monkeypatch):
    """Type-checks and compiles for a real target; the simulator would accept anything."""
    reason = _nvvm_missing()
    if reason:
        pytest.skip(reason)
    from numba import cuda, typeof
    from numba.cuda import dispatcher

    # Device functions are compiled for the current device's compute capability; with no device
    # here, name the same target as compile_ptx below.
    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0))
    )

    from riskengine.kernels.cuda import kernel_function

    km = kernel_model(truce_collapse.arrays)
    C, N = km.exposure.shape
    out = block_arrays(truce_collapse, 2, 20)
    period_of_month = periods(truce_collapse.start, truce_collapse.horizon, "quarter")[0]
    args = (km, *rng.split_seed(1), 0, 2, period_of_month)
    names = ("loss", "severity", "tension", "loss_total", "value_added_loss_total")
    year_q = np.empty((2, years(truce_collapse.horizon), N), np.float32)
    log_weight = np.empty(2)  # each path's log likelihood ratio under a tilt (model.md 8)
    args += (*(out[n] for n in names), year_q, log_weight)
    signature = tuple(typeof(a) for a in args)
    F, R, K = km.factor_loadings.shape[1], km.n_regions, km.exposure_channel.shape[0]
    fn = kernel_function(C, N, F, R, K, shared)
    ptx, _ = cuda.compile_ptx(fn, signature, cc=(9, 0))
    assert ".target sm_90" in ptx
    # each shared matrix is one static shared declaration of N x N float32
    assert len(re.findall(rf"\.shared .*\[{4 * N * N}\]", ptx)) == shared


def test_shared_memory_holds_what_fits():
    from riskengine.kernels.cuda import SHARED_BYTES, shared_matrices

    assert SHARED_BYTES == 48 * 1024
    assert [shared_matrices(n) for n in (4, 78, 79, 84, 110, 111)] == [2, 2, 1, 1, 1, 0]
