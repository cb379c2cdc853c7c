"""What the CUDA kernel costs an H200's multiprocessor, without a GPU: ``ptxas -v`` on the
kernel's PTX for sm_90 (NVVM and ptxas from the ``cuda`` extra's wheels), and the occupancy the
resources imply.

    python benchmarks/ptxas_report.py [--scenario truce_collapse] [--tile 64] [--panel 42]
                                      [--max-registers 255]

Prints the registers per thread, the stack frame (the per-thread state in local memory), the
spill stores and loads, the shared memory per block (the tile of paths and a panel of ``M``)
and the occupancy at one thread per path of the tile, from the sm_90 limits below (NVIDIA's CUDA C
Programming Guide, compute capability 9.0, and its occupancy calculator's allocation rules).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Compute capability 9.0 (H100, H200): per multiprocessor.
REGISTERS = 65536
REGISTER_UNIT = 256  # registers are allocated per warp in units of 256
MAX_REGISTERS = 255  # per thread: what ptxas may use unless told less (cuda.jit's default)
MAX_WARPS = 64
MAX_BLOCKS = 32
SHARED_BYTES = 228 * 1024
SHARED_RESERVED = 1024  # per block, reserved by the system
SHARED_UNIT = 128


def ptxas_path() -> str:
    """ptxas from the ``nvidia-cuda-nvcc`` wheel, else the one on PATH."""
    spec = importlib.util.find_spec("nvidia.cuda_nvcc")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "ptxas"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("ptxas")
    if found is None:
        raise SystemExit("no ptxas: pip install -e '.[cuda]' (the nvidia-cuda-nvcc wheel)")
    return found


def resources(ptxas_output: str) -> dict[str, int]:
    """Registers, stack frame, spill stores and loads, and shared memory of the kernel in
    ``ptxas -v``'s report."""
    text = " ".join(ptxas_output.split())
    figures = {
        "registers": r"Used (\d+) registers",
        "stack_bytes": r"(\d+) bytes stack frame",
        "spill_stores": r"(\d+) bytes spill stores",
        "spill_loads": r"(\d+) bytes spill loads",
        "shared_bytes": r"(\d+) bytes smem",
    }
    found = {}
    for name, pattern in figures.items():
        match = re.search(pattern, text)
        found[name] = int(match.group(1)) if match else 0
    if not re.search(figures["registers"], text):
        raise SystemExit(f"ptxas printed no register count:\n{ptxas_output}")
    return found


def occupancy(registers: int, shared_bytes: int, threads: int) -> dict[str, int]:
    """Blocks per multiprocessor allowed by each resource, and the resident warps."""
    warps = math.ceil(threads / 32)
    per_warp = math.ceil(registers * 32 / REGISTER_UNIT) * REGISTER_UNIT
    by_registers = (REGISTERS // per_warp) // warps if per_warp else MAX_BLOCKS
    shared = math.ceil((shared_bytes + SHARED_RESERVED) / SHARED_UNIT) * SHARED_UNIT
    by_shared = SHARED_BYTES // shared
    by_warps = MAX_WARPS // warps
    blocks = min(by_registers, by_shared, by_warps, MAX_BLOCKS)
    return {"by_registers": by_registers, "by_shared": by_shared, "by_warps": by_warps,
            "blocks": blocks, "warps": blocks * warps}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="truce_collapse")
    p.add_argument("--tile", type=int, default=None, help="paths (threads) of a block")
    p.add_argument("--panel", type=int, default=None, help="columns of M in shared memory")
    p.add_argument(
        "--max-registers", type=int, default=None, help="ptxas -maxrregcount (default 255)"
    )
    args = p.parse_args(argv)

    import riskengine as rk
    from riskengine.kernels.cuda import compile_ptx_for, panel_columns, tile_paths

    model = rk.compile_model(rk.load_scenario(args.scenario))
    N = len(model.sectors) * len(model.regions)
    tile = tile_paths(10**6, N) if args.tile is None else args.tile
    panel = panel_columns(N, tile) if args.panel is None else args.panel
    ptx = compile_ptx_for(model, (9, 0), tile, panel)
    registers = MAX_REGISTERS if args.max_registers is None else args.max_registers
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "kernel.ptx"
        source.write_text(ptx, encoding="ascii")
        done = subprocess.run(
            [ptxas_path(), "-v", "-arch=sm_90", f"-maxrregcount={registers}", str(source),
             "-o", str(Path(folder) / "k.cubin")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"ptxas failed:\n{done.stderr}")
    r = resources(done.stdout + done.stderr)
    o = occupancy(r["registers"], r["shared_bytes"], tile)
    print(f"ptxas -v, sm_90: {args.scenario}, N={N}, a tile of {tile} paths (one per thread), "
          f"panels of {panel} columns of M")  # fmt: skip
    print(f"registers per thread: {r['registers']}")
    print(f"stack frame per thread (local memory): {r['stack_bytes']} bytes")
    print(f"spill stores / loads: {r['spill_stores']} / {r['spill_loads']} bytes")
    print(f"shared memory per block: {r['shared_bytes']} bytes")
    print(
        f"occupancy at {tile} threads per block: blocks per SM by registers "
        f"{o['by_registers']}, by shared memory {o['by_shared']}, by warps {o['by_warps']} -> "
        f"{o['blocks']} blocks, {o['warps']} of {MAX_WARPS} warps ({o['warps'] / MAX_WARPS:.0%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
