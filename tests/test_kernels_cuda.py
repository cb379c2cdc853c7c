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

import pytest

import riskengine as rk

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
def test_cuda_kernel_compiles_for_compute_90(truce_collapse, shared):
    """Type-checks and compiles for a real target; the simulator would accept anything."""
    reason = _nvvm_missing()
    if reason:
        pytest.skip(reason)
    from riskengine.kernels.cuda import compile_ptx_for

    ptx = compile_ptx_for(truce_collapse, (9, 0), shared)
    assert ".target sm_90" in ptx
    # each shared matrix is one static shared declaration of N x N float32
    N = len(truce_collapse.sectors) * len(truce_collapse.regions)
    assert len(re.findall(rf"\.shared .*\[{4 * N * N}\]", ptx)) == shared


def test_ptxas_report_for_compute_90():
    """benchmarks/ptxas_report.py: ptxas's resources of the sm_90 kernel and their occupancy."""
    reason = _nvvm_missing()
    if reason:
        pytest.skip(reason)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ptxas_report.py")],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    registers = int(re.search(r"registers per thread: (\d+)", out).group(1))
    assert 0 < registers <= 255
    assert re.search(r"spill stores / loads: \d+ / \d+ bytes", out)
    # the default economy (N = 84) keeps W in shared memory: 84 x 84 float32
    assert "shared memory per block: 28224 bytes" in out
    blocks = re.search(r"-> (\d+) blocks, (\d+) of 64 warps", out)
    assert int(blocks.group(2)) == int(blocks.group(1)) * 4  # 128 threads: 4 warps a block


def test_shared_memory_holds_what_fits():
    from riskengine.kernels.cuda import SHARED_BYTES, shared_matrices

    assert SHARED_BYTES == 48 * 1024
    assert [shared_matrices(n) for n in (4, 78, 79, 84, 110, 111)] == [2, 2, 1, 1, 1, 0]
