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
    assert "tiles of 4: CUDA (simulator) equals a tile of 12 bit for bit" in result.stdout
    assert "an economy too large for shared memory: BackendError before any launch" in (
        result.stdout
    )
    for panel in (42, 5):
        assert f"panels of {panel} columns: CUDA (simulator) equals one panel bit for bit" in (
            result.stdout
        )
    assert "engine, 4 blocks on the threaded scheduler: CUDA (simulator) equals CPU" in (
        result.stdout
    )


def test_gpu_check_script_runs_in_simulator():
    """benchmarks/gpu_check.py, the script for a GPU machine, at a tiny size."""
    # one tile of 4, timed once: the simulator runs every thread of the warm-up and timed runs
    script = str(ROOT / "benchmarks" / "gpu_check.py")
    result = _simulated([script, "--paths", "4", "--repeat", "1"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CUDA equals CPU to rtol 1e-05 on 4 paths" in result.stdout


def _nvvm_missing() -> str | None:
    try:
        import numba_cuda  # noqa: F401  (numba's own numba.cuda is deprecated: use the extra)
        from numba.cuda.cudadrv.nvvm import NVVM

        NVVM()
    except Exception as exc:  # numba raises several kinds when no NVVM library is found
        return f"no numba-cuda with NVVM here (install the cuda extra): {exc}".splitlines()[0]
    return None


@pytest.mark.parametrize(("tile", "panel"), [(None, None), (12, 84)])
def test_cuda_kernel_compiles_for_compute_90(truce_collapse, tile, panel):
    """Type-checks and compiles for a real target; the simulator would accept anything. The
    default tile and panels, and a small block's tile beside all of M."""
    reason = _nvvm_missing()
    if reason:
        pytest.skip(reason)
    from riskengine.kernels.cuda import TILE_PATHS, compile_ptx_for, panel_columns

    N = len(truce_collapse.sectors) * len(truce_collapse.regions)
    paths = TILE_PATHS if tile is None else tile
    width = panel_columns(N, paths) if panel is None else panel
    ptx = compile_ptx_for(truce_collapse, (9, 0), tile, panel)
    assert ".target sm_90" in ptx
    # two static shared declarations of float32: the panel of M and the tile of paths
    declared = sorted(int(b) for b in re.findall(r"\.shared .*\[(\d+)\]", ptx))
    assert declared == sorted([4 * N * width, 4 * N * paths])


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
    assert re.search(r"spill stores / loads: 0 / 0 bytes", out)  # the register blocks fit
    # the default economy (N = 84): a tile of 64 paths and a panel of 42 columns, in float32
    assert f"shared memory per block: {4 * 84 * (64 + 42)} bytes" in out
    blocks = re.search(r"-> (\d+) blocks, (\d+) of 64 warps", out)
    assert int(blocks.group(2)) == int(blocks.group(1)) * 2  # 64 threads: 2 warps a block


def test_tiles_and_panels_fit_shared_memory():
    from riskengine.kernels.cuda import (
        SHARED_BYTES,
        TILE_PATHS,
        kernel_function,
        panel_columns,
        tile_paths,
    )

    assert SHARED_BYTES == 48 * 1024 and TILE_PATHS == 64
    sizes = (1, 3, 4, 5, 12, 63, 64, 10**6)
    assert [tile_paths(n, 84) for n in sizes] == [1, 3, 4, 8, 12, 64, 64, 64]
    # larger economies take smaller tiles, down to one path at 6,144 nodes
    assert [tile_paths(10**6, n) for n in (180, 190, 1000, 2457, 3000, 6144)] == [
        64, 60, 8, 4, 3, 1,
    ]  # fmt: skip
    # panels as wide as fit beside the tile, in equal panels: 84 nodes beside 64 paths take two
    # panels of 42
    assert [panel_columns(n, 64) for n in (4, 84, 100, 180)] == [4, 42, 50, 4]
    for n in (4, 84, 100, 180, 190, 1000, 2457, 3000, 6144):
        tile = tile_paths(10**6, n)
        assert 4 * n * (tile + panel_columns(n, tile)) <= SHARED_BYTES
    with pytest.raises(ValueError, match="6145 nodes does not fit"):
        tile_paths(1, 6145)
    with pytest.raises(ValueError, match="at least one path"):
        tile_paths(0, 84)
    # a tile that does not split into the register blocks, or too much shared memory
    for tile, panel in ((50, 42), (64, 0), (64, 84)):
        with pytest.raises(ValueError, match="tile of"):
            kernel_function(4, 84, 3, 7, 40, tile, panel)
