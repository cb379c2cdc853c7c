"""Supervisory stress tests through the credit layer: the PD sensitivity's calibration and replay.

A supervisory path (``configs/replays/supervisory/*.yaml``) is a published adverse scenario
reduced to what the credit layer reads: a region's value added lost against the scenario's own
baseline, year by year (a fraction of GDP), applied to every node of the region. It runs through
the same credit stage as a simulation (:func:`riskengine.kernels.credit.book_credit`), for one
bank's rows on borrowers of that region, and gives the bank's credit losses over the horizon
**including** the baseline's expected loss (``EAD LGD pd`` a year), as a supervisor books them,
in basis points of the bank's risk-weighted assets: a figure that does not depend on how much of
the banking system the supervisor's sample covers.

Two roles:

* ``calibration``: :func:`calibrate` finds the PD sensitivity (one probit shift per unit of
  value added lost, common to every segment) at which the model meets the published figure.
  The library's default (:class:`riskengine.scenario.CreditSensitivity`) is that value, and a
  test holds it there.
* ``replay``: :func:`run_supervisory` compares the model, at the default sensitivity, with a
  published figure the calibration did not see; it passes within ``band_factor`` (2: the issue's
  factor of two) either way.

This module imports numpy, pydantic and riskengine's compile, economy, errors, inputs, portfolio
and scenario modules (and the credit stage lazily).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskengine.compile import credit_arrays
from riskengine.economy import load_economy
from riskengine.errors import ScenarioError
from riskengine.inputs import parse_yaml, read_text
from riskengine.portfolio import Portfolio, read_capital, read_portfolio, segments
from riskengine.scenario import CreditSensitivity

__all__ = [
    "SupervisoryPath",
    "SupervisoryResult",
    "builtin_supervisory",
    "calibrate",
    "is_supervisory",
    "load_supervisory",
    "run_supervisory",
]

LIBRARY = Path(__file__).resolve().parent.parent / "configs" / "replays" / "supervisory"
if not LIBRARY.is_dir():  # installed: configs/ ships as riskengine.data
    LIBRARY = Path(__file__).resolve().parent / "data" / "replays" / "supervisory"


class SupervisoryPath(BaseModel):
    """A published adverse scenario as the credit layer reads it, and the published result."""

    model_config = ConfigDict(extra="forbid")

    name: str
    role: Literal["calibration", "replay"]
    description: str
    economy: str = "wiod2023_7x12"
    portfolio: str = "banking_systems_2024"
    capital: str = "banking_systems_2024"
    bank: str
    region: str
    segments: list[str] | None = None  # the bank's segments the published figure covers
    months: Annotated[int, Field(ge=1, le=120)]
    value_added_lost: list[Annotated[float, Field(ge=0.0, le=1.0)]]  # a fraction, each year
    path_source: str
    observed_bp: Annotated[float, Field(gt=0.0)]  # credit losses, bp of risk-weighted assets
    observed_source: str
    band_factor: Annotated[float, Field(gt=1.0)] = 2.0


@dataclass(frozen=True)
class SupervisoryResult:
    """The model's credit losses on a supervisory path against the published figure."""

    path: SupervisoryPath
    sensitivity: float
    loss: float  # the bank's credit losses over the horizon, the economy's unit
    baseline: float  # of which the baseline's expected loss
    model_bp: float  # loss in bp of the bank's risk-weighted assets
    ead: float  # the rows' exposure

    @property
    def ratio(self) -> float:
        """Model over published."""
        return self.model_bp / self.path.observed_bp

    @property
    def passed(self) -> bool:
        f = self.path.band_factor
        return 1.0 / f <= self.ratio <= f


def builtin_supervisory() -> list[str]:
    """Names of the library's supervisory paths."""
    return sorted(p.stem for p in LIBRARY.glob("*.yaml"))


def is_supervisory(name: str | Path) -> bool:
    """Whether ``name`` is a library supervisory path or a YAML file of one (it names a
    ``role``), rather than an episode of :mod:`riskengine.replay`."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        return str(name) in builtin_supervisory()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False  # the episode loader names what is wrong with the file
    return any(line.startswith("role:") for line in text.splitlines())


def load_supervisory(name: str | Path) -> SupervisoryPath:
    """A library path by name, or a YAML file, validated."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = LIBRARY / f"{name}.yaml"
    text, _ = read_text(path, ScenarioError, "a supervisory path (YAML)")
    data = parse_yaml(text, path, ScenarioError)
    try:
        cfg = SupervisoryPath.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ScenarioError(f"{path}: {where}: {err['msg']}") from None
    from riskengine.kernels.credit import years

    if len(cfg.value_added_lost) != years(cfg.months):
        raise ScenarioError(
            f"{path}: value_added_lost: {len(cfg.value_added_lost)} values for {cfg.months} "
            f"months; give one a year ({years(cfg.months)})"
        )
    return cfg


@dataclass(frozen=True)
class _Inputs:
    """What a path reads from files: the economy, the bank's rows on the region (and the
    published figure's segments), the bank's risk-weighted assets. Read once per calibration."""

    eco: object
    book: Portfolio
    rwa: float


def _inputs(cfg: SupervisoryPath) -> _Inputs:
    eco = load_economy(cfg.economy)
    book = read_portfolio(cfg.portfolio, eco.regions, eco.sectors)
    keep = [
        i
        for i in range(len(book.bank))
        if book.bank[i] == cfg.bank
        and book.region[i] == cfg.region
        and (cfg.segments is None or book.segment[i] in cfg.segments)
    ]
    if not keep:
        raise ScenarioError(f"{cfg.name}: the portfolio has no row of {cfg.bank} on {cfg.region}")
    rwa = read_capital(cfg.capital, (cfg.bank,)).rwa[cfg.bank]
    return _Inputs(eco, book.rows(keep), rwa)


def run_supervisory(cfg: SupervisoryPath, sensitivity: float | None = None) -> SupervisoryResult:
    """The bank's credit losses on the path, at ``sensitivity`` (default: the library's).

    Examples
    --------
    >>> r = run_supervisory(load_supervisory("eba_2025_adverse"))
    >>> r.model_bp > 0, r.baseline < r.loss
    (True, True)
    """
    return _run(cfg, _inputs(cfg), sensitivity)


def _run(cfg: SupervisoryPath, inputs: _Inputs, sensitivity: float | None) -> SupervisoryResult:
    from riskengine.kernels.credit import book_credit, credit_model, years

    eco, book = inputs.eco, inputs.book
    if sensitivity is None:
        sens = CreditSensitivity()
    else:
        sens = CreditSensitivity(**dict.fromkeys(CreditSensitivity.model_fields, sensitivity))
    arrays = credit_arrays(book, sens, eco)
    n_years = years(cfg.months)
    cm = credit_model(SimpleNamespace(**arrays, tilt_cycle=np.zeros(n_years)))  # no tilt
    r = eco.regions.index(cfg.region)
    S = len(eco.sectors)
    year_q = np.zeros((1, n_years, eco.n_nodes), np.float32)
    year_q[0, :, r * S : (r + 1) * S] = np.asarray(cfg.value_added_lost, np.float32)[:, None]
    period_of_month = np.zeros(cfg.months, np.int64)
    credit = np.empty((1, 1, 1), np.float32)
    total = np.empty((1, 1))
    segment = np.empty((1, 1, len(segments(eco.sectors))), np.float32)
    book_credit(cm, year_q, np.zeros((1, n_years)), period_of_month, credit, total, segment)
    baseline = float(np.sum(book.ead * book.lgd * book.pd)) * cfg.months / 12
    loss = float(total[0, 0]) + baseline
    used = sens.corporate if sensitivity is None else sensitivity
    bp = loss / inputs.rwa * 1e4
    return SupervisoryResult(cfg, used, loss, baseline, bp, float(book.ead.sum()))


def calibrate(cfg: SupervisoryPath, lo: float = 0.0, hi: float = 100.0) -> float:
    """The common PD sensitivity at which the model meets ``cfg``'s published figure (bisection
    to 1e-6: the model's losses rise with the sensitivity).

    Raises
    ------
    ValueError
        The figure lies outside what sensitivities in ``[lo, hi]`` give.
    """
    inputs = _inputs(cfg)
    f_lo = _run(cfg, inputs, lo).model_bp - cfg.observed_bp
    f_hi = _run(cfg, inputs, hi).model_bp - cfg.observed_bp
    if f_lo > 0 or f_hi < 0:
        raise ValueError(
            f"{cfg.name}: {cfg.observed_bp} bp lies outside the model's range for sensitivities "
            f"in [{lo}, {hi}]"
        )
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        if _run(cfg, inputs, mid).model_bp < cfg.observed_bp:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
