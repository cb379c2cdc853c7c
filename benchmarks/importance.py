"""Importance sampling against plain Monte Carlo at equal paths (docs/model.md section 8).

    python benchmarks/importance.py [--scenario truce_holds] [--level 0.999] [--paths 20000]
                                    [--replicates 48] [--pilot-seed 1] [--anatomy 200000]

Chooses a tilt with :func:`riskengine.tilt.auto_tilt` (its pilots on seeds derived from
``--pilot-seed``), then
runs ``--replicates`` plain and tilted runs of ``--paths`` paths each on independent seeds, and
prints, for EL and the level's VaR and ES of the horizon's total output loss: the mean of the
estimates, their spread across replicates (the standard error measured, not modelled) and the
mean of the standard errors the risk measures report, for both, and the ratio plain / tilted of
the measured standard errors, with its own standard error (the spread of a spread from R
replicates is uncertain by about 1 / sqrt(2 (R - 1)) relative). No timing: a ratio of spreads.

``--anatomy P`` first prints what the tail beyond the level's VaR is made of in a plain run of
P paths: the mean over its paths of the normals the tilt can shift (g_0, each channel's global
exposure factor, the tension innovations of each year), in standard deviations.
"""

from __future__ import annotations

import argparse

import numpy as np

import riskengine as rk
from riskengine.backends import run_block
from riskengine.reference import draws
from riskengine.tilt import auto_tilt
from riskengine.weighted import mean_se, tail_stats


def _estimates(model, paths: int, seeds: list[int], level: float) -> np.ndarray:
    """Per replicate: EL, its se, VaR, its se, ES, its se."""
    rows = []
    for seed in seeds:
        block = run_block(model, seed, 0, paths, "horizon", "cpu")
        x, w = block["loss_total"].sum(axis=1), block["weight"]
        el, el_se = mean_se(x, w)
        t = tail_stats(x, w, np.array([level]))
        rows.append((el, el_se, t.var[0], t.var_se[0], t.es[0], t.es_se[0]))
    return np.array(rows)


def _anatomy(model, paths: int, level: float) -> None:
    """The mean of the shiftable normals over the plain run's paths beyond the level's VaR."""
    block = run_block(model, 7, 0, paths, "horizon", "cpu")
    x = block["loss_total"].sum(axis=1)
    tail = np.flatnonzero(x > np.quantile(x, level))
    z0, z = draws(model, 7, tail)
    F = model.arrays.factor_loadings.shape[1]
    factors = ", ".join(f"{c} {z0[:, 1 + k * F].mean():+.2f}" for k, c in enumerate(model.channels))
    years = [z[:, y : y + 12, 0].mean() for y in range(0, z.shape[1], 12)]
    print(f"tail anatomy: {tail.size} paths of {paths:,} beyond VaR{level:g}; g_0 "
          f"{z0[:, 0].mean():+.2f}; global exposure factors {factors}; tension innovations by "
          f"year {', '.join(f'{v:+.2f}' for v in years)}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="truce_holds")
    p.add_argument("--level", type=float, default=0.999)
    p.add_argument("--paths", type=int, default=20_000)
    p.add_argument("--replicates", type=int, default=48)
    p.add_argument("--pilot-paths", type=int, default=4000)
    p.add_argument("--pilot-seed", type=int, default=1)
    p.add_argument("--anatomy", type=int, default=0, help="paths of the tail's anatomy run")
    args = p.parse_args(argv)

    model = rk.compile_model(rk.load_scenario(args.scenario))
    if args.anatomy:
        _anatomy(model, args.anatomy, args.level)
    found = auto_tilt(model, args.level, seed=args.pilot_seed, pilot_paths=args.pilot_paths)
    print(f"auto_tilt {args.scenario} level {args.level}: |mu|^2 = {found.tilt.size:.3g}; "
          f"elite thresholds {[f'{g:.4g}' for g in found.thresholds]}")  # fmt: skip
    seeds = list(range(100, 100 + args.replicates))
    plain = _estimates(model, args.paths, seeds, args.level)
    tilted = _estimates(found.tilt.apply(model), args.paths, [s + 1000 for s in seeds], args.level)
    sd = {}
    for name, rows in (("plain", plain), ("tilted", tilted)):
        sd[name] = rows[:, [0, 2, 4]].std(axis=0, ddof=1)
        cells = [
            f"{m} {rows[:, 2 * k].mean():.5g} (measured se {sd[name][k]:.3g}, reported "
            f"{rows[:, 2 * k + 1].mean():.3g})"
            for k, m in enumerate(("EL", f"VaR{args.level:g}", f"ES{args.level:g}"))
        ]
        print(f"{name:7s} " + "  ".join(cells))
    ratio = sd["plain"] / sd["tilted"]
    # each measured se is uncertain by 1 / sqrt(2 (R - 1)) relative; their ratio by sqrt 2 that
    uncertain = np.sqrt(2.0) / np.sqrt(2.0 * (args.replicates - 1))
    for k, m in enumerate(("el", "var", "es")):
        print(f"se_ratio_{m}={ratio[k]:.2f} (+- {ratio[k] * uncertain:.2f})")


if __name__ == "__main__":
    main()
