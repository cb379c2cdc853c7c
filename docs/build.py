"""Regenerate every figure, table and number the docs quote from the library.

    python docs/build.py            # rewrite the generated blocks of the docs and docs/img/*.png
    python docs/build.py --check    # recompute; exit 1 naming each block that no longer matches

The docs (``README.md`` and ``docs/*.md``) hold generated blocks between a line
``<!-- build:NAME -->`` and a line ``<!-- /build:NAME -->``; this script writes everything between
them, and nothing else. ``tests/test_docs.py`` runs ``--check``, so a quoted number that no longer
matches the library fails the suite. Figures (PNG) are written but not compared: their bytes
depend on the matplotlib version.

Every run here uses the numpy reference backend, whose float64 arithmetic gives the same figures
on every machine to the digits shown (the CPU kernel, with float32 BLAS products, agrees to about
1e-6 relative), and seed 0, the command line's default, so that the figures are those of the
README's quick start, ``riskengine run truce_collapse --paths 20000``, to their last digit or so.
Takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import io
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from rich.console import Console

import riskengine as rk
from riskengine.formatting import bank_table, display_unit, risk_table, summary_for_tables

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "configs" / "economy" / "README.md"]
SEED = 0
REPORT_PATHS = 20_000  # the README's quick start
LIBRARY_PATHS = 2_000  # per scenario, for the library's tables
STUDY_SAMPLES, STUDY_PATHS = 16, 2_000  # the README's study figure: 256 points
COMPARE_PATHS = 20_000  # the comparison, reverse stress test and tilted run of the docs
REVERSE_LOSS = 30_000  # USD bn: the reverse stress test's X (about the 99 % VaR of the total)
BLOCK = re.compile(
    r"(<!-- build:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /build:(?P=name) -->)", re.S
)


def run(name: str, paths: int, **changes) -> tuple[rk.CompiledModel, xr.Dataset]:
    """The scenario's compiled model (with ``changes`` to its arrays) and its reference cube."""
    model = rk.compile_model(rk.load_scenario(name))
    if changes:
        model = dataclasses.replace(model, arrays=model.arrays._replace(**changes))
    return model, rk.simulate(model, paths, SEED, backend="reference")


def text_of(renderable) -> str:
    """A rich renderable as plain text, 100 columns wide."""
    console = Console(file=io.StringIO(), width=100, color_system=None, legacy_windows=False)
    console.print(renderable)
    return "".join(line.rstrip() + "\n" for line in console.file.getvalue().splitlines())


def figures_of(write, ds) -> None:
    """Write ``ds``'s report with ``write`` into a temporary folder and copy its PNGs into
    docs/img."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, png in write(ds, Path(tmp)).figures.items():
            (DOCS / "img" / f"{name}.png").write_bytes(png.read_bytes())


# --- the blocks ---------------------------------------------------------------------------------


class Builder:
    """Computes each block once; ``figures`` also writes the report's PNGs into docs/img."""

    def __init__(self, figures: bool):
        self.figures = figures
        self._cache: dict[str, object] = {}

    def cached(self, key: str, make: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def report_run(self):
        return self.cached("report", lambda: run("truce_collapse", REPORT_PATHS)[1])

    def library(self):
        return self.cached(
            "library", lambda: {n: run(n, LIBRARY_PATHS) for n in rk.builtin_scenarios()}
        )

    # report.md -------------------------------------------------------------------------------

    def report_table(self) -> str:
        ds = self.report_run()
        if self.figures:
            from riskengine.report import write_report

            figures_of(write_report, ds)
        summary = summary_for_tables(ds, (0.99,))
        tables = text_of(risk_table(ds, (0.99,), summary))
        tables += text_of(bank_table(ds, (0.99,), summary))
        return "```\n" + tables + "```\n"

    def study(self) -> str:
        """The study of truce_collapse: its indices table (and, building, the two PNGs).

        The one block computed by the CPU kernel (256 points on the reference would take minutes):
        its float32 products agree with the reference to about 1e-6, far below the 2 decimals
        shown."""
        from riskengine.study_report import study_table, write_study_report

        ds = rk.study("truce_collapse", STUDY_SAMPLES, STUDY_PATHS, SEED)
        if self.figures:
            figures_of(write_study_report, ds)
        return (
            f'`rk.study("truce_collapse", {STUDY_SAMPLES}, {STUDY_PATHS}, seed={SEED})`: '
            f"{ds.sizes['sample']} points x {STUDY_PATHS:,} paths.\n\n```\n"
            + text_of(study_table(ds))
            + "```\n"
        )

    def comparison(self):
        """truce_collapse with every channel switched off in turn and the Shapley subsets (CPU
        kernel, like the study: 20 runs of 20,000 paths on the reference would take minutes)."""
        return self.cached(
            "comparison",
            lambda: rk.counterfactual("truce_collapse", COMPARE_PATHS, SEED,
                                      off=list(rk.load_scenario("truce_collapse").channels),
                                      shapley_values=True),
        )  # fmt: skip

    def comparison_tables(self) -> str:
        from riskengine.comparison_report import (
            difference_table,
            shapley_table,
            write_comparison_report,
        )

        ds = self.comparison()
        if self.figures:
            figures_of(write_comparison_report, ds)
        return (
            f'`rk.counterfactual("truce_collapse", {COMPARE_PATHS}, seed={SEED}, off=[every '
            "channel], shapley_values=True)`:\n\n```\n"
            + text_of(difference_table(ds))
            + text_of(shapley_table(ds))
            + "```\n"
        )

    def shapley_readme(self) -> str:
        from riskengine.comparison_report import shapley_table

        return "```\n" + text_of(shapley_table(self.comparison())) + "```\n"

    def paired_ratios(self) -> str:
        ds = self.comparison()
        ratio = ds.difference_EL_se / ds.difference_EL_se_unpaired
        rows = []
        for v in ds.variant.values[1:]:
            r = ratio.sel(variant=v)
            rows.append(
                f"| `{v}` | {float(r.sel(figure='total')):.3f} | "
                f"{float(r.sel(figure='USA')):.3f} | {float(r.sel(figure='CHN')):.3f} | "
                f"{float(r.sel(figure='credit')):.3f} |"
            )
        return (
            f"Paired / unpaired standard error of the EL difference, `truce_collapse`, "
            f"{COMPARE_PATHS:,} paths, seed {SEED}:\n\n"
            "| variant | total output loss | USA | CHN | credit losses |\n"
            "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
        )

    def reverse(self) -> str:
        from riskengine.reverse import fig_path, story_table

        def search():
            model = rk.compile_model(rk.load_scenario("truce_collapse"))
            return rk.reverse_stress(model, REVERSE_LOSS * 1e3, seed=SEED, paths=COMPARE_PATHS)

        result = self.cached("reverse", search)
        if self.figures:
            from riskengine.report import _png

            _png(fig_path(result), DOCS / "img" / "reverse_path.png")
        return (
            f"`riskengine reverse truce_collapse --loss {REVERSE_LOSS} --paths {COMPARE_PATHS}"
            f"` (seed {SEED}; {result.point.rounds} rounds, {result.point.evaluations:,} "
            "evaluations of the reference model):\n\n```\n" + text_of(story_table(result)) + "```\n"
        )

    def importance(self) -> str:
        """truce_holds's 99.9 % VaR, plain and under the automatic tilt, one run each."""
        from riskengine.weighted import tail_stats

        rows = []
        for label, tilt in (("plain Monte Carlo", None), ("--tilt auto", "auto")):
            ds = rk.simulate("truce_holds", COMPARE_PATHS, SEED, resolution="horizon", tilt=tilt)
            x = ds.loss_total.sum("region").values.astype(np.float64)
            t = tail_stats(x, ds.weight.values, np.array([0.999]))
            scale, unit = display_unit(ds.loss_total.attrs["units"])
            rows.append(
                f"| {label} | {scale * t.var[0]:,.0f} ± {scale * t.var_se[0]:,.0f} | "
                f"{scale * t.es[0]:,.0f} ± {scale * t.es_se[0]:,.0f} |"
            )
        return (
            f"`truce_holds`, {COMPARE_PATHS:,} paths, seed {SEED}, total output loss over the "
            f"horizon ({unit}):\n\n| run | VaR 99.9 % | ES 99.9 % |\n| --- | --- | --- |\n"
            + "\n".join(rows)
            + "\n"
        )

    # model.md --------------------------------------------------------------------------------

    def attribution(self) -> str:
        ds = self.report_run()
        a = rk.attribution(ds, levels=[0.99]).sel(level=0.99)
        scale, unit = display_unit(a.attrs["units"])
        body, tail = a.severity_months.values, a.severity_months_tail.values
        ratio = tail / body
        parts = [
            f"{c} {b:.1f} -> {t:.1f} (x{r:.1f})"
            for c, b, t, r in zip(a.channel.values, body, tail, ratio, strict=True)
        ]
        top = a.isel(channel=int(np.argmax(ratio)))
        every = (
            "every channel is active in every path of the 99 % tail, so activity alone does not "
            "separate them; intensity does. "
            if bool((a.p_active_tail > 0.999).all())
            else ""
        )
        return (
            f"In `truce_collapse` ({REPORT_PATHS:,} paths, seed {SEED}), {every}full-severity "
            f"months, all paths -> 99 % tail: {', '.join(parts)}. The channel whose tail holds "
            f"the most of it against an average path is `{top.channel.item()}`, active in "
            f"{100 * float(top.p_active):.0f} % of paths: the expected total loss is "
            f"{scale * float(top.EL_active):,.0f} {unit} over paths where it bit against "
            f"{scale * float(top.EL_inactive):,.0f} {unit} where it never did. (Figures from "
            "`rk.attribution(ds, levels=[0.99])` on the run of docs/report.md, made by "
            "`python docs/build.py`.)\n"
        )

    # calibration.md --------------------------------------------------------------------------

    def on_shares(self) -> str:
        sc = rk.load_scenario("truce_collapse")
        shares = [f"{ch.p_on / (ch.p_on + ch.p_off):.2f} ({n})" for n, ch in sc.channels.items()]
        return (
            "Without tension or retaliation a channel is on a share `p_on / (p_on + p_off)` of "
            f"the time: {', '.join(shares)} in `truce_collapse`.\n"
        )

    def propagation(self) -> str:
        m = rk.compile_model(rk.load_scenario("truce_collapse"))
        p = m.scenario.propagation

        def radius(matrix: np.ndarray) -> float:
            return float(np.max(np.abs(np.linalg.eigvals(matrix))))

        eco = rk.load_economy(m.scenario.economy)
        return (
            "Spectral radii (each must be below 1; `compile_model` checks them): supply "
            f"operator W = {p.supply_weight:g} A^T {radius(m.arrays.supply_matrix):.2f}, demand "
            f"operator D = {p.demand_weight:g} A* {radius(m.arrays.demand_matrix):.2f} (A and "
            f"A* share their eigenvalues: with weight 1 both would be {radius(eco.A):.2f}).\n"
        )

    def portfolio(self) -> str:
        m = rk.compile_model(rk.load_scenario("truce_collapse"))
        book = rk.portfolio.read_portfolio("banking_systems_2024", m.regions, m.sectors)
        groups = {"firms": set(m.sectors), "households": {"households"},
                  "commercial real estate": {"commercial_real_estate"},
                  "sovereign": {"sovereign"}}  # fmt: skip
        rows = [
            "| bank | "
            + " | ".join(groups)
            + " | EAD | of which abroad | CET1 | RWA | CET1 ratio |",
            "| --- " * (len(groups) + 6) + "|",
        ]
        seg = np.array(book.segment)
        bank = np.array(book.bank)
        home = np.array([b.removesuffix("_banks") for b in book.bank])
        for i, b in enumerate(m.banks):
            mine = bank == b
            cells = [book.ead[mine & np.isin(seg, list(g))].sum() / 1e6 for g in groups.values()]
            abroad = book.ead[mine & (np.array(book.region) != home)].sum() / 1e6
            rows.append(
                f"| {b} | "
                + " | ".join(f"{c:.2f}" for c in cells)
                + f" | {book.ead[mine].sum() / 1e6:.2f} | {abroad:.2f} | {m.cet1[i] / 1e6:.2f} | "
                f"{m.rwa[i] / 1e6:.2f} | {100 * m.cet1[i] / m.rwa[i]:.1f} % |"
            )
        return (
            "USD tn at end-2024 exchange rates (configs/portfolios/build.py; the economy's unit is "
            "USD million).\n\n" + "\n".join(rows) + "\n"
        )

    def supervisory(self) -> str:
        from riskengine.supervisory import (
            builtin_supervisory,
            calibrate,
            load_supervisory,
            run_supervisory,
        )

        rows = [
            "| path | role | bank, borrowers | model, bp of RWA | published, bp | model / "
            "published | status |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        fitted = None
        for name in builtin_supervisory():
            cfg = load_supervisory(name)
            if cfg.role == "calibration":
                fitted = calibrate(cfg)
            r = run_supervisory(cfg)
            status = "calibrated" if cfg.role == "calibration" else (
                "pass" if r.passed else "FAIL")  # fmt: skip
            rows.append(
                f"| {name} | {cfg.role} | {cfg.bank}, {cfg.region} | {r.model_bp:.0f} (of which "
                f"baseline {r.baseline / r.loss * r.model_bp:.0f}) | {cfg.observed_bp:.0f} | "
                f"{r.ratio:.2f} | {status} |"
            )
        return (
            f"Calibrated sensitivity {fitted:.4f} (the library uses {rk.scenario.SENSITIVITY}). "
            "Model losses include the baseline's expected loss over the horizon, as supervisors "
            "book them; pass: within a factor of 2.\n\n" + "\n".join(rows) + "\n"
        )

    def replays(self) -> str:
        from riskengine.formatting import replay_table
        from riskengine.replay import builtin_replays, run_replay

        results = [r for name in builtin_replays() for r in run_replay(name, "reference")]
        return "```\n" + text_of(replay_table(results)) + "```\n"

    def stock_sensitivity(self) -> str:
        from riskengine.replay import episode_model, load_replay, run_replay

        replay = load_replay("rare_earths_2025")
        base = episode_model(replay)
        channel = base.channels.index("rare_earths")
        cells = []
        for months in (1.0, 1.1, 1.2, 1.3, 1.4, 1.5):
            stock = base.arrays.stock_months.copy()
            stock[channel] = np.where(stock[channel] > 0, months, 0.0)
            model = dataclasses.replace(base, arrays=base.arrays._replace(stock_months=stock))
            us = run_replay(replay, "reference", model=model)[0]
            cells.append(f"{months:.1f} months: {us.model:+.2f} % ({us.status})")
        return (
            "US transport equipment output, May-July 2025, against the stock of magnets held "
            "(`stock.months` of `rare_earths`, every buying node alike): "
            + "; ".join(cells)
            + ".\n"
        )

    def odds(self) -> str:
        from riskengine.risk import escalation_odds

        rows = [
            "| scenario | channel | by year 1 | by year 3 | by year 5 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, (_, ds) in self.library().items():
            p = escalation_odds(ds, years=(1, 3, 5)).p_bite
            for channel in p.channel.values:
                cells = " | ".join(f"{100 * float(v):.0f} %" for v in p.sel(channel=channel))
                label = "at least one" if channel == "any" else f"`{channel}`"
                rows.append(f"| {name} | {label} | {cells} |")
        return (
            f"Probability that each channel has bitten (effective severity above 0 in some "
            f"month) by the end of years 1, 3 and 5 ({LIBRARY_PATHS:,} paths per scenario, seed "
            f"{SEED}: a standard error of about 1 point; `riskengine.escalation_odds`).\n\n"
            + "\n".join(rows)
            + "\n"
        )

    # calibration.md: magnitudes --------------------------------------------------------------

    def _magnitudes(self) -> dict[str, dict]:
        def one(model, ds) -> dict:
            R, S = len(model.regions), len(model.sectors)
            years = ds.attrs["horizon_months"] / 12
            loss = ds.loss.sum("time").values.astype(float)  # (path, sector, region)
            x = model.arrays.loss_scale.reshape(R, S).T * 12  # (sector, region) annual output
            va_share = ds.value_added_share.values
            gdp = ds.gdp.values
            va_lost = (loss * va_share).sum(1)  # (path, region)
            credit = ds.credit_loss.sum("time").values.astype(float) / 1e3  # USD bn, by bank
            depletion = 1e3 * credit / ds.rwa.values * 1e4  # bp of RWA
            return {
                "va_total": 100 * va_lost.sum(1) / (gdp.sum() * years),
                "va_region": 100 * va_lost.mean(0) / (gdp * years),
                "total": 100 * loss.sum((1, 2)) / (x.sum() * years),
                "credit": credit,
                "depletion": depletion,
                "banks": model.banks,
                "regions": model.regions,
                "gdp": gdp.sum(),
            }

        return self.cached(
            "magnitudes", lambda: {n: one(m, ds) for n, (m, ds) in self.library().items()}
        )

    def sanity_world(self) -> str:
        m = self._magnitudes()
        rows = [
            "| scenario | value added lost, % of world GDP a year (± s.e.) | 99th pct | gross "
            "output lost, % a year | credit loss mean, USD bn | credit 99th pct |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, v in m.items():
            t, cl = v["va_total"], v["credit"].sum(1)
            rows.append(
                f"| {name} | {t.mean():.2f} ± {t.std() / np.sqrt(t.size):.2f} | "
                f"{np.percentile(t, 99):.2f} | {v['total'].mean():.2f} | {cl.mean():.0f} | "
                f"{np.percentile(cl, 99):.0f} |"
            )
        world = next(iter(m.values()))["gdp"] / 1e6
        return (
            f"World totals ({LIBRARY_PATHS:,} paths per scenario, seed {SEED}). Value added "
            "lost over the 60 months as a percentage of five years of world GDP (USD "
            f"{world:.1f} tn a year at 2023 prices in the rebased table): the average share of "
            "GDP lost per year, the figure to hold against GDP benchmarks. Gross output lost "
            "the same way against world gross output; credit losses of the library's banking "
            "systems, beyond their baseline's expected loss, summed over the five years and all "
            "banks, USD bn.\n\n" + "\n".join(rows) + "\n"
        )

    def sanity_regions(self) -> str:
        m = self._magnitudes()
        first = next(iter(m.values()))
        regions, banks = first["regions"], first["banks"]
        rows = [
            f"| scenario | {' | '.join(regions)} |",
            "| --- |" + " --- |" * len(regions),
        ]
        for name, v in m.items():
            rows.append(f"| {name} | " + " | ".join(f"{a:.2f}" for a in v["va_region"]) + " |")
        names = [b.removesuffix("_banks") for b in banks]
        credit = [
            f"| scenario | {' | '.join(names)} |",
            "| --- |" + " --- |" * len(banks),
        ]
        for name, v in m.items():
            cells = [
                f"{c:.0f} ({d:.0f})"
                for c, d in zip(v["credit"].mean(0), v["depletion"].mean(0), strict=True)
            ]
            credit.append(f"| {name} | " + " | ".join(cells) + " |")
        return (
            "Value added lost, % of the region's GDP a year:\n\n"
            + "\n".join(rows)
            + "\n\nCredit losses of each banking system over the five years, USD bn (and in bp "
            "of its risk-weighted assets):\n\n" + "\n".join(credit) + "\n"
        )

    def channel_split(self) -> str:
        rows = ["| scenario | all | rare_earths | chips | dollar | tariffs |", "| --- " * 6 + "|"]
        for name in ("truce_holds", "truce_collapse", "full_decoupling"):
            model, ds = self.library()[name]
            gdp = float(ds.gdp.sum()) * model.horizon / 12

            def va(cube, gdp: float = gdp) -> float:
                lost = (cube.loss.sum("time") * cube.value_added_share).sum(("sector", "region"))
                return 100 * float(lost.mean()) / gdp

            cells = [va(ds)]
            for c in range(len(model.channels)):
                keep = (np.arange(len(model.channels)) == c)[:, None]
                _, one = run(name, LIBRARY_PATHS, exposure=model.arrays.exposure * keep)
                cells.append(va(one))
            rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
        return "\n".join(rows) + "\n"

    def benchmarks(self) -> str:
        m = self._magnitudes()
        t = {n: v["va_total"] for n, v in m.items()}

        def gap(a: str, b: str) -> float:
            se = np.sqrt(t[a].var() / t[a].size + t[b].var() / t[b].size)
            return (t[b].mean() - t[a].mean()) / se

        holds, collapse, full = (t[n].mean() for n in ("truce_holds", "truce_collapse",
                                                       "full_decoupling"))  # fmt: skip
        gaps = min(gap("truce_holds", "truce_collapse"), gap("truce_collapse", "full_decoupling"))
        fd = m["full_decoupling"]
        va = dict(zip(fd["regions"], fd["va_region"], strict=True))
        eu = fd["banks"].index("EU27_GBR_banks")
        eu_credit, eu_bp = fd["credit"].mean(0)[eu], fd["depletion"].mean(0)[eu]

        def against(value: float, low: float, high: float) -> str:
            if value < low:
                return "below"
            return "inside" if value <= high else "above"

        return f"""\
- **Ordering.** truce_holds ({holds:.2f} % of world GDP a year) < truce_collapse
  ({collapse:.2f} %) < full_decoupling ({full:.2f} %), each gap at least {np.floor(gaps):.0f}
  standard errors. `tests/test_library.py` holds the ordering on a 400-path run.
- **World.** full_decoupling's {full:.1f} % is {against(full, 2.5, 7.0)} the IMF's two-bloc range
  (-2.5 to -7 %, Gopinath 2023) and below the WTO's two-bloc figure (-5 %, World Trade Report
  2023), the IMF's severe fragmentation (-7 %, SDN/2023/001) and the ECB's severe decoupling (up
  to -9 %, OP 365, 2025): those scenarios end all trade between blocs, ours cuts only US-China
  channels and lets stocks and substitution work. truce_collapse's {collapse:.2f} % is
  {against(collapse, 0.2, 2.0)} the span from the IMF's limited fragmentation (-0.2 %) to the
  ECB's mild East-West decoupling (about -2 %).
- **Regions.** In full_decoupling China loses {va["CHN"]:.1f} % of GDP a year, Korea
  {va["KOR"]:.1f} %, Taiwan {va["TWN"]:.1f} %: the IMF's trade-plus-technology decoupling has -8
  to -12 % for the most exposed countries. The EU's {va["EU27_GBR"]:.1f} % is
  {against(va["EU27_GBR"], 2.4, 9.5)} the ECB's EU range (-2.4 to -9.5 %); the US's
  {va["USA"]:.1f} % is to be held against the ECB's -11 % for extreme US restrictions that also
  hit the West, which our channels do not model.
- **Banks.** The EU banks' mean credit loss in full_decoupling is USD {eu_credit:.0f} bn over
  five years ({eu_bp:.0f} bp of their risk-weighted assets, beyond the baseline's expected loss),
  with EU value added {va["EU27_GBR"]:.1f} % down a year. The EBA 2025 adverse scenario (EU GDP
  -3.7, -9.2, -10.5 % against its baseline) books EUR 394 bn of credit losses over three years,
  637 bp of the 64 banks' risk exposure; the supervisory replay (above) runs that path through
  this credit layer.
"""

    # cluster.md ------------------------------------------------------------------------------

    def cluster_sizes(self) -> str:
        from riskengine.engine import default_block_paths
        from riskengine.schema import estimated_bytes

        model = rk.compile_model(rk.load_scenario("truce_collapse"))
        paths = 10**8
        rows = [
            "| resolution | bytes per path | store for 10^8 paths (before compression) | "
            "default block | blocks |",
            "| --- | --- | --- | --- | --- |",
        ]
        for resolution in ("month", "quarter", "year", "horizon"):
            per_path = estimated_bytes(model, 1, resolution)
            block = default_block_paths(model, paths, resolution, "cpu", slots=2)
            size = per_path * paths
            shown = f"{size / 1e12:.1f} TB" if size >= 1e12 else f"{size / 1e9:.0f} GB"
            rows.append(
                f"| {resolution} | {per_path:,} | {shown} | {block:,} | {-(-paths // block):,} |"
            )
        once = sum(
            np.dtype(rk.schema.VARIABLES[n].dtype).itemsize * int(np.prod(shape[1:]))
            for n, shape in rk.schema.cube_shapes(model, 1, 1).items()
            if n in rk.schema.SUMMARIES
        )
        return (
            "\n".join(rows)
            + f"\n\n(Bytes per path include the run's per-path summaries, {once} bytes: each "
            "region's loss and value added lost and each bank's credit loss over the horizon, "
            "from which the table after a run is computed, and each bank's credit loss by "
            "segment.)\n"
        )

    # configs/economy/README.md ---------------------------------------------------------------

    def rebase(self) -> str:
        old, new = rk.load_economy("wiod2011_7x12"), rk.load_economy("wiod2023_7x12")
        rows = [
            "| region | GDP 2011 table | GDP 2023 table | factor | gross output 2023 table |",
            "| --- | --- | --- | --- | --- |",
        ]
        S = len(new.sectors)
        for i, region in enumerate(new.regions):
            a, b = old.gdp[i] / 1e6, new.gdp[i] / 1e6
            x = new.x[i * S : (i + 1) * S].sum() / 1e6
            rows.append(f"| {region} | {a:.1f} | {b:.1f} | {b / a:.3f} | {x:.1f} |")
        rows.append(
            f"| world | {old.gdp.sum() / 1e6:.1f} | {new.gdp.sum() / 1e6:.1f} | "
            f"{new.gdp.sum() / old.gdp.sum():.3f} | {new.x.sum() / 1e6:.1f} |"
        )
        return "USD tn, current prices of each table's year.\n\n" + "\n".join(rows) + "\n"

    def blocks(self) -> dict[str, Callable[[], str]]:
        return {
            "report-table": self.report_table,
            "study": self.study,
            "comparison": self.comparison_tables,
            "shapley-readme": self.shapley_readme,
            "paired-ratios": self.paired_ratios,
            "reverse": self.reverse,
            "importance": self.importance,
            "attribution": self.attribution,
            "on-shares": self.on_shares,
            "propagation": self.propagation,
            "portfolio": self.portfolio,
            "supervisory": self.supervisory,
            "replays": self.replays,
            "stock-sensitivity": self.stock_sensitivity,
            "odds": self.odds,
            "rebase": self.rebase,
            "cluster-sizes": self.cluster_sizes,
            "sanity-world": self.sanity_world,
            "sanity-regions": self.sanity_regions,
            "channel-split": self.channel_split,
            "benchmarks": self.benchmarks,
        }


# --- the docs -------------------------------------------------------------------------------


def main(argv: list[str] | None = None, files: list[Path] | None = None) -> int:
    """Fill (or with ``--check`` compare) the generated blocks of ``files`` (the docs)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare, write nothing")
    p.add_argument("--only", action="append", metavar="BLOCK", help="these blocks only")
    args = p.parse_args(argv)
    files = FILES if files is None else files
    builder = Builder(figures=not args.check and not args.only)
    makers = builder.blocks()
    if args.only:
        makers = {name: makers[name] for name in args.only}
    seen: set[str] = set()
    stale: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")

        def fill(match: re.Match, path: Path = path) -> str:
            name = match["name"]
            if name not in makers:
                if args.only:
                    return match[0]
                raise SystemExit(f"{path.name}: unknown block {name!r}; known: {', '.join(makers)}")
            seen.add(name)
            body = makers[name]()
            if body != match["body"]:
                diff = difflib.unified_diff(
                    match["body"].splitlines(), body.splitlines(), "docs", "library", lineterm=""
                )
                stale.append(f"{path.name}: block {name}\n" + "\n".join(diff))
            return match[1] + body + match[4]

        new = BLOCK.sub(fill, text)
        if not args.check and new != text:
            path.write_text(new, encoding="utf-8")
    missing = set(makers) - seen
    if missing:
        print(f"blocks quoted nowhere: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    if args.check and stale:
        print("\n\n".join(stale))
        print(f"\n{len(stale)} block(s) no longer match the library; run `python docs/build.py`")
        return 1
    print(("checked" if args.check else "built") + f" {len(seen)} blocks in {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
