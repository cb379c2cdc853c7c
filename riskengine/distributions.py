"""Distributions of uncertain scenario parameters: how a number of a scenario file may be written
as a range of judgement instead (docs/model.md section 9).

Wherever a scenario expects a number, it may give a mapping with the key ``dist``::

    p_on: {dist: triangular, low: 0.01, mode: 0.018, high: 0.03}
    median: {dist: beta, a: 6, b: 4}                       # on [0, 1] unless low/high
    exposure: {default: 0.0, sectors: {TREQ: {dist: uniform, low: 0.2, high: 0.5}}}
    sigma: {dist: lognormal, median: 0.5, sigma: 0.3}       # truncated to the field's range
    phi: {dist: normal, mean: 0.9, sd: 0.03}                # truncated to [0, 1)

Every distribution is truncated to the field's valid range (and to ``low``/``high`` where
given): a bounded one (uniform, triangular, beta) must lie inside it, an unbounded one (normal,
lognormal) is cut to it. A draw is the quantile function of the truncated distribution at a
point ``u`` of the unit interval, so a design in the unit cube maps to values by
:meth:`Distribution.ppf` exactly and reproducibly. A plain run uses ``nominal`` (default: the
truncated distribution's median).

This module imports numpy, pydantic and scipy.stats.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["KINDS", "Distribution"]

KINDS = ("uniform", "triangular", "lognormal", "beta", "normal")
# The parameters each kind needs (low and high are truncation bounds for the unbounded kinds).
_NEEDS = {
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "lognormal": ("median", "sigma"),
    "beta": ("a", "b"),
    "normal": ("mean", "sd"),
}
_BOUNDED = ("uniform", "triangular", "beta")


class Distribution(BaseModel):
    """One distribution of judgement. Build from YAML with ``Distribution.model_validate``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dist: Literal["uniform", "triangular", "lognormal", "beta", "normal"]
    low: float | None = None
    high: float | None = None
    mode: float | None = None
    median: float | None = None
    sigma: float | None = None
    a: float | None = None
    b: float | None = None
    mean: float | None = None
    sd: float | None = None
    nominal: float | None = None

    @model_validator(mode="after")
    def _parameters_fit(self):
        needed = _NEEDS[self.dist]
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.dist} distribution needs {', '.join(needed)}")
        allowed = {*needed, "low", "high", "dist", "nominal"}
        extra = sorted(k for k in self.model_fields_set if k not in allowed)
        if extra:
            optional = [k for k in ("low", "high", "nominal") if k not in needed]
            raise ValueError(
                f"a {self.dist} distribution takes {', '.join(needed)} (and "
                f"{', '.join(optional)}), not {', '.join(extra)}"
            )
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        if self.dist == "triangular" and not self.low <= self.mode <= self.high:
            raise ValueError(f"mode {self.mode} must lie in [low, high]")
        for name in ("sigma", "sd", "a", "b", "median"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        return self

    def _frozen(self):
        """The scipy distribution before truncation."""
        from scipy import stats

        if self.dist == "uniform":
            return stats.uniform(loc=self.low, scale=self.high - self.low)
        if self.dist == "triangular":
            width = self.high - self.low
            return stats.triang((self.mode - self.low) / width, loc=self.low, scale=width)
        if self.dist == "lognormal":
            return stats.lognorm(self.sigma, scale=self.median)
        if self.dist == "beta":
            low = 0.0 if self.low is None else self.low
            high = 1.0 if self.high is None else self.high
            return stats.beta(self.a, self.b, loc=low, scale=high - low)
        return stats.norm(loc=self.mean, scale=self.sd)

    def support(self) -> tuple[float, float]:
        """The distribution's support before truncation to a field's range."""
        if self.dist in _BOUNDED:
            lo, hi = self._frozen().support()
            return float(lo), float(hi)
        lo = 0.0 if self.dist == "lognormal" else -math.inf
        return (
            lo if self.low is None else max(lo, self.low),
            math.inf if self.high is None else self.high,
        )

    def bounded(self, lo: float, hi: float, where: str) -> Distribution:
        """This distribution checked against a field's valid range ``[lo, hi]``: a bounded kind
        must lie inside it, an unbounded one is truncated to it. ``where`` names the field."""
        s_lo, s_hi = self.support()
        if self.dist in _BOUNDED:
            if s_lo < lo or s_hi > hi:
                raise ValueError(
                    f"{where}: the {self.dist} distribution on [{s_lo:g}, {s_hi:g}] leaves the "
                    f"valid range [{lo:g}, {hi:g}]; narrow low and high"
                )
            return self
        t_lo, t_hi = max(s_lo, lo), min(s_hi, hi)
        if not t_lo < t_hi:
            raise ValueError(
                f"{where}: truncated to the valid range [{lo:g}, {hi:g}] the {self.dist} "
                "distribution has no support left; move its centre into the range"
            )
        mass = np.diff(self._frozen().cdf([t_lo, t_hi]))[0]
        if not mass > 1e-6:
            raise ValueError(
                f"{where}: the {self.dist} distribution puts almost no probability "
                f"({mass:.2g}) in the valid range [{lo:g}, {hi:g}]; move its centre "
                "into the range"
            )
        return self.model_copy(update={"low": t_lo, "high": t_hi})

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Quantile function of the (truncated) distribution at ``u`` in [0, 1].

        Examples
        --------
        >>> d = Distribution(dist="uniform", low=1.0, high=3.0)
        >>> d.ppf([0.0, 0.5, 1.0]).tolist()
        [1.0, 2.0, 3.0]
        >>> n = Distribution(dist="normal", mean=0.0, sd=1.0, low=0.0)
        >>> round(float(n.ppf(0.5)), 4)   # the median of a half-normal
        0.6745
        """
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        frozen = self._frozen()
        if self.dist in _BOUNDED:
            return frozen.ppf(u)
        lo, hi = self.support()
        c_lo, c_hi = frozen.cdf(lo), frozen.cdf(hi)
        return np.clip(frozen.ppf(c_lo + u * (c_hi - c_lo)), lo, hi)

    @property
    def nominal_value(self) -> float:
        """The value of a plain run: ``nominal`` if given, else the median."""
        return float(self.ppf(0.5)) if self.nominal is None else self.nominal

    def moments(self) -> tuple[float, float]:
        """Mean and variance of the (truncated) distribution (scipy's, by quadrature of the
        density over the truncated support for the unbounded kinds)."""
        frozen = self._frozen()
        if self.dist in _BOUNDED:
            return float(frozen.mean()), float(frozen.var())
        lo, hi = self.support()
        mean = frozen.expect(lambda x: x, lb=lo, ub=hi, conditional=True)
        var = frozen.expect(lambda x: (x - mean) ** 2, lb=lo, ub=hi, conditional=True)
        return float(mean), float(var)

    def describe(self) -> str:
        """One line, as the YAML reads: ``triangular(low=0.01, mode=0.018, high=0.03)``."""
        shown = [k for k in (*_NEEDS[self.dist], "low", "high") if getattr(self, k) is not None]
        shown = list(dict.fromkeys(shown))
        return f"{self.dist}({', '.join(f'{k}={getattr(self, k):g}' for k in shown)})"
