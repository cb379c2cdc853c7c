"""Importance sampling (docs/model.md section 8): tilts of the random drivers and their choice.

A :class:`Tilt` shifts the mean of the model's normals: month 0's tension start ``g_0`` and
exposure factors ``zf[c, f]``, each month's tension and channel innovations and severity draws,
and each year's credit-cycle factor. Every backend draws the same numbers as without the tilt,
adds the shift, and writes the path's exact likelihood ratio into the cube's ``weight``; every
risk measure is weighted (self-normalised: consistent, with a bias of order 1/n), and runs stay
bit-reproducible.

:func:`auto_tilt` chooses a tilt for a tail level by the cross-entropy method (Rubinstein and
Kroese 2004) over a small family of shifts (:data:`FAMILY`): pilot runs on a seed of their own,
whose paths beyond a rising threshold (up to the level's VaR) give, weighted by their likelihood
ratios, the mean of each tilted normal, which becomes the next round's shift.

This module imports numpy and riskengine's own modules.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskengine.compile import CompiledModel
from riskengine.errors import RunError
from riskengine.kernels import rng

__all__ = [
    "FAMILY",
    "MEASURES",
    "Tilt",
    "TiltSearch",
    "auto_tilt",
    "model_tilt",
    "read_tilt",
    "tilted",
]

FAMILY = (
    "g0: the shift of the stationary tension start g_0",
    "tension: one shift of every month's tension innovation",
    "channels: one shift per channel of every month's own innovation",
    "exposure: one shift per channel of its global exposure factor zf[c, 0]",
    "cycle: one shift per year of the credit-cycle factor (where some rho > 0)",
)
"""The parameters :func:`auto_tilt` fits (a few, so that pilots of thousands of paths fit them
without adding noise of hundreds of dimensions to the likelihood ratios)."""

MEASURES = {"loss": "loss_total", "value_added": "value_added_loss_total",
            "credit": "credit_loss_total"}  # fmt: skip
"""What :func:`auto_tilt` aims at (and the per-path summary it reads): the horizon's total
output loss, value added lost or credit loss of a path, over all regions (banks)."""

MAX_SIZE = 400.0  # the largest |mu|^2 a tilt may have (see Tilt.apply)

# The pilots' seeds: the run's seed moved by a constant, so that the tilt is not fitted to the
# run's own paths (an estimate from a tilt fitted to its own sample is biased).
_PILOT_STEP = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class Tilt:
    """Mean shifts of the model's normals, in the slot layout of :mod:`riskengine.kernels.rng`.

    Attributes
    ----------
    head : ndarray (1 + C F,)
        Month 0's slots: ``g_0`` (used with stationary tension only), then ``zf[c, f]``.
    monthly : ndarray (T, 1 + 2C)
        Month t's slots: the tension innovation, the channels' innovations, their severities.
    cycle : ndarray (Y,)
        The credit-cycle factor of each year (used where some class has rho > 0).
    """

    head: np.ndarray
    monthly: np.ndarray
    cycle: np.ndarray

    @classmethod
    def zeros(cls, model: CompiledModel) -> Tilt:
        """No tilt, shaped for ``model``."""
        a = model.arrays
        return cls(np.zeros_like(a.tilt_head), np.zeros_like(a.tilt_monthly),
                   np.zeros_like(a.tilt_cycle))  # fmt: skip

    @property
    def nonzero(self) -> bool:
        """Whether any slot is shifted."""
        return bool(self.head.any() or self.monthly.any() or self.cycle.any())

    @property
    def size(self) -> float:
        """``|mu|^2`` over every slot: the log of the likelihood ratio's second moment for a
        shift that every path uses (a measure of how far the tilt moves the paths)."""
        return float(np.sum(self.head**2) + np.sum(self.monthly**2) + np.sum(self.cycle**2))

    def to_json(self) -> str:
        """The tilt as JSON (the cube's ``tilt`` attr, a ``--tilt`` file)."""
        return json.dumps({"head": self.head.tolist(), "monthly": self.monthly.tolist(),
                           "cycle": self.cycle.tolist()})  # fmt: skip

    @classmethod
    def from_json(cls, text: str, where: str = "tilt") -> Tilt:
        """Read :meth:`to_json`'s form; a one-line :class:`RunError` naming ``where`` if not."""
        try:
            data = json.loads(text)
            parts = (np.asarray(data[k], dtype=np.float64) for k in ("head", "monthly", "cycle"))
            tilt = cls(*parts)
        except (ValueError, KeyError, TypeError) as err:
            raise RunError(
                f"{where}: not a tilt ({type(err).__name__}: {err}); give a JSON object with "
                "head, monthly and cycle, as the cube's tilt attr holds it"
            ) from None
        return tilt

    def apply(self, model: CompiledModel) -> CompiledModel:
        """``model`` with this tilt (its identity changes; a zero tilt gives ``model`` back)."""
        a = model.arrays
        for name, have, want in (("head", self.head, a.tilt_head),
                                 ("monthly", self.monthly, a.tilt_monthly),
                                 ("cycle", self.cycle, a.tilt_cycle)):  # fmt: skip
            if have.shape != want.shape:
                raise RunError(
                    f"tilt {name} has shape {have.shape}, the model needs {want.shape}; make the "
                    "tilt for this scenario (--tilt auto)"
                )
            if not np.all(np.isfinite(have)) or np.any(np.abs(have) > 10.0):
                raise RunError(f"tilt {name}: every shift must be finite and within [-10, 10]")
        if self.size > MAX_SIZE:
            # log weights of order -|mu|^2 / 2 +- |mu|: beyond this, exp() would underflow
            raise RunError(
                f"tilt: |mu|^2 = {self.size:.4g} is above {MAX_SIZE:g}; every likelihood ratio "
                "would underflow to 0. Give smaller shifts"
            )
        if not self.nonzero:
            return model
        arrays = a._replace(tilt_head=self.head.copy(), tilt_monthly=self.monthly.copy(),
                            tilt_cycle=self.cycle.copy())  # fmt: skip
        return dataclasses.replace(model, arrays=arrays)


def model_tilt(model: CompiledModel) -> Tilt | None:
    """The tilt ``model`` runs under, or None."""
    a = model.arrays
    tilt = Tilt(a.tilt_head.copy(), a.tilt_monthly.copy(), a.tilt_cycle.copy())
    return tilt if tilt.nonzero else None


def read_tilt(path: str | Path) -> Tilt:
    """A tilt from a JSON file (:meth:`Tilt.to_json`)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise RunError(
            f"--tilt {path}: cannot read it ({err.strerror}); give a tilt file or auto"
        ) from None
    return Tilt.from_json(text, f"--tilt {path}")


@dataclass(frozen=True)
class TiltSearch:
    """What :func:`auto_tilt` found: the tilt and, per round, the threshold the elite paths
    passed, the level's VaR estimated under that round's tilt, and the elite's effective size."""

    tilt: Tilt
    level: float
    measure: str
    thresholds: tuple[float, ...]
    var: tuple[float, ...]
    elite_ess: tuple[float, ...]


def _n_params(C: int, Y: int) -> int:
    return 2 + 2 * C + Y


def _family(model: CompiledModel, theta: np.ndarray) -> Tilt:
    """The tilt of parameters ``theta`` (see :data:`FAMILY`, in that order)."""
    zero = Tilt.zeros(model)  # new arrays, filled in below
    head, monthly, cycle = zero.head, zero.monthly, zero.cycle
    C = len(model.channels)
    F = model.arrays.factor_loadings.shape[1]
    head[0] = theta[0] if model.arrays.tension_stationary else 0.0
    monthly[:, 0] = theta[1]
    monthly[:, 1 : 1 + C] = theta[2 : 2 + C]
    head[1 + np.arange(C) * F] = theta[2 + C : 2 + 2 * C]
    cycle[:] = theta[2 + 2 * C :] if np.any(model.arrays.credit_rho > 0.0) else 0.0
    return Tilt(head, monthly, cycle)


def _elite_means(model: CompiledModel, tilt: Tilt, seed: int, paths: np.ndarray, w: np.ndarray):
    """The weighted means (weights ``w``) of the family's tilted normals over ``paths``:
    the cross-entropy update, regenerated from the paths' counters."""
    C = len(model.channels)
    F = model.arrays.factor_loadings.shape[1]
    T = model.horizon
    w = w / w.sum()
    head = rng.normals(seed, paths, [0], 1 + C * F)[:, 0, :] + tilt.head
    monthly = rng.normals(seed, paths, np.arange(1, T + 1), 1 + C) + tilt.monthly[:, : 1 + C]
    cycle = rng.normals(seed, paths, [rng.CREDIT_MONTH], tilt.cycle.size)[:, 0, :] + tilt.cycle
    theta = np.empty(_n_params(C, tilt.cycle.size))
    theta[0] = w @ head[:, 0]
    theta[1] = w @ monthly[:, :, 0].mean(axis=1)
    theta[2 : 2 + C] = w @ monthly[:, :, 1 : 1 + C].mean(axis=1)
    theta[2 + C : 2 + 2 * C] = w @ head[:, 1 + np.arange(C) * F]
    theta[2 + 2 * C :] = w @ cycle
    return theta


def auto_tilt(
    model: CompiledModel,
    level: float = 0.999,
    *,
    measure: str = "loss",
    seed: int = 0,
    pilot_paths: int = 4000,
    rounds: int = 6,
    elite: float = 0.1,
    smoothing: float = 0.7,
    backend: str = "cpu",
) -> TiltSearch:
    """Choose a tilt towards the tail beyond the ``level`` VaR of ``measure`` (cross-entropy).

    Each round runs ``pilot_paths`` paths under the current tilt (on seeds derived from
    ``seed``, never the run's own paths), estimates the level's VaR with their weights, and
    takes as elite the paths beyond ``min(VaR, the (1 - elite) quantile)``: the next tilt is
    the likelihood-weighted mean of the elite's normals over :data:`FAMILY`, blended with the
    last (``smoothing`` of the new). The tilt of the last round is returned.

    Parameters
    ----------
    model
        The compiled (untilted) model.
    level
        The tail level, in (0.5, 1).
    measure
        One of :data:`MEASURES`.
    seed
        The run's seed (the pilots use seeds of their own derived from it).
    pilot_paths, rounds, elite, smoothing
        The cross-entropy method's settings.
    backend
        ``cpu`` or ``reference`` for the pilots.

    Examples
    --------
    >>> import riskengine as rk
    >>> model = rk.compile_model(rk.load_scenario("truce_holds"))
    >>> found = auto_tilt(model, 0.99, pilot_paths=200, rounds=1, backend="reference")
    >>> found.tilt.monthly.shape
    (60, 9)
    """
    from riskengine.backends import run_block
    from riskengine.engine import _check_args
    from riskengine.weighted import effective_sample_size, weighted_quantile

    _check_args(pilot_paths, seed, "horizon", backend, None)
    if not 0.5 < level < 1.0:
        raise RunError(f"tilt level must lie in (0.5, 1), got {level}; give e.g. 0.999")
    if measure not in MEASURES:
        raise RunError(f"tilt measure {measure!r} is unknown; use one of {', '.join(MEASURES)}")
    if model_tilt(model) is not None:
        raise RunError("auto_tilt starts from an untilted model; compile the scenario again")
    if pilot_paths < 100 or rounds < 1:
        raise RunError("auto_tilt needs pilot_paths >= 100 and rounds >= 1")

    C = len(model.channels)
    theta = np.zeros(_n_params(C, model.arrays.tilt_cycle.size))
    thresholds, var_estimates, sizes = [], [], []
    for r in range(rounds):
        tilt = _family(model, theta)
        pilot_seed = (seed + _PILOT_STEP * (r + 1)) % 2**64
        block = run_block(tilt.apply(model), pilot_seed, 0, pilot_paths, "horizon", backend)
        x, w = block[MEASURES[measure]].sum(axis=1), block["weight"]
        var = float(weighted_quantile(x, w, level))
        gamma = min(var, float(np.quantile(x, 1.0 - elite)))
        chosen = x >= gamma if gamma > x.min() else x > gamma
        thresholds.append(gamma)
        var_estimates.append(var)
        if not chosen.any():
            sizes.append(0.0)
            break
        sizes.append(effective_sample_size(w[chosen]))
        new = _elite_means(model, tilt, pilot_seed, np.flatnonzero(chosen), w[chosen])
        theta = smoothing * new + (1.0 - smoothing) * theta
    return TiltSearch(_family(model, theta), level, measure, tuple(thresholds),
                      tuple(var_estimates), tuple(sizes))  # fmt: skip


def tilted(
    model: CompiledModel, tilt, level: float, measure: str, seed: int, backend: str
) -> CompiledModel:
    """``model`` under ``tilt``: a :class:`Tilt`, a tilt's JSON file, or ``"auto"``
    (:func:`auto_tilt` at ``level`` for ``measure``, its pilots on ``backend``'s CPU
    counterpart)."""
    if isinstance(tilt, str) and tilt == "auto":
        pilots = "reference" if backend == "reference" else "cpu"
        tilt = auto_tilt(model, level, measure=measure, seed=seed, backend=pilots).tilt
    elif isinstance(tilt, str | Path):
        tilt = read_tilt(tilt)
    elif not isinstance(tilt, Tilt):
        raise RunError(f"tilt must be a Tilt, a tilt file or 'auto', got {type(tilt).__name__}")
    return tilt.apply(model)
