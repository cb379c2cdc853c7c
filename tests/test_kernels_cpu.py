"""The CPU kernel: equal to the numpy reference, bitwise independent of blocks and threads."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from kernel_checks import assert_block_equal

import riskengine as rk
from riskengine.backends import block_arrays, run_block, run_block_into
from riskengine.errors import BackendError
from riskengine.kernels import rng, step
from riskengine.kernels.targets import compile_functions
from riskengine.portfolio import read_portfolio
from riskengine.reference import simulate_block
from riskengine.schema import periods

PATHS = 200
SEED = 20261201


@pytest.fixture(scope="module")
def compiled_rng():
    return compile_functions(step.FUNCTIONS[: step.FUNCTIONS.index(rng.normal) + 1], "cpu")


@pytest.mark.parametrize("name", sorted(rk.builtin_scenarios()))
def test_cpu_kernel_equals_reference_for_every_scenario(name):
    model = rk.compile_model(rk.load_scenario(name))
    kernel = run_block(model, SEED, 0, PATHS, "month", backend="cpu")
    assert_block_equal(kernel, simulate_block(model, SEED, 0, PATHS, "month"))


def _variant(model):
    """Stationary tension, a channel already on, a steep PD response with credit-cycle factors
    (rho > 0) on half the rows: the rarer branches."""
    sc = model.scenario
    first = sc.channel_names[0]
    channel = sc.channels[first]
    initial = channel.initial.model_copy(update={"on": True, "severity": 0.7, "months_on": 2})
    channels = dict(sc.channels)
    channels[first] = channel.model_copy(update={"initial": initial})
    variant = sc.model_copy(
        update={
            "tension": sc.tension.model_copy(update={"start": "stationary"}),
            "channels": channels,
            "credit": sc.credit.model_copy(
                update={"sensitivity": sc.credit.sensitivity.model_copy(update={"corporate": 20.0})}
            ),
        }
    )
    book = read_portfolio("banking_systems_2024", model.regions, model.sectors)
    rho = np.where(np.arange(len(book.bank)) % 2 == 0, 0.2, 0.0)
    return rk.compile_model(variant, portfolio=dataclasses.replace(book, rho=rho))


@pytest.mark.parametrize("resolution", ["quarter", "year", "horizon"])
def test_cpu_kernel_sums_periods_like_the_reference(truce_collapse, resolution):
    model = _variant(truce_collapse)
    assert model.arrays.tension_stationary and model.arrays.initial_on[0]
    kernel = run_block(model, SEED, 50, 150, resolution, backend="cpu")
    assert_block_equal(kernel, simulate_block(model, SEED, 50, 150, resolution))


def test_cpu_kernel_counts_paths_beyond_2_to_the_32(truce_collapse):
    """The path counter's high word (rng's layout) is used the same way as in the reference."""
    p0 = 2**32 - 3
    kernel = run_block(truce_collapse, SEED, p0, p0 + 6, "year", backend="cpu")
    assert_block_equal(kernel, simulate_block(truce_collapse, SEED, p0, p0 + 6, "year"))


def test_cpu_kernel_is_bitwise_independent_of_blocks_and_threads(truce_collapse):
    whole = run_block(truce_collapse, SEED, 0, 150, "month", backend="cpu")
    splits = [(0, 1), (1, 64), (64, 65), (65, 100), (100, 150)]
    old_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        parts = [run_block(truce_collapse, SEED, a, b, "month", backend="cpu") for a, b in splits]
    finally:
        numba.set_num_threads(old_threads)
    shifted = run_block(truce_collapse, SEED, 37, 150, "month", backend="cpu")
    for name, values in whole.items():
        joined = np.concatenate([part[name] for part in parts])
        assert np.array_equal(joined, values), name
        assert np.array_equal(shifted[name], values[37:]), name


def test_cpu_kernel_is_bitwise_independent_of_groups_blocks_and_threads():
    """Across the kernel's groups of 512 paths (sorted inside by the month of their first
    shock): blocks that start and end inside a group, span two, or hold a group's last path
    alone, on one thread and on two, give the run's bits."""
    truce_holds = rk.compile_model(rk.load_scenario("truce_holds"))
    whole = run_block(truce_holds, SEED, 0, 1100, "year", backend="cpu")
    splits = [(0, 500), (500, 511), (511, 512), (512, 1030), (1030, 1100)]
    old_threads = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            parts = [run_block(truce_holds, SEED, a, b, "year", backend="cpu") for a, b in splits]
            for name, values in whole.items():
                joined = np.concatenate([part[name] for part in parts])
                assert np.array_equal(joined, values), (threads, name)
    finally:
        numba.set_num_threads(old_threads)


@pytest.mark.parametrize("resolution", ["month", "quarter", "horizon"])
def test_kernel_summaries_are_the_analysis_sums_of_its_cube(truce_collapse, resolution):
    """The kernel sums each region's loss and credit loss over the horizon from the float32
    values it writes, in the cube's order: the same bits as the analysis's sums of the cube,
    so that the table after a run (from the summaries) and the report (from the cube) agree."""
    from riskengine.analysis import summaries

    block = run_block(truce_collapse, SEED, 5, 140, resolution, backend="cpu")
    names = ("loss_total", "credit_loss_total", "value_added_loss_total")
    expected = {name: np.empty_like(block[name]) for name in names}
    share = truce_collapse.arrays.value_added_share.reshape(7, 12).T
    summaries(block["loss"], block["credit_loss"], share, expected)
    for name, values in expected.items():
        assert np.array_equal(block[name], values), name
    assert (block["loss_total"] > 0).any()


def test_cpu_kernel_gives_the_same_bits_in_concurrent_threads(truce_collapse):
    """As in a dask worker's thread pool: kernels running at once do not disturb each other."""
    expected = run_block(truce_collapse, SEED, 0, 130, "year", backend="cpu")
    results = [None] * 3

    def work(i):
        results[i] = run_block(truce_collapse, SEED, 0, 130, "year", backend="cpu")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        for name in expected:
            assert np.array_equal(result[name], expected[name]), name


def test_no_shock_gives_exactly_zero_loss(truce_collapse):
    """MODEL.md closed form 6: every channel off and p_on = 0."""
    a = truce_collapse.arrays
    quiet = dataclasses.replace(
        truce_collapse,
        arrays=a._replace(
            threshold_on=np.full_like(a.threshold_on, np.inf),
            initial_on=np.zeros_like(a.initial_on),
        ),
    )
    out = run_block(quiet, SEED, 0, 70, "quarter", backend="cpu")
    for name in ("loss", "credit_loss", "severity"):
        assert not np.any(out[name]), name
    assert np.all(out["weight"] == 1.0)


def test_compiled_philox_equals_numpy_philox_bit_for_bit(compiled_rng):
    philox = compiled_rng["philox4x32"]
    gen = np.random.default_rng(5)
    words = gen.integers(0, 2**32, size=(50, 6), dtype=np.uint64)
    for row in words:
        assert philox(*row) == tuple(rng.philox4x32(*row))


def test_compiled_normals_equal_rng_normals(compiled_rng):
    """Same words and formula: numba (with fused multiply-adds) and numpy agree to an ulp or two."""
    normal = compiled_rng["normal"]
    seed = 2**40 + 3
    k0, k1 = rng.split_seed(seed)
    paths = np.array([0, 1, 2**32 + 5])
    expected = rng.normals(seed, paths, np.arange(3), 9)
    got = np.array([[[normal(k0, k1, p, m, s) for s in range(9)] for m in range(3)] for p in paths])
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_run_block_into_writes_caller_arrays(truce_collapse, backend):
    period_of_month, starts = periods(truce_collapse.start, truce_collapse.horizon, "year")
    out = block_arrays(truce_collapse, 9, len(starts))
    for values in out.values():
        values.fill(np.nan)
    run_block_into(truce_collapse, SEED, 3, 12, period_of_month, out, backend=backend)
    assert_block_equal(out, simulate_block(truce_collapse, SEED, 3, 12, "year"))


def test_run_block_into_rejects_arrays_that_do_not_fit(truce_collapse):
    period_of_month, starts = periods(truce_collapse.start, truce_collapse.horizon, "quarter")
    out = block_arrays(truce_collapse, 4, len(starts))
    out["loss"] = np.zeros(out["loss"].shape)
    with pytest.raises(ValueError, match=r"out\['loss'\] must be .*float32.*block_arrays"):
        run_block_into(truce_collapse, SEED, 0, 4, period_of_month, out)
    out = block_arrays(truce_collapse, 4, len(starts))
    with pytest.raises(ValueError, match="period_of_month"):
        run_block_into(truce_collapse, SEED, 0, 4, period_of_month[::-1].copy(), out)
    with pytest.raises(ValueError, match=r"p0 < p1"):
        run_block_into(truce_collapse, SEED, 4, 4, period_of_month, out)
    del out["loss_total"]
    with pytest.raises(ValueError, match=r"out: missing 'loss_total'; use .*block_arrays"):
        run_block_into(truce_collapse, SEED, 0, 4, period_of_month, out, backend="reference")
    with pytest.raises(BackendError, match="unknown backend 'gpu'; use one of cpu, cuda"):
        run_block(truce_collapse, SEED, 0, 4, backend="gpu")


def test_cuda_backend_without_gpu_says_to_use_cpu(truce_collapse):
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(BackendError, match=r"^no CUDA device found; use --backend cpu$"):
        run_block(truce_collapse, SEED, 0, 4, backend="cuda")


def test_importing_riskengine_loads_no_kernel():
    code = (
        "import sys, riskengine, riskengine.backends\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'"
        " or m.startswith('riskengine.kernels.') and m != 'riskengine.kernels.rng'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- model v2's closed forms, through the kernel (docs/model.md, closed-form checks 5-8) ------


def _closed_form_model(economy, horizon: int, **channel_fields):
    from test_reference import _always_on, compiled

    return compiled(economy, horizon, {"only": _always_on(**channel_fields)},
                    propagation={"recovery_speed": 1.0})  # fmt: skip


def test_cpu_kernel_gives_leontief_for_a_pure_demand_shock(tiny_economy):
    exposure = {"nodes": {"CHN": {"MFG": 0.2, "FIN": 0.05}, "USA": {"MFG": 0.1}}}
    model = _closed_form_model(tiny_economy, 120, severity=0.5, kind="demand", exposure=exposure)
    dx = tiny_economy.leontief_inverse() @ (model.arrays.exposure[0] * 0.5 * tiny_economy.x)
    loss = run_block(model, 1, 0, 3, "month")["loss"][:, -1].astype(np.float64)
    np.testing.assert_allclose(loss, np.broadcast_to((dx / 12).reshape(2, 2).T, loss.shape),
                               rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize(("severity", "months"), [(1.0, 3), (0.5, 6)])
def test_cpu_kernel_loses_nothing_until_the_stocks_run_out(tiny_economy, severity, months):
    model = _closed_form_model(tiny_economy, 12, severity=severity, kind="supply",
                               stock={"months": 3.0, "rebuild": 0.5})  # fmt: skip
    loss = run_block(model, 1, 0, 40, "month")["loss"].sum(axis=(2, 3))  # (path, month)
    assert np.all(loss[:, :months] == 0.0) and np.all(loss[:, months] > 0.0)


def test_cpu_kernel_gives_bystanders_the_diverted_sales(tiny_economy):
    """With diversion the exposed region's lost sales reappear, in part, as the bystander's
    gain: a negative loss in the cube."""
    exposure = {"nodes": {"CHN": {"MFG": 0.2}}}
    model = _closed_form_model(tiny_economy, 24, severity=0.5, kind="demand", exposure=exposure,
                               diversion={"share": 0.5})  # fmt: skip
    loss = run_block(model, 1, 0, 2, "month")["loss"][:, -1].astype(np.float64)  # sector, region
    usa, chn = model.regions.index("USA"), model.regions.index("CHN")
    assert (loss[:, :, chn] > 0).all() and loss[0, 0, usa] < 0  # USA.MFG gains
    assert_block_equal(run_block(model, 1, 0, 2, "month"), simulate_block(model, 1, 0, 2, "month"))


@pytest.mark.parametrize("name", ["truce_holds", "truce_collapse"])
def test_skipping_quiet_months_changes_no_bit(name):
    """The kernel skips a chunk's shocks, products and state update until its first shock
    (step.simulate_lanes): every output equals, bit for bit, the run that computes them all, and
    the skip is not idle (a quiet chunk-month exists in each of these scenarios at 2,000
    paths)."""
    from riskengine.kernels import cpu
    from riskengine.kernels.credit import years
    from riskengine.kernels.layout import kernel_model

    model = rk.compile_model(rk.load_scenario(name))
    km = kernel_model(model.arrays)
    period_of_month, starts = periods(model.start, model.horizon, "month")
    runs, shares = [], []
    for skip in (True, False):
        out = block_arrays(model, 2000, len(starts))
        year_q = np.empty((2000, years(model.horizon), model.n_nodes), np.float32)
        log_weight = np.empty(2000)
        shares.append(cpu.run_block_into(km, SEED, 5, 2005, period_of_month, out, year_q,
                                         log_weight, skip_quiet=skip))  # fmt: skip
        out.update(year_q=year_q, log_weight=log_weight)
        runs.append(out)
    assert shares[0] > 0.0 and shares[1] == 0.0
    for key in ("loss", "severity", "tension", "loss_total", "value_added_loss_total",
                "year_q", "log_weight"):  # fmt: skip
        assert runs[0][key].tobytes() == runs[1][key].tobytes(), key


@pytest.mark.parametrize("name", ["truce_holds", "truce_collapse"])
def test_the_scout_finds_each_paths_first_shock(name):
    """cpu.first_shocks (by which the CPU kernel sorts a group's paths) gives the first month
    with a nonzero effective severity, as the reference's monthly severities show it, and the
    horizon for a path without one."""
    from riskengine.kernels.cpu import compiled_steps
    from riskengine.kernels.layout import kernel_model

    model = rk.compile_model(rk.load_scenario(name))
    km = kernel_model(model.arrays)
    T, lanes = model.horizon, 64
    first = np.empty(lanes, np.int64)
    k0, k1 = rng.split_seed(SEED)
    compiled_steps()["first_shocks"](km, k0, k1, np.arange(100, 100 + lanes), T, first)
    severity = simulate_block(model, SEED, 100, 100 + lanes, "month")["severity"]
    shocked = (severity != 0.0).any(axis=2)
    want = np.where(shocked.any(axis=1), shocked.argmax(axis=1), T)
    np.testing.assert_array_equal(first, want)
    assert len(np.unique(want)) > 1  # not all at one month
