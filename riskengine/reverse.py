"""Reverse stress testing: the most likely path that loses at least X (docs/model.md section 11).

A path is a function of its normals ``z`` (:mod:`riskengine.kernels.rng`'s slots: month 0's,
then every month's), whose density is ``exp(-|z|^2 / 2)`` up to a constant: the most likely path
with a loss of at least X is the point of the set ``{z : L(z) >= X}`` nearest to the origin,
the *design point* of structural reliability (Hasofer and Lind 1974). :func:`design_point`
finds it for any loss function evaluated on batches of points:

1. **Start from the run's own tail.** An ordinary run of the scenario; its paths that lose X are
   regenerated from their (seed, path) counters, and the most likely of them (smallest ``|z|``)
   is the start: the answer is never less likely than any path of that run that loses X.
2. **Improve, keeping L >= X.** Rounds of three moves, each accepted only if the point stays in
   the set and comes nearer the origin: a Hasofer-Lind-Rackwitz-Fiessler step along the
   finite-difference gradient (exact in one step where L is linear), a shrink of the whole point
   towards the origin, and a shrink of each group of coordinates (a month's draws, a channel's
   exposure factors) to the smallest of 16 fractions that keeps the loss, which is how the
   onsets settle at their thresholds (a regime switch has no gradient).

The answer is a narrative (:func:`narrative`): the tension path, each channel's episodes (when,
how long, how severe), the exposure factors, the losses by region, and the likelihood against
the central path and against the run's best; :func:`reverse_stress` stores it with its
parameters, its normals and the matching tilt (``tilt.json``, for ``riskengine run --tilt``).

This module imports numpy and riskengine's compile, errors, kernels.rng and schema modules;
backends, engine, reference, tilt, matplotlib and rich lazily.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskengine.compile import CompiledModel
from riskengine.errors import RunError
from riskengine.kernels import rng
from riskengine.schema import periods

__all__ = ["DesignPoint", "ReverseStress", "design_point", "path_loss", "reverse_stress"]

FRACTIONS = np.arange(16) / 16.0  # the group shrink's trial scales
RAY = np.linspace(0.5, 1.0, 33)[:-1]  # the whole point's trial scales
STEP = 1e-4  # finite-difference step of the gradient, in standard deviations
MARGIN = 1e-9  # the gradient step aims at X (1 + MARGIN), so that rounding keeps L >= X


@dataclass(frozen=True)
class DesignPoint:
    """The point found: its normals, loss and squared distance, and where the search began."""

    z: np.ndarray
    loss: float
    norm2: float
    start_index: int  # into the candidates given
    start_norm2: float
    rounds: int
    evaluations: int


def design_point(
    loss: Callable[[np.ndarray], np.ndarray],
    threshold: float,
    candidates: np.ndarray,
    groups: list[np.ndarray] | None = None,
    rounds: int = 30,
) -> DesignPoint:
    """The point nearest to the origin with ``loss(z) >= threshold``, from the nearest feasible
    candidate.

    Parameters
    ----------
    loss
        Maps points (K, D) to their losses (K,).
    threshold
        X.
    candidates
        Points (K, D) to start from; the nearest with a loss of at least X is the start.
    groups
        Index arrays of coordinates shrunk together (default: each coordinate alone).
    rounds
        At most this many rounds of the three moves (fewer once a round gains nothing).

    Examples
    --------
    >>> b = np.array([3.0, 4.0])
    >>> found = design_point(lambda z: z @ b, 10.0, np.array([[1.0, 3.0], [2.0, 2.0]]))
    >>> np.round(found.z, 6).tolist()  # X b / |b|^2
    [1.2, 1.6]
    """
    candidates = np.atleast_2d(np.asarray(candidates, dtype=np.float64))
    losses = loss(candidates)
    feasible = np.flatnonzero(losses >= threshold)
    if feasible.size == 0:
        raise RunError(
            f"no path of the run loses {threshold:,.6g}; lower --loss or run more --paths"
        )
    norms = np.einsum("kd,kd->k", candidates, candidates)
    start = int(feasible[np.argmin(norms[feasible])])
    z, value = candidates[start].copy(), float(losses[start])
    D = z.size
    groups = [np.array([d]) for d in range(D)] if groups is None else groups
    evaluations = candidates.shape[0]

    def best_of(trials: np.ndarray) -> bool:
        """Move to the nearest feasible trial point if it is nearer than ``z``."""
        nonlocal z, value, evaluations
        values = loss(trials)
        evaluations += trials.shape[0]
        ok = np.flatnonzero(values >= threshold)
        if ok.size == 0:
            return False
        n2 = np.einsum("kd,kd->k", trials[ok], trials[ok])
        k = int(np.argmin(n2))
        if n2[k] >= z @ z * (1.0 - 1e-12):
            return False
        z, value = trials[ok[k]].copy(), float(values[ok[k]])
        return True

    done = 0
    while done < rounds:
        done += 1
        before = z @ z
        # 1. Hasofer-Lind-Rackwitz-Fiessler: the nearest point of the tangent plane at z.
        bumped = z + STEP * np.eye(D)
        grad = (loss(bumped) - value) / STEP
        evaluations += D
        g2 = grad @ grad
        if g2 > 0.0 and np.all(np.isfinite(grad)):
            target = threshold * (1.0 + MARGIN) if threshold > 0 else threshold
            hlrf = ((grad @ z - (value - target)) / g2) * grad
            best_of(z + np.array([1.0, 0.5, 0.25, 0.125])[:, None] * (hlrf - z)[None, :])
        # 2. the whole point towards the origin
        best_of(RAY[:, None] * z[None, :])
        # 3. each group towards the origin, largest first
        for g in sorted(groups, key=lambda g: -float(z[g] @ z[g])):
            if not z[g].any():
                continue
            trials = np.repeat(z[None, :], FRACTIONS.size, axis=0)
            trials[:, g] *= FRACTIONS[:, None]
            best_of(trials)
        if z @ z > before * (1.0 - 1e-6):
            break
    return DesignPoint(z, value, float(z @ z), start, float(norms[start]), done, evaluations)


# --- the library's model as a function of its normals ---------------------------------------


def _sizes(model: CompiledModel) -> tuple[int, int, int]:
    """Month 0's slots, each month's slots, and the months."""
    C, N = model.arrays.exposure.shape
    F = model.arrays.factor_loadings.shape[1]
    return rng.path_slots(C, F, N), rng.monthly_slots(C), model.horizon


def _split(model: CompiledModel, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    head, monthly, T = _sizes(model)
    Z = np.atleast_2d(Z)
    return Z[:, :head], Z[:, head:].reshape(-1, T, monthly)


def path_loss(model: CompiledModel, region: str | None = None) -> Callable:
    """The horizon's output loss (in the world, or of ``region``) of points of normals, by the
    reference model (:func:`riskengine.reference.monthly_from_normals`), in batches."""
    from riskengine.reference import monthly_from_normals

    r = None if region is None else model.regions.index(region)

    def loss(Z: np.ndarray) -> np.ndarray:
        Z = np.atleast_2d(Z)
        out = np.empty(Z.shape[0])
        for k0 in range(0, out.size, 1024):
            z0, z = _split(model, Z[k0 : k0 + 1024])
            by_region = monthly_from_normals(model, z0, z)["loss"].sum(axis=(1, 2))  # (P, R)
            out[k0 : k0 + 1024] = by_region.sum(axis=1) if r is None else by_region[:, r]
        return out

    return loss


def _groups(model: CompiledModel) -> list[np.ndarray]:
    """The coordinates shrunk together: g_0; each channel's exposure factors; each channel's
    idiosyncratic exposure draws; each month's draws; then every month's draw of each slot."""
    C, N = model.arrays.exposure.shape
    F = model.arrays.factor_loadings.shape[1]
    head, monthly, T = _sizes(model)
    groups = [np.array([0])]
    groups += [1 + c * F + np.arange(F) for c in range(C)]
    groups += [1 + C * F + c * N + np.arange(N) for c in range(C)]
    groups += [head + t * monthly + np.arange(monthly) for t in range(T)]
    groups += [np.array([head + t * monthly + s]) for t in range(T) for s in range(monthly)]
    return groups


@dataclass(frozen=True)
class ReverseStress:
    """A reverse stress test's answer (:func:`reverse_stress`)."""

    model: CompiledModel
    threshold: float  # X, in the economy's unit
    region: str | None
    seed: int
    paths: int  # of the run the search started from
    start_path: int  # the run's most likely path that loses X
    point: DesignPoint
    story: dict  # the narrative, see narrative()

    @property
    def log_likelihood_ratio(self) -> float:
        """``ln`` of the path's density over the central path's (all normals 0)."""
        return -0.5 * self.point.norm2


def reverse_stress(
    model: CompiledModel,
    threshold: float,
    *,
    region: str | None = None,
    seed: int = 0,
    paths: int = 20_000,
    rounds: int = 30,
    candidates: int = 512,
) -> ReverseStress:
    """The most likely path of ``model`` whose horizon output loss (world, or ``region``'s) is at
    least ``threshold`` (the economy's unit).

    The search starts from an ordinary run of ``paths`` paths of ``seed`` (CPU kernel): its
    ``candidates`` nearest paths that lose the threshold are evaluated by the reference, and the
    nearest that does is improved by :func:`design_point`.
    """
    from riskengine.backends import run_block
    from riskengine.engine import _check_args
    from riskengine.reference import draws
    from riskengine.tilt import model_tilt

    _check_args(paths, seed, "horizon", "cpu", None)
    if model_tilt(model) is not None:
        raise RunError("reverse stress tests a plain model; drop the tilt")
    if region is not None and region not in model.regions:
        raise RunError(f"--region {region}: unknown; use one of {', '.join(model.regions)}")
    if not np.isfinite(threshold) or threshold <= 0:
        raise RunError(f"--loss {threshold}: give a positive loss")
    block = run_block(model, seed, 0, paths, "horizon", "cpu")
    L = block["loss_total"].sum(axis=1) if region is None else \
        block["loss_total"][:, model.regions.index(region)]  # fmt: skip
    # float32 against float64: a path just below X in the kernel may lose X in the reference
    tail = np.flatnonzero(L >= threshold * (1.0 - 1e-4))
    if tail.size == 0:
        from riskengine.formatting import display_unit, format_amount

        scale, unit = display_unit(model.unit)
        raise RunError(
            f"no path of {paths:,} loses {format_amount(scale * threshold)} {unit}; lower --loss "
            "or give more --paths"
        )
    z0, zm = draws(model, seed, tail)  # the tail paths, regenerated from their counters
    Z = np.concatenate([z0, zm.reshape(tail.size, -1)], axis=1)
    nearest = np.argsort(np.einsum("kd,kd->k", Z, Z), kind="stable")[:candidates]
    point = design_point(path_loss(model, region), threshold, Z[nearest], _groups(model), rounds)
    start_path = int(tail[nearest[point.start_index]])
    return ReverseStress(model, threshold, region, seed, paths, start_path, point,
                         narrative(model, point))  # fmt: skip


def narrative(model: CompiledModel, point: DesignPoint) -> dict:
    """The path in words and numbers: tension, episodes, exposure factors, losses by region."""
    from riskengine.reference import monthly_from_normals

    a = model.arrays
    F = a.factor_loadings.shape[1]
    z0, z = _split(model, point.z)
    out = monthly_from_normals(model, z0, z)
    severity = out["severity"][0]  # (T, C)
    regimes = out["on"][0]  # (T, C): the episodes, whether or not they cut anything
    tension = out["tension"][0]
    starts = periods(model.start, model.horizon, "month")[1]
    months = list(np.datetime_as_string(starts, unit="M"))
    channels = {}
    for c, name in enumerate(model.channels):
        on = regimes[:, c]
        starts = np.flatnonzero(on & ~np.r_[False, on[:-1]])
        ends = np.flatnonzero(on & ~np.r_[on[1:], False])
        episodes = [
            {"from": months[s], "to": months[e], "months": int(e - s + 1),
             "peak_severity": float(severity[s : e + 1, c].max())}
            for s, e in zip(starts, ends, strict=True)
        ]  # fmt: skip
        channels[name] = {
            "episodes": episodes,
            "severity_months": float(severity[:, c].sum()),
            "exposure_factor": float(z0[0, 1 + c * F]),  # the channel's global factor, in sd
        }
    loss = out["loss"][0].sum(axis=(0, 1))  # (R,)
    g0 = float(z0[0, 0]) if a.tension_stationary else float(a.tension_start)
    peak = int(tension.argmax())
    story_tension = {"start": g0, "peak": float(tension[peak]), "peak_month": months[peak],
                     "path": tension.tolist()}  # fmt: skip
    return {
        "tension": story_tension,
        "channels": channels,
        "loss_by_region": dict(zip(model.regions, map(float, loss), strict=True)),
        "loss": float(point.loss),
        "distance": float(np.sqrt(point.norm2)),
        "start_distance": float(np.sqrt(point.start_norm2)),
        "months": months,
        "severity": severity.T.tolist(),
        "cumulative_loss": np.cumsum(out["loss"][0].sum(axis=1), axis=0).T.tolist(),
    }


def save(result: ReverseStress, folder: Path) -> dict[str, Path]:
    """Write ``result.json`` (parameters, the story, the normals), ``tilt.json`` (the point as
    an importance-sampling tilt) and ``path.png`` into ``folder``."""
    from riskengine.report import _png, _write
    from riskengine.tilt import Tilt

    folder.mkdir(parents=True, exist_ok=True)
    p = result.point
    doc = {
        "scenario": result.model.scenario.name, "inputs_sha256": result.model.identity,
        "threshold": result.threshold, "region": result.region, "seed": result.seed,
        "paths": result.paths, "start_path": result.start_path, "unit": result.model.unit,
        "norm2": p.norm2, "start_norm2": p.start_norm2, "rounds": p.rounds,
        "evaluations": p.evaluations, "log_likelihood_ratio": result.log_likelihood_ratio,
        "story": result.story, "z": p.z.tolist(),
    }  # fmt: skip
    files = {"result": folder / "result.json", "tilt": folder / "tilt.json",
             "figure": folder / "path.png"}  # fmt: skip
    _write(files["result"], json.dumps(doc, indent=1).encode())
    z0, z = _split(result.model, p.z)
    zero = Tilt.zeros(result.model)  # a tilt's month-0 slots are the first of the path's
    tilt = Tilt(z0[0, : zero.head.size].copy(), z[0].copy(), zero.cycle)
    _write(files["tilt"], tilt.to_json().encode())
    _png(fig_path(result), files["figure"])
    return files


def fig_path(result: ReverseStress):
    """Three panels: the tension path, each channel's effective severity, and the cumulative
    loss by region."""
    from matplotlib.figure import Figure

    from riskengine.formatting import display_unit

    s = result.story
    model = result.model
    scale, unit = display_unit(model.unit)
    t = np.arange(model.horizon)
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax = fig.subplots(1, 3)
    ax[0].plot(t, s["tension"]["path"], color="k")
    ax[0].axhline(0.0, color="0.7", lw=0.8)
    ax[0].set_title("tension g_t (standard deviations)", fontsize=10)
    for c, name in enumerate(model.channels):
        ax[1].plot(t, s["severity"][c], label=name)
    ax[1].set_title("effective severity of each channel", fontsize=10)
    ax[1].legend(fontsize=8)
    for r, name in enumerate(model.regions):
        ax[2].plot(t, scale * np.asarray(s["cumulative_loss"][r]), label=name)
    ax[2].set_title(f"cumulative output loss ({unit})", fontsize=10)
    ax[2].legend(fontsize=7, ncol=2)
    ticks = t[::12]
    for a in ax:
        a.set_xticks(ticks, [s["months"][i] for i in ticks], fontsize=8)
        a.grid(True, alpha=0.3)
    where = "the world" if result.region is None else result.region
    fig.suptitle(
        f"{model.scenario.name}: the most likely path losing at least "
        f"{scale * result.threshold:,.0f} {unit} in {where} (distance {s['distance']:.2f} sd; "
        f"the run's best: {s['start_distance']:.2f})"
    )
    return fig


def story_table(result: ReverseStress):
    """The narrative as a rich table."""
    from rich.table import Table

    from riskengine.formatting import display_unit, format_amount

    s = result.story
    scale, unit = display_unit(result.model.unit)
    where = "the world" if result.region is None else result.region
    table = Table(
        title=f"{result.model.scenario.name}: the most likely path losing at least "
        f"{format_amount(scale * result.threshold)} {unit} in {where}"
    )
    table.add_column("", justify="left")
    table.add_column("", justify="left")
    ratio = np.exp(-0.5 * (result.point.norm2 - result.point.start_norm2))
    table.add_row("loss", f"{format_amount(scale * s['loss'])} {unit}")
    table.add_row("distance from the central path", f"{s['distance']:.2f} sd (density ratio "
                  f"exp(-d^2/2) = {np.exp(result.log_likelihood_ratio):.3g})")  # fmt: skip
    table.add_row(
        "the run's most likely path losing it",
        f"path {result.start_path} of {result.paths:,} (seed {result.seed}), "
        f"{s['start_distance']:.2f} sd: this path is {ratio:.3g} times as likely",
    )
    table.add_row("tension", f"starts at {s['tension']['start']:.2f} sd, peaks at "
                  f"{s['tension']['peak']:.2f} in {s['tension']['peak_month']}")  # fmt: skip
    for name, ch in s["channels"].items():
        eps = (
            "; ".join(
                f"{e['from']} to {e['to']} ({e['months']} months, severity up to "
                f"{e['peak_severity']:.2f})"
                for e in ch["episodes"]
            )
            or "no episode"
        )
        table.add_row(name, f"{eps}; exposure factor {ch['exposure_factor']:+.2f} sd")
    losses = ", ".join(f"{r} {format_amount(scale * v)}" for r, v in s["loss_by_region"].items())
    table.add_row(f"loss by region ({unit})", losses)
    return table
