"""Scenario files: the pydantic models of the YAML, loading, and one-line validation messages.

A scenario says how the four (or any number of) shock channels behave, how exposed each
sector x region node is, and how shocks travel through the economy. Values that vary by node are
written the way an analyst thinks, as a :class:`NodeValues` block::

    exposure:
      default: 0.0            # every node not named below
      sectors: {ELEC: 0.35}   # by sector ...
      regions: {CHN: 0.5}     # ... times a factor by region (default 1)
      nodes: {USA: {TREQ: 0.6}}  # explicit overrides, region then sector

Checks that need the economy (unknown sector or region names, the propagation matrix's spectral
radius) run in :func:`riskengine.compile.compile_model`; every error, from either place, is a
:class:`ScenarioError` whose message is one line naming the YAML path of the field and the fix.

This module imports numpy, pydantic and riskengine's distributions, errors and inputs modules
(riskengine.uncertainty lazily, for a file with distributions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from riskengine.distributions import Distribution
from riskengine.errors import ScenarioError
from riskengine.inputs import parse_yaml, read_text

__all__ = [
    "Scenario",
    "ScenarioError",
    "builtin_scenarios",
    "load_scenario",
]


# The first and last months a period of the cube may start in (datetime64[ns] spans 1677-09-21 to
# 2262-04-11).
FIRST_START = dt.date(1678, 1, 1)
LAST_PERIOD = dt.date(2262, 3, 1)
RESERVED = ("source_text", "source_path", "parameters")

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
UnitInterval = Annotated[float, Field(gt=0.0, le=1.0)]


class _Strict(BaseModel):
    # allow_inf_nan=False: a NaN or infinity in any number of a scenario is refused where it is
    # written (a NaN tension start once gave a run whose every loss was 0).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NodeValues(_Strict):
    """A value for every node: ``nodes[region][sector]`` if given, else
    ``sectors.get(sector, default) * regions.get(region, 1)``."""

    default: float = 0.0
    sectors: dict[str, float] = Field(default_factory=dict)
    regions: dict[str, float] = Field(default_factory=dict)
    nodes: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _scalar_is_default(cls, value):
        # A plain number is shorthand for "the same value everywhere".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"default": value}
        return value

    def to_array(
        self, regions: tuple[str, ...], sectors: tuple[str, ...], where: str
    ) -> np.ndarray:
        """Values in node order (region-major). ``where`` is this block's YAML path, for errors."""
        for key, known, what, kind in (
            (self.sectors, sectors, "sectors", "sector"),
            (self.regions, regions, "regions", "region"),
            (self.nodes, regions, "nodes", "region"),
        ):
            for name in key:
                if name not in known:
                    raise ScenarioError(
                        f"{where}.{what}.{name}: unknown {kind} {name!r}; known: {', '.join(known)}"
                    )
        for region, row in self.nodes.items():
            for name in row:
                if name not in sectors:
                    raise ScenarioError(
                        f"{where}.nodes.{region}.{name}: unknown sector {name!r}; known: "
                        f"{', '.join(sectors)}"
                    )
        out = np.empty(len(regions) * len(sectors))
        for i, r in enumerate(regions):
            for j, s in enumerate(sectors):
                value = self.sectors.get(s, self.default) * self.regions.get(r, 1.0)
                out[i * len(sectors) + j] = self.nodes.get(r, {}).get(s, value)
        return out


class Severity(_Strict):
    """Logit-normal severity drawn at each episode's onset: median ``m``, dispersion ``v``."""

    median: Annotated[float, Field(gt=0.0, lt=1.0)]
    dispersion: Annotated[float, Field(ge=0.0)] = 0.0


class Substitution(_Strict):
    """Alternative supply: ``max / (1 + exp(-(t - midpoint_month) / width_months))``."""

    max: Probability = 0.0
    midpoint_month: float = 60.0
    width_months: Annotated[float, Field(gt=0.0)] = 12.0


class InitialState(_Strict):
    """A channel already on when the scenario starts."""

    on: bool = False
    severity: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    months_on: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, value):
        # YAML 1.1 (and so yaml.safe_load) reads a bare `on:` key as the boolean True.
        if isinstance(value, dict) and True in value and "on" not in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _severity_when_on(self):
        if self.on and self.severity <= 0.0:
            raise ValueError("a channel that starts on needs severity in (0, 1]")
        return self


class Stock(_Strict):
    """Inventories of what a supply channel cuts, per buying node (docs/model.md section 5):
    ``months`` of normal use at the start, rebuilt at ``rebuild`` months a month while the
    channel cuts nothing."""

    months: NodeValues = NodeValues(default=0.0)
    rebuild: Annotated[float, Field(ge=0.0, le=12.0)] = 0.5


class Diversion(_Strict):
    """Trade diversion of a demand channel: the share of the lost sales that the same sector of
    the unexposed regions wins instead (docs/model.md section 5)."""

    share: Probability = 0.0


class Period(_Strict):
    """Months ``start`` to ``end`` (inclusive) of a scheduled channel, at ``severity``."""

    start: dt.date
    end: dt.date
    severity: Annotated[float, Field(ge=0.0, le=1.0)]

    @field_validator("start", "end", mode="before")
    @classmethod
    def _month(cls, value):
        return _month_date(value)

    @field_validator("start", "end")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        return value.replace(day=1)

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError("end is before start; give start <= end")
        return self


KINDS = ("supply", "demand", "finance")


def _month_date(value):
    """ "2026-12" is the natural way to write a month: read as its first day."""
    if isinstance(value, str) and len(value) == 7:
        value = value + "-01"
    return value


class Channel(_Strict):
    """One shock channel (docs/model.md sections 2-5)."""

    description: str = ""
    kind: Literal["supply", "demand", "finance"] = "supply"
    p_on: Probability
    p_off: Probability
    loading: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    severity: Severity
    buffer_months: Annotated[float, Field(ge=0.0)] = 0.0
    substitution: Substitution = Substitution()
    exposure: NodeValues
    initial: InitialState = InitialState()
    stock: Stock = Stock()
    diversion: Diversion = Diversion()
    schedule: list[Period] | None = None

    @model_validator(mode="after")
    def _kind_fits(self):
        if self.kind != "supply" and "stock" in self.model_fields_set:
            raise _FieldError(("stock",), "only a supply channel holds stocks; drop stock")
        if self.kind != "demand" and self.diversion.share > 0:
            raise _FieldError(("diversion",), "only a demand channel diverts trade; drop diversion")
        return self


class Tension(_Strict):
    """The common AR(1) tension factor (MODEL.md section 1), in standard deviations."""

    start: Annotated[float, Field(ge=-10.0, le=10.0)] | Literal["stationary"] = "stationary"
    phi: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9


class ExposureUncertainty(_Strict):
    """Mean-one lognormal exposure multipliers (MODEL.md section 5).

    The F common factors are one global factor and one factor per region, so
    ``B[n] = (global_loading, regional_loading on n's region)``.
    """

    sigma: NodeValues = NodeValues(default=0.0)
    global_loading: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    regional_loading: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="after")
    def _loadings_fit(self):
        if self.global_loading**2 + self.regional_loading**2 > 1.0:
            raise ValueError(
                "global_loading^2 + regional_loading^2 must be <= 1 (the idiosyncratic part "
                "takes the rest)"
            )
        return self


class Propagation(_Strict):
    """The two propagation operators and the speed of adjustment (docs/model.md section 6):
    supply shocks travel downstream through ``supply_weight A^T``, demand shocks upstream
    through ``demand_weight A*`` (1: Leontief's quantity model exactly)."""

    supply_weight: Annotated[float, Field(ge=0.0)] = 1.0
    demand_weight: Annotated[float, Field(ge=0.0)] = 1.0
    recovery_speed: NodeValues = NodeValues(default=0.5)


# The PD sensitivity calibrated to the Federal Reserve's 2025 stress test (2 decimals of
# riskengine.supervisory.calibrate("fed_2025_severely_adverse"); tests/test_credit.py holds it).
SENSITIVITY = 6.57


class CreditSensitivity(_Strict):
    """How far a year's driver moves PDs: the probit shift per unit of the driver (MODEL.md
    section 7). ``corporate`` applies to the sector segments (driver: the borrower node's output
    loss), the others to their segment (driver: the region's value added lost, share of GDP).

    The default, 6.57 for every segment, is calibrated to the Federal Reserve's 2025 stress test
    (C&I and commercial real estate losses over risk-weighted assets;
    ``riskengine.supervisory.calibrate``, docs/calibration.md); one value for every segment is a
    judgement: the published figures do not separate them on the library's driver.
    """

    corporate: Annotated[float, Field(ge=0.0, le=100.0)] = SENSITIVITY
    households: Annotated[float, Field(ge=0.0, le=100.0)] = SENSITIVITY
    commercial_real_estate: Annotated[float, Field(ge=0.0, le=100.0)] = SENSITIVITY
    sovereign: Annotated[float, Field(ge=0.0, le=100.0)] = SENSITIVITY


class ProxyPortfolio(_Strict):
    """Model v1's exposure proxy (``credit.portfolio: proxy``): region r's banks lend
    ``ead_multiple`` times what its ``bank_sector`` node sells to each node."""

    lgd: Probability = 0.45
    pd0: NodeValues = NodeValues(default=0.01)
    ead_multiple: Annotated[float, Field(ge=0.0)] = 1.0
    bank_sector: str = "FIN"


class Credit(_Strict):
    """Banks' credit losses (MODEL.md section 7): a portfolio (a library name, a CSV or parquet
    file relative to the scenario, or ``proxy``), optional capital, the PD sensitivities."""

    portfolio: str = "banking_systems_2024"
    capital: str | None = None
    sensitivity: CreditSensitivity = CreditSensitivity()
    proxy: ProxyPortfolio = ProxyPortfolio()


class ScaleGroup(_Strict):
    """Several values scaled together by one uncertain factor (docs/model.md section 9): every
    number under each YAML path of ``scale`` (a number or a node-value block: its default,
    sectors and nodes, not its region factors) times a factor drawn from ``by``."""

    scale: list[str] = Field(min_length=1)
    by: Distribution


class Uncertainty(_Strict):
    """How a study treats the scenario's judgements (docs/model.md section 9): named scale
    groups, and where exposure uncertainty lives (``outer``: one factor per channel drawn per
    parameter point, the default; ``per_path``: the multipliers of ``exposure_uncertainty``
    drawn inside every path, as in a plain run)."""

    exposure: Literal["outer", "per_path"] = "outer"
    groups: dict[str, ScaleGroup] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _plain_names(cls, value):
        for name in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name):
                raise ValueError(f"group name {name!r}: use letters, digits and _ (a letter first)")
        return value


class Scenario(_Strict):
    """A validated scenario. Build with :func:`load_scenario`.

    ``source_text`` is the YAML the scenario was read from (stored in every cube) and
    ``source_path`` its file; relative paths in it are read from that file's folder.
    """

    name: str
    description: str = ""
    start: dt.date
    horizon_months: Annotated[int, Field(ge=1, le=1200)] = 60
    economy: str = "wiod2023_7x12"
    tension: Tension = Tension()
    channels: dict[str, Channel]
    correlation: dict[str, dict[str, float]] = Field(default_factory=dict)
    retaliation: dict[str, dict[str, float]] = Field(default_factory=dict)
    exposure_uncertainty: ExposureUncertainty = ExposureUncertainty()
    propagation: Propagation = Propagation()
    credit: Credit = Credit()
    uncertainty: Uncertainty = Uncertainty()
    source_text: str = Field(default="", exclude=True, repr=False)
    source_path: str = Field(default="<memory>", exclude=True, repr=False)
    # The parameters written as distributions and the scale groups (riskengine.uncertainty):
    # what a study varies. The fields hold their nominal values (a group's factor is 1).
    parameters: tuple = Field(default=(), exclude=True, repr=False)

    @field_validator("start", mode="before")
    @classmethod
    def _month(cls, value):
        return _month_date(value)

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        return value.replace(day=1)

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, value: str) -> str:
        # The name is printed in one-line messages and stored in every cube.
        if not 0 < len(value) <= 200 or not value.isprintable():
            raise ValueError("give a name of 1 to 200 printable characters on one line")
        return value

    @model_validator(mode="after")
    def _dates_fit_the_time_axis(self):
        # The cube's time axis is datetime64[ns]: 1677-09-21 to 2262-04-11.
        first = FIRST_START
        month = LAST_PERIOD.year * 12 + LAST_PERIOD.month - 1 - (self.horizon_months - 1)
        last = dt.date(month // 12, month % 12 + 1, 1)  # the last month is then LAST_PERIOD
        if not first <= self.start <= last:
            raise _FieldError(
                ("start",),
                f"{self.start:%Y-%m} with a horizon of {self.horizon_months} months does not fit "
                f"the cube's time axis (datetime64[ns]); give a start month from "
                f"{first:%Y-%m} to {last:%Y-%m}",
            )
        return self

    @field_validator("channels")
    @classmethod
    def _some_channels(cls, value):
        if not value:
            raise ValueError("at least one channel is needed")
        return value

    @model_validator(mode="after")
    def _pairs_name_channels(self):
        names = list(self.channels)
        for field in ("correlation", "retaliation"):
            for a, row in getattr(self, field).items():
                for b, v in row.items():
                    for name in (a, b):
                        if name not in self.channels:
                            raise _FieldError(
                                (field, a) if name == a else (field, a, b),
                                f"unknown channel {name!r}; known: {', '.join(names)}",
                            )
                    if a == b:
                        raise _FieldError(
                            (field, a, b), "a channel with itself is fixed; name another channel"
                        )
                    if field == "correlation" and not -1.0 < v < 1.0:
                        raise _FieldError((field, a, b), "a correlation must lie in (-1, 1)")
                    if field == "retaliation" and v < 0.0:
                        raise _FieldError((field, a, b), "retaliation must be >= 0")
        self.correlation_matrix()  # raises on a non-positive-definite matrix
        return self

    @property
    def channel_names(self) -> list[str]:
        return list(self.channels)

    def correlation_matrix(self) -> np.ndarray:
        """Channel correlation R (symmetric, unit diagonal), checked positive definite."""
        names = self.channel_names
        R = np.eye(len(names))
        given: dict[frozenset[str], float] = {}
        for a, row in self.correlation.items():
            for b, v in row.items():
                pair = frozenset((a, b))
                if given.setdefault(pair, v) != v:
                    raise _FieldError(
                        ("correlation", a, b),
                        f"given twice ({given[pair]} and {v}); give each pair once",
                    )
                i, j = names.index(a), names.index(b)
                R[i, j] = R[j, i] = v
        if np.linalg.eigvalsh(R).min() <= 1e-10:
            raise _FieldError(
                ("correlation",),
                f"the matrix over channels {', '.join(names)} is not positive definite; lower "
                "the largest correlations",
            )
        return R

    def retaliation_matrix(self) -> np.ndarray:
        """kappa[c, c']: how much an active c' lowers the onset bar of c."""
        names = self.channel_names
        K = np.zeros((len(names), len(names)))
        for a, row in self.retaliation.items():
            for b, v in row.items():
                K[names.index(a), names.index(b)] = v
        return K

    @property
    def base_dir(self) -> Path:
        return Path(self.source_path).parent

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source_text.encode()).hexdigest()


class _FieldError(ValueError):
    """Raised inside validators to name a field deeper than the one being validated."""

    def __init__(self, loc: tuple[str, ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


# pydantic names the member of a union it tried in the error's location; not a YAML key.
_UNION_MEMBER = re.compile(r"^(constrained-\w+|literal\[.*\]|function-\w+\[.*\]|float|int|str)$")


def one_line(err: ValidationError, source: str) -> str:
    """A validation error as one line: the file, the field (as a YAML path), what and the fix."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if not _UNION_MEMBER.match(str(p))]
    msg = first["msg"]
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _FieldError):
        loc, msg = [*loc, *ctx_err.loc], ctx_err.message
    elif first["type"] == "missing":
        msg = "missing; add this field"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field; check its spelling against docs/calibration.md"
    msg = msg.removeprefix("Value error, ")
    where = ".".join(loc) or "(top level)"
    return f"{source}: {where}: {msg}".replace("\n", " ")


def builtin_scenarios() -> dict[str, Path]:
    """Names and files of the scenario library in ``configs/scenarios``."""
    folder = resources.files("riskengine.data") / "scenarios"
    return {
        p.name.removesuffix(".yaml"): Path(str(p))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }


def load_scenario(source: str | Path) -> Scenario:
    """Load and validate a scenario by built-in name or by path to a YAML file.

    Raises
    ------
    ScenarioError
        With a one-line message naming the file, the field and the fix.

    Examples
    --------
    >>> sc = load_scenario("truce_collapse")
    >>> sorted(sc.channels)
    ['chips', 'dollar', 'rare_earths', 'tariffs']
    """
    library = builtin_scenarios()
    path = library.get(str(source), Path(source))
    if not path.is_file():
        raise ScenarioError(
            f"{source}: no such scenario file or built-in name (built-in: "
            f"{', '.join(library)}; see `riskengine scenarios`)"
        )
    text, _ = read_text(path, ScenarioError, "a YAML scenario file")
    data = parse_yaml(text, path, ScenarioError)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping of fields at the top level")
    for key in data:
        if not isinstance(key, str) or key in RESERVED:
            raise ScenarioError(
                f"{path}: {key}: unknown field; check its spelling against docs/calibration.md"
            )
    data.setdefault("name", path.stem)
    from riskengine.uncertainty import check_parameters, find_parameters

    nominal, parameters = find_parameters(data, str(path))
    try:
        scenario = Scenario.model_validate(
            {**nominal, "source_text": text, "source_path": str(path.resolve())}
        )
    except ValidationError as err:
        raise ScenarioError(one_line(err, str(path))) from None
    if not (parameters or scenario.uncertainty.groups):
        return scenario
    return scenario.model_copy(update={"parameters": check_parameters(scenario, parameters)})
