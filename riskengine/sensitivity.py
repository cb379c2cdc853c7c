"""Designs of parameter points and sensitivity indices (SALib): the mathematics of a study, apart
from running the model.

A :class:`Design` is a set of points in the unit cube, one column per parameter; a study maps
each column through its parameter's quantile function. ``sobol`` is Saltelli's extension of a
scrambled Sobol' sequence (``N (D + 2)`` points for ``N`` base samples and ``D`` parameters,
Saltelli et al. 2010) for first-order and total indices; ``morris`` is Morris's elementary
effects on a 4-level grid (``N (D + 1)`` points) for cheap screening (Campolongo et al. 2007's
``mu*``). Indices carry 95 % bootstrap confidence half-widths (SALib's, 1000 resamples).

Any model plugs in: evaluate it at :attr:`Design.unit` (mapped to values) and pass the outputs
to :func:`indices` (tests/test_study.py does this with the Ishigami function).

This module imports numpy and xarray; SALib when a design is drawn or analysed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["DESIGNS", "MORRIS_LEVELS", "Design", "design", "indices"]

DESIGNS = ("sobol", "morris")
MORRIS_LEVELS = 4
RESAMPLES = 1000


@dataclass(frozen=True)
class Design:
    """Points ``unit`` (n_points, D) in [0, 1]^D for ``names``, by ``method`` from ``samples``
    base samples (Sobol: N; Morris: trajectories) and ``seed``."""

    method: str
    names: tuple[str, ...]
    samples: int
    seed: int
    unit: np.ndarray

    @property
    def problem(self) -> dict:
        return {"num_vars": len(self.names), "names": list(self.names),
                "bounds": [[0.0, 1.0]] * len(self.names)}  # fmt: skip


def design(names: tuple[str, ...], method: str, samples: int, seed: int) -> Design:
    """The points of a design over parameters ``names``.

    Raises
    ------
    ValueError
        An unknown method, no parameters, or a Sobol sample count that is not a power of 2.

    Examples
    --------
    >>> d = design(("a", "b"), "sobol", 8, seed=1)
    >>> d.unit.shape   # N (D + 2)
    (32, 2)
    """
    if method not in DESIGNS:
        raise ValueError(f"design {method!r} is unknown; use one of {', '.join(DESIGNS)}")
    if not names:
        raise ValueError("the scenario has no uncertain parameter; write a distribution or a group")
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    problem = Design(method, tuple(names), samples, seed, np.empty((0, len(names)))).problem
    if method == "sobol":
        if samples & (samples - 1):
            raise ValueError(
                f"samples {samples}: a Sobol design needs a power of 2 (e.g. "
                f"{1 << (samples.bit_length() - 1)} or {1 << samples.bit_length()})"
            )
        from SALib.sample import sobol

        unit = sobol.sample(problem, samples, calc_second_order=False, scramble=True, seed=seed)
    else:
        from SALib.sample import morris

        unit = morris.sample(problem, samples, num_levels=MORRIS_LEVELS, seed=seed)
    return Design(method, tuple(names), samples, seed, np.ascontiguousarray(unit, np.float64))


def indices(d: Design, y: np.ndarray, seed: int = 0) -> xr.Dataset:
    """Sensitivity indices of output ``y`` (one value per point of ``d``).

    Sobol designs give ``S1`` and ``ST`` (first-order and total indices) with their 95 %
    bootstrap half-widths ``S1_conf``, ``ST_conf``; Morris designs give ``mu_star`` (mean absolute
    elementary effect, in the output's unit per unit of the parameter's quantile), its half-width
    ``mu_star_conf`` and ``sigma``. An output that does not vary gives indices of 0. The
    bootstrap is seeded by ``seed``: the same inputs give the same half-widths.
    """
    y = np.asarray(y, dtype=np.float64)
    # SALib treats a seed of 0 as none (global random state): the bootstrap gets seed + 1.
    seed = int(seed) + 1
    if y.shape != (d.unit.shape[0],):
        raise ValueError(f"y has shape {y.shape}; give one value per point ({d.unit.shape[0]})")
    coords = {"parameter": list(d.names)}
    if d.method == "sobol":
        names = ("S1", "S1_conf", "ST", "ST_conf")
        if np.ptp(y) == 0:
            return xr.Dataset({n: ("parameter", np.zeros(len(d.names))) for n in names}, coords)
        from SALib.analyze import sobol

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sobol.analyze(d.problem, y, calc_second_order=False, num_resamples=RESAMPLES,
                                conf_level=0.95, seed=seed)  # fmt: skip
    else:
        names = ("mu_star", "mu_star_conf", "sigma")
        from SALib.analyze import morris

        res = morris.analyze(d.problem, d.unit, y, num_resamples=RESAMPLES, conf_level=0.95,
                             num_levels=MORRIS_LEVELS, seed=seed)  # fmt: skip
    return xr.Dataset(
        {n: ("parameter", np.asarray(res[n], dtype=np.float64)) for n in names}, coords=coords
    )
