"""Where the CPU kernel's time goes: each step of one chunk, timed on its own, on one thread.

    python benchmarks/kernel_profile.py [--repeats R] [--rounds K] [--kernel-paths P]

Runs one chunk of :data:`riskengine.kernels.cpu.CHUNK` lanes of the default model through the
kernel's own compiled functions (:func:`riskengine.kernels.cpu.compiled_steps`): the kernel's
month loop (``simulate_lanes``) brings the chunk's state to the horizon's end, then each step is
timed ``R`` times in a compiled loop, less the time of building that state, and printed as its
cost in ns per path-month on one thread (``init_lanes`` runs once per path: its cost is spread
over the horizon's months; ``write_year`` once a year: its cost is spread over the year's
months). The credit stage (:func:`riskengine.kernels.credit.book_credit`, run on the host after
the month loop) is timed on the yearly losses of a block of ``P`` paths. ``first_shocks`` (the
scout by which the kernel groups paths without a shock yet) runs once per path over the
horizon, each month for the lanes still waiting for their first shock only, on a group of 512
paths as in the kernel (on a chunk of 32 its fixed costs weighed about twice). The steps' sum
against the whole kernel (month loop and credit stage, ``backends.run_block_into``) on one
thread (monthly resolution, same run) shows what the loop itself adds, less what the kernel
skips: it does not run ``direct_shocks``, the products and ``update_lanes`` in a chunk's
quiet months (``benchmarks/skipping.py`` measures how many). docs/performance.md records the
output.
"""

from __future__ import annotations

import argparse

import measures
import numba
import numpy as np
from threadpoolctl import threadpool_limits

from riskengine.backends import book_credit_into
from riskengine.kernels import rng
from riskengine.kernels.cpu import CHUNK, GROUP_CHUNKS, chunk_state, compiled_steps
from riskengine.kernels.credit import years
from riskengine.kernels.layout import kernel_model
from riskengine.kernels.targets import CPU_OPTIONS
from riskengine.schema import periods

_f = compiled_steps()
_simulate, _init, _weights, _month, _draw, _first = (
    _f[name]
    for name in (
        "simulate_lanes", "init_lanes", "init_weights", "month_step", "_draw_pairs", "first_shocks"
    )
)  # fmt: skip
_shock, _propagate, _update = _f["direct_shocks"], _f["propagate"], _f["update_lanes"]
_losses, _write, _write_year = _f["period_losses"], _f["write_period"], _f["write_year"]
_summaries = _f["add_summaries"]
GROUP = CHUNK * GROUP_CHUNKS

STEPS = (
    "init_lanes and init_weights (once per path, over the horizon)",
    "month_step: draws (Philox, Box-Muller)",
    "month_step: all (draws, tension, regimes, severity)",
    "direct_shocks (stocks, diversion)",
    "propagation W A and D B (two BLAS sgemm)",
    "update_lanes (shocks clipped, two states, sums of q)",
    "period end: period_losses",
    "period end: write_period, every lane",
    "period end: period sums set back to 0",
    "period end: add_summaries (horizon totals by region)",
    "year end: write_year, every lane (once in 12 months)",
    "first_shocks: the scout's regimes (once per path, over the horizon)",
)


@numba.njit(**CPU_OPTIONS)
def _run(km, k0, k1, lanes, period_of_month, step_index, repeats, cube):
    C = km.exposure.shape[0]
    T = period_of_month.shape[0]
    state = chunk_state(km, lanes)
    (g, on, sev, months_on, head, weights, z, scratch, e, supply, demand, stock, a, b, ma, mb,
     q_sum, year_sum, sev_sum, g_sum, values, loss_sum, va_sum, log_weight) = state  # fmt: skip
    loss, severity, tension, year_q = cube[0], cube[1], cube[2], cube[5]
    paths = np.arange(lanes)
    group = np.arange(GROUP)  # the scout runs over a group of paths, as in the kernel
    first = np.empty(GROUP, np.int64)
    # A state as at the end of a run: the kernel's own month loop over the whole horizon.
    _simulate(km, k0, k1, paths, 0, lanes, period_of_month, km.supply_matrix, km.demand_matrix,
              state, cube, False)  # fmt: skip
    for r in range(repeats):
        t = r % T
        if step_index in (0, 1):
            paths[:] = np.arange(lanes) + r * lanes
        if step_index == 11:
            group[:] = np.arange(GROUP) + r * GROUP
        if step_index == 0:
            _init(km, k0, k1, paths, g, on, sev, months_on, head, log_weight)
            _weights(km, k0, k1, paths, head, weights)
        elif step_index == 1:
            _draw(k0, k1, paths, t + 1, (C + 2) // 2, z)
        elif step_index == 2:
            _month(
                km, k0, k1, paths, t, g, on, sev, months_on, z, scratch, e, g_sum, sev_sum,
                log_weight,
            )  # fmt: skip
        elif step_index == 11:
            _first(km, k0, k1, group, T, first)
        elif step_index == 3:
            _shock(km, weights, e, stock, supply, demand)
        elif step_index == 4:
            _propagate(km.supply_matrix, a, ma)
            _propagate(km.demand_matrix, b, mb)
        elif step_index == 5:
            _update(km, a, b, ma, mb, supply, demand, q_sum, year_sum)
        elif step_index == 6:
            _losses(km, q_sum, values)
        elif step_index == 7:
            for i in range(lanes):
                _write(i, i, t, values, sev_sum, g_sum, loss, severity, tension)
        elif step_index == 8:
            q_sum[:] = 0.0
            sev_sum[:] = 0.0
            g_sum[:] = 0.0
        elif step_index == 9:
            _summaries(values, km.va_share, loss_sum, va_sum)
        elif step_index == 10:
            for i in range(lanes):
                _write_year(i, i, (r // 12) % year_q.shape[1], 12.0, year_sum, year_q)
    return q_sum.sum()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20_000, help="calls of each step per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--kernel-paths", type=int, default=4096)
    args = p.parse_args(argv)

    model = measures.default_model()
    km = kernel_model(model.arrays)
    k0, k1 = rng.split_seed(measures.SEED)
    T = model.horizon
    S, R, C = len(model.sectors), len(model.regions), len(model.channels)
    # The cube arrays of one chunk at monthly resolution, in simulate_lanes's order.
    cube = (
        np.zeros((CHUNK, T, S, R), np.float32),  # loss
        np.zeros((CHUNK, T, C), np.float32),  # severity
        np.zeros((CHUNK, T), np.float32),  # tension
        np.zeros((CHUNK, R)),  # loss_total
        np.zeros((CHUNK, R)),  # value_added_loss_total
        np.zeros((CHUNK, years(T), S * R), np.float32),  # year_q, for the credit stage
        np.zeros(CHUNK),  # log_weight
    )
    period_of_month = periods(model.start, T, "month")[0]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _profile(args, model, km, k0, k1, period_of_month, cube)
    finally:
        numba.set_num_threads(threads)


def _profile(args, model, km, k0, k1, period_of_month, cube) -> None:
    T = len(period_of_month)

    def seconds(index: int, repeats: int) -> float:
        def run() -> None:
            _run(km, k0, k1, CHUNK, period_of_month, index, repeats, cube)

        return measures.best_seconds(measures.Work(run, 1, "", lambda: None), args.rounds)[0]

    total = 0.0
    with threadpool_limits(1, user_api="blas"):
        # Each call first builds a chunk's state (the whole horizon): timed alone, taken off.
        setup = seconds(0, 0)
        for index, name in enumerate(STEPS):
            repeats = max(1, args.repeats // T) if index in (0, 11) else args.repeats
            lanes = GROUP if index == 11 else CHUNK
            path_months = repeats * lanes * {0: T, 10: 12, 11: T}.get(index, 1)
            ns = 1e9 * max(0.0, seconds(index, repeats) - setup) / path_months
            if index != 1:  # the draws are part of month_step
                total += ns
            print(f"{name:62s} {ns:7.1f} ns per path-month")
        credit_ns = _credit_stage(model, args, period_of_month)
        total += credit_ns
        print(f"{'credit stage (book_credit, on the host, after the loop)':62s} {credit_ns:7.1f}")
    kernel = measures.kernel(model, args.kernel_paths, "month")
    kernel_ns = 1e9 * measures.best_seconds(kernel, args.rounds)[0] / kernel.count
    print(f"{'sum of the steps':62s} {total:7.1f}")
    print(f"{f'the kernel, monthly, {args.kernel_paths} paths, 1 thread':62s} {kernel_ns:7.1f}")


def _credit_stage(model, args, period_of_month) -> float:
    """ns per path-month of the credit stage on one thread, from the yearly losses of a block
    of ``--kernel-paths`` paths simulated by the kernel."""
    from riskengine.backends import block_arrays, run_block_into

    P, T = args.kernel_paths, len(period_of_month)
    out = block_arrays(model, P, T)
    run_block_into(model, measures.SEED, 0, P, period_of_month, out)
    # the yearly mean losses of the block, as the month loop writes them
    q = out["loss"].astype(np.float64) / model.arrays.loss_scale.reshape(-1, len(model.sectors)).T
    q = q.transpose(0, 1, 3, 2).reshape(P, T, -1)
    year_q = np.stack([q[:, y * 12 : (y + 1) * 12].mean(1) for y in range(years(T))], 1)
    year_q = year_q.astype(np.float32)

    def run() -> None:
        book_credit_into(model, measures.SEED, 0, P, period_of_month, year_q, np.zeros(P), out)

    seconds = measures.best_seconds(measures.Work(run, 1, "", lambda: None), args.rounds)[0]
    return 1e9 * seconds / (P * T)


if __name__ == "__main__":
    main()
