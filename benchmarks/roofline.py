"""The floor of one path-month on this machine and the project's achieved rates, in one run.

    python benchmarks/roofline.py [--engine-seconds S] [--scaling-seconds S] [--rounds K]
                                  [--kernel-paths P] [--peer-paths P]

Measures, in this process and on every core, the three rates of the floor (batched float32
N x N products through BLAS, raw Philox4x32-10 words, memory writes) and the CPU kernel at
monthly resolution, timed in turn round after round (each figure is its best round); then the
engine end to end at horizon resolution (``riskengine.simulate`` into a zarr store, threaded
scheduler), the same run on 1 and on 2 single-threaded dask worker processes, and how much faster
the cores run a pure compute loop on all threads than on one (on a VM, its cores may be shared).
Then the two peers of benchmarks/peers (numpy, and JAX where the ``peers`` extra is installed):
the same model written without riskengine, to horizon totals in memory. Prints each figure, the
floor at monthly and at horizon resolution, and as its last line ``kernel_vs_floor=<ratio>
engine_vs_floor=<ratio> engine_vs_peers=<ratio>`` (floor / achieved: 1.0 is the floor; the
faster peer's time / the engine's: how many times faster the engine is).

The engine's and the scaling runs are sized from the kernel's measured rates so that each takes
about the given seconds (fixed costs then weigh as in a long run). Runs in about two minutes on
the 2-core development machine. docs/performance.md records its output.
"""

from __future__ import annotations

import argparse
import platform
import time

import measures
import numba
from threadpoolctl import threadpool_info

from riskengine.backends import run_block


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    infos = [i for i in threadpool_info() if i["user_api"] == "blas"]
    return ", ".join(f"{i['internal_api']} {i['version']}" for i in infos) or "unknown"


def _sized(rate: float, seconds: float, horizon: int, multiple: int) -> int:
    """Paths for about ``seconds`` at ``rate`` path-months per second, in multiples of
    ``multiple``."""
    return max(multiple, round(rate * seconds / horizon / multiple) * multiple)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine-seconds", type=float, default=10.0)
    p.add_argument("--scaling-seconds", type=float, default=8.0, help="for 1 worker")
    p.add_argument("--rounds", type=int, default=15, help="rounds of the short measurements")
    p.add_argument("--kernel-paths", type=int, default=4096, help="paths of the short ones")
    p.add_argument("--peer-paths", type=int, default=32768, help="paths of each peer's run")
    args = p.parse_args(argv)

    model = measures.default_model()
    n = model.arrays.supply_matrix.shape[0]
    threads = numba.get_num_threads()
    print(
        f"machine: {_cpu_name()}, {measures.cores()} cores; numba {numba.__version__} on "
        f"{threads} threads; BLAS {_blas()}; Python {platform.python_version()}"
    )
    print(f"model: truce_collapse, N={n} nodes, C={model.arrays.exposure.shape[0]} channels, "
          f"T={model.horizon} months")  # fmt: skip

    start = time.perf_counter()
    run_block(model, measures.SEED, 0, 1, "month")
    print(f"kernel first call in this process (numba cache load, or compile): "
          f"{time.perf_counter() - start:.2f} s")  # fmt: skip

    # The floor's three rates and the kernel, timed in turn round after round: on a shared
    # machine a spell of contention then weighs on the floor and on the kernel alike.
    size = args.kernel_paths
    sgemm = measures.propagation(model, size)
    words = measures.philox_words(size, 4096)
    write = measures.memory_write(model, size)
    kernel = measures.kernel(model, size, "month")
    best = measures.interleaved_best_seconds([sgemm, words, write, kernel], args.rounds)
    flop_per_s = sgemm.count / best[0][0]
    s_per_word = best[1][0] / words.count
    byte_per_s = write.count / best[2][0]
    kernel_ns = 1e9 * best[3][0] / kernel.count
    floors = {
        r: measures.floor(model, r, flop_per_s, s_per_word, byte_per_s)
        for r in ("month", "horizon")
    }
    print(f"rate: batched float32 {n}x{n} product (BLAS, batches of {measures.FLOOR_BATCH}): "
          f"{flop_per_s / 1e9:.1f} GFLOP/s -> {measures.PRODUCTS_PER_MONTH} products (W a, D b) "
          f"x 2 N^2 = {measures.PRODUCTS_PER_MONTH * 2 * n * n} flop: "
          f"{floors['month'].propagation_ns:.1f} ns per path-month")  # fmt: skip
    print(f"rate: raw Philox4x32-10 words: {s_per_word * 1e9:.3f} ns per word -> "
          f"{measures.normals_per_path_month(model):.2f} normals per path-month: "
          f"{floors['month'].random_ns:.1f} ns")  # fmt: skip
    print(f"rate: memory write: {byte_per_s / 1e9:.1f} GB/s")
    for r, f in floors.items():
        print(f"floor at {r} resolution: {f.total_ns:.1f} ns per path-month "
              f"(propagation {f.propagation_ns:.1f} + random {f.random_ns:.1f} + write "
              f"{f.write_ns:.2f} for {measures.bytes_per_path_month(model, r):.1f} B)")  # fmt: skip

    print(f"achieved: CPU kernel, month, {size} paths, {threads} threads: {kernel_ns:.1f} ns per "
          f"path-month ({1e3 / kernel_ns:.2f} M path-months/s)")  # fmt: skip

    with measures.scratch("roofline-") as folder:
        paths = _sized(1e9 / kernel_ns, args.engine_seconds, model.horizon, 1000)
        engine = measures.engine(model, paths, folder / "engine.zarr", "horizon")
        wall, cpu = measures.best_seconds(engine, 2)
        engine_ns = 1e9 * wall / engine.count
        print(f"achieved: engine end to end, horizon, {paths:,} paths into a zarr store, threaded "
              f"scheduler: {engine_ns:.1f} ns per path-month ({1e3 / engine_ns:.2f} M "
              "path-months/s)")  # fmt: skip
        # Where the engine's time goes: its CPU time against the kernel's alone on one thread
        # (the engine runs each block's kernel on one core) and the cores it kept busy.
        numba.set_num_threads(1)
        one = measures.kernel(model, size, "horizon")
        one_ns = 1e9 * measures.best_seconds(one, 3)[1] / one.count
        numba.set_num_threads(threads)
        print(f"profile: engine CPU {1e9 * cpu / engine.count:.1f} ns per path-month against "
              f"{one_ns:.1f} for the kernel alone at horizon on one thread (overhead "
              f"{cpu / engine.count * 1e9 / one_ns - 1:+.1%}); cores busy {cpu / wall:.2f} "
              f"of {measures.cores()}")  # fmt: skip

        # Sized from the one-thread rate at horizon: each worker runs its blocks on one core.
        blocks = 8
        paths = _sized(1e9 / one_ns, args.scaling_seconds, model.horizon, blocks)
        seconds = {}
        for workers in (1, 2):
            with measures.local_cluster(workers, model) as client:
                run = measures.engine(model, paths, folder / f"w{workers}.zarr", "horizon",
                                      client=client, block_paths=paths // blocks)  # fmt: skip
                seconds[workers] = measures.best_seconds(run, 3)[0]
        print(f"achieved: {paths:,} paths at horizon in {blocks} blocks on a LocalCluster of 1 "
              f"worker: {seconds[1]:.2f} s, of 2 workers: {seconds[2]:.2f} s (1 thread each); "
              f"speedup_2_vs_1={seconds[1] / seconds[2]:.2f}")  # fmt: skip

    # Two independent implementations of the model (benchmarks/peers), on every core, to their
    # horizon totals in memory (the engine above also writes its cube to a store).
    peers = {}
    for name in ("numpy", "jax"):
        try:
            work = measures.peer(model, args.peer_paths, name)
        except ImportError as exc:
            print(f"achieved: {name} peer not measured ({exc}; pip install -e '.[peers]')")
            continue
        peers[name] = 1e9 * measures.best_seconds(work, 2)[0] / work.count
        print(f"achieved: {name} peer (benchmarks/peers/{name}_peer.py), horizon, "
              f"{args.peer_paths:,} paths in memory: {peers[name]:.1f} ns per path-month "
              f"({1e3 / peers[name]:.2f} M path-months/s)")  # fmt: skip

    # What the cores themselves gave in this run (a VM's cores may be shared with other guests):
    # raw Philox words, a pure compute loop, on 1 and on all threads.
    rate = {}
    for n_threads in (1, threads):
        numba.set_num_threads(n_threads)
        rate[n_threads] = 1.0 / measures.best_seconds(words, args.rounds)[0]
    numba.set_num_threads(threads)
    print(f"machine: raw Philox words on {threads} threads vs 1: "
          f"{rate[threads] / rate[1]:.2f}x")  # fmt: skip

    # The engine against the faster peer: how many times its rate.
    versus = f" engine_vs_peers={min(peers.values()) / engine_ns:.2f}" if peers else ""
    print(f"kernel_vs_floor={floors['month'].total_ns / kernel_ns:.3f} "
          f"engine_vs_floor={floors['horizon'].total_ns / engine_ns:.3f}{versus}")  # fmt: skip


if __name__ == "__main__":
    main()
