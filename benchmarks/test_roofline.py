"""roofline.py and the floor's arithmetic, at small sizes (a test, not a benchmark: it keeps the
script from rotting and checks that its ratios are what docs/performance.md defines)."""

from __future__ import annotations

import importlib.util
import re

import engine_overhead
import kernel_profile
import measures
import numba
import pytest
import roofline
import skipping

import riskengine as rk


def test_floor_is_the_sum_of_its_three_parts(model):
    f = measures.floor(model, "month", flop_per_s=1e11, s_per_word=1e-9, byte_per_s=1e10)
    # two products a month (W a, D b) of 2 N^2 flop each
    assert f.propagation_ns == pytest.approx(2 * 2 * 84 * 84 / 1e11 * 1e9)
    # monthly slots 1 + 2C = 9, per-path slots 1 + C (1 + R) + C N = 369 over 60 months
    assert measures.normals_per_path_month(model) == pytest.approx(9 + 369 / 60)
    assert f.random_ns == pytest.approx(9 + 369 / 60)
    # (84 loss + 6 banks' credit + 4 severity + 1 tension) float32 a month; once over 60 months
    # the float64 weight, the (7 + 7 + 6) float64 summaries and 6 x 15 float32 credit by segment
    once = 8 + 20 * 8 + 90 * 4
    assert f.write_ns == pytest.approx((95 * 4 + once / 60) / 10)
    assert f.total_ns == pytest.approx(f.propagation_ns + f.random_ns + f.write_ns)
    horizon = measures.floor(model, "horizon", 1e11, 1e-9, 1e10)
    assert horizon.write_ns == pytest.approx((95 * 4 + once) / 60 / 10)


def test_roofline_prints_the_ratios_of_its_own_measurements(capsys):
    roofline.main(["--engine-seconds", "0.1", "--scaling-seconds", "0.1", "--rounds", "1",
                   "--kernel-paths", "256", "--peer-paths", "512"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    last = re.fullmatch(
        r"kernel_vs_floor=([\d.]+) engine_vs_floor=([\d.]+) engine_vs_peers=([\d.]+)", lines[-1]
    )
    assert last, lines[-1]
    text = "\n".join(lines)

    def number(pattern: str) -> float:
        return float(re.search(pattern, text).group(1))

    month = number(r"floor at month resolution: ([\d.]+) ns")
    horizon = number(r"floor at horizon resolution: ([\d.]+) ns")
    kernel = number(r"CPU kernel, month, .*: ([\d.]+) ns per path-month")
    engine = number(r"engine end to end, horizon, .*: ([\d.]+) ns per path-month")
    assert horizon < month
    assert float(last.group(1)) == pytest.approx(month / kernel, rel=0.01, abs=1e-3)
    assert float(last.group(2)) == pytest.approx(horizon / engine, rel=0.01, abs=1e-3)
    peers = [float(ns) for ns in re.findall(r"peer \(.*?\), .*?: ([\d.]+) ns per path-month", text)]
    assert len(peers) == (2 if importlib.util.find_spec("jax") else 1)
    assert float(last.group(3)) == pytest.approx(min(peers) / engine, rel=0.01, abs=0.01)
    assert re.search(r"speedup_2_vs_1=\d+\.\d\d", text)
    assert re.search(r"machine: raw Philox words on \d+ threads vs 1: \d+\.\d\dx", text)


def test_kernel_profile_prints_every_step_and_their_sum(capsys):
    threads = numba.get_num_threads()
    kernel_profile.main(["--repeats", "120", "--rounds", "1", "--kernel-paths", "64"])
    assert numba.get_num_threads() == threads  # restored for the rest of the session
    lines = capsys.readouterr().out.splitlines()
    figures = {}
    for line in lines:
        name, value = re.fullmatch(r"(.+?)\s+([\d.]+)( ns per path-month)?", line).group(1, 2)
        figures[name] = float(value)
    steps = [figures[name] for name in kernel_profile.STEPS]
    credit = figures["credit stage (book_credit, on the host, after the loop)"]
    assert len(figures) == len(steps) + 3 and all(ns >= 0 for ns in [*steps, credit])
    # the draws are part of month_step and are not counted twice; 12 figures rounded to 0.1
    assert figures["sum of the steps"] == pytest.approx(sum(steps) - steps[1] + credit, abs=0.65)


def test_engine_overhead_prints_every_stage_and_their_differences(capsys):
    engine_overhead.main(["--paths", "3000", "--rounds", "1", "--no-warm-up"])
    text = capsys.readouterr().out
    seconds = {
        name: float(re.search(rf"^{re.escape(name)} +([\d.]+) s +[\d.]+ ns per path-month$",
                              text, flags=re.M).group(1))
        for name in ("kernel", "kernel + writes", "simulate", "risk_summary")
    }  # fmt: skip
    writes = float(re.search(r"\+ compression and region writes +(-?[\d.]+) s", text).group(1))
    assert writes == pytest.approx(seconds["kernel + writes"] - seconds["kernel"], abs=0.011)
    assert all(s > 0 for s in seconds.values())


def test_skipping_prints_each_scenarios_share_and_both_times(capsys):
    skipping.main(["--paths", "1024", "--rounds", "1"])
    text = capsys.readouterr().out
    row = (
        r"^(\w+) +quiet chunk-months skipped +([\d.]+)%; +([\d.]+) ns per path-month "
        r"skipping, +([\d.]+) computing all: ([\d.]+)x$"
    )
    rows = re.findall(row, text, re.M)
    share = {name: float(s) for name, s, *_ in rows}
    assert sorted(share) == sorted(rk.builtin_scenarios())
    # the truce scenarios start without a shock; the others with a channel already on
    assert share["truce_holds"] > share["truce_collapse"] > 0.0
    assert share["chip_war"] == 0.0
    for _, _, on, off, ratio in rows:
        assert float(ratio) == pytest.approx(float(off) / float(on), abs=0.011)
    holds = {name: float(on) for name, _, on, *_ in rows}
    last = re.search(r"^truce_holds runs ([\d.]+)x as fast as truce_collapse$", text, re.M)
    assert float(last.group(1)) == pytest.approx(holds["truce_collapse"] / holds["truce_holds"],
                                                 abs=0.011)  # fmt: skip
