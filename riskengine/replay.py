"""Replays: episodes that happened, run through the model, against what was observed.

A replay file (``configs/replays/*.yaml``, or any YAML a user writes: no code needed) names the
calibrated scenario it holds to history, the episode's dates and the channels that were on,
month by month and at what severity (every other channel off), and the outcomes that were
observed, each with its source and an honest band. :func:`run_replay` turns the episode into a
deterministic path of that scenario (the channels follow their schedules, exposures sit at their
means: ``exposure_uncertainty.sigma`` 0) and runs it through the same kernels as any run; each
observation is then the model's figure (the change of output or of value added of some nodes or
regions over some months, against the baseline without the episode) next to the observed one.

This module imports numpy, pydantic and riskengine's engine, errors, inputs, scenario and
compile modules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskengine.compile import CompiledModel, compile_model
from riskengine.errors import ScenarioError
from riskengine.inputs import parse_yaml, read_text
from riskengine.scenario import Period, Scenario, builtin_scenarios, one_line
from riskengine.uncertainty import find_parameters

__all__ = ["Observation", "Replay", "ReplayResult", "builtin_replays", "load_replay", "run_replay"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _month(value):
    if isinstance(value, str) and len(value) == 7:
        value = value + "-01"
    return value


class Observation(_Strict):
    """One observed outcome: the % change of a quantity over some months, with its source.

    ``measure`` ``output``: gross output of the ``nodes`` (``{region: [sector, ...]}``);
    ``value_added``: value added of the ``regions`` (``["world"]`` for all). The change is
    against the baseline without the episode, over the months ``start`` to ``end``
    (inclusive). The replay passes where the model's change lies in ``band`` (low, high).
    ``observed`` may be left out where the evidence is a range or a direction only (the band
    is then the evidence). ``gap`` states why the model cannot meet this evidence (see
    docs/calibration.md): the observation is still run and shown, and it must still lie
    outside its band; once the model meets it, the ``gap`` line has to go.
    """

    name: str
    measure: Literal["output", "value_added"]
    nodes: dict[str, list[str]] | None = None
    regions: list[str] | None = None
    start: dt.date
    end: dt.date
    observed: float | None = None
    band: tuple[float, float]
    source: str = Field(min_length=1)
    gap: str | None = Field(default=None, min_length=1)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _months(cls, value):
        return _month(value)

    @model_validator(mode="after")
    def _what(self):
        if (self.measure == "output") != (self.nodes is not None):
            raise ValueError("an output observation names nodes, a value_added one regions")
        if self.measure == "value_added" and not self.regions:
            raise ValueError("a value_added observation names its regions (or world)")
        if not self.band[0] <= self.band[1]:
            raise ValueError("band is (low, high): give low <= high")
        if self.observed is not None and not self.band[0] <= self.observed <= self.band[1]:
            raise ValueError("the observed value must lie inside its own band")
        if self.end < self.start:
            raise ValueError("end is before start; give start <= end")
        return self


class Replay(_Strict):
    """An episode that happened, and what was observed of it."""

    name: str
    description: str = ""
    scenario: str  # the calibrated scenario held to history: a built-in name or a path
    economy: str | None = None  # the table of the episode's time, where it is not the scenario's
    start: dt.date
    horizon_months: Annotated[int, Field(ge=1, le=240)]
    channels: dict[str, list[Period]]
    regions: dict[str, list[str]] = Field(default_factory=dict)  # a channel's reach, if narrower
    observations: list[Observation] = Field(min_length=1)
    source_path: str = Field(default="<memory>", exclude=True, repr=False)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value):
        return _month(value)


@dataclass(frozen=True)
class ReplayResult:
    """An observation with the model's figure for it."""

    replay: str
    observation: Observation
    model: float

    @property
    def inside(self) -> bool:
        """Whether the model's figure lies in the observation's band."""
        low, high = self.observation.band
        return bool(low <= self.model <= high)

    @property
    def status(self) -> str:
        """``pass``, ``fail``, ``gap`` (a documented gap, still outside its band) or
        ``gap closed`` (the model now meets a documented gap: remove its ``gap`` line)."""
        if self.observation.gap is None:
            return "pass" if self.inside else "fail"
        return "gap closed" if self.inside else "gap"

    @property
    def passed(self) -> bool:
        """Whether the observation holds: inside its band, or a documented gap still open."""
        return self.status in ("pass", "gap")


def builtin_replays() -> dict[str, Path]:
    """Names and files of the replays in ``configs/replays``."""
    folder = resources.files("riskengine.data") / "replays"
    return {
        p.name.removesuffix(".yaml"): Path(str(p))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }


def load_replay(source: str | Path) -> Replay:
    """A replay by built-in name or path; :class:`ScenarioError` in one line where it is wrong.

    Examples
    --------
    >>> replay = load_replay("rare_earths_2025")
    >>> replay.scenario, sorted(replay.channels)
    ('truce_collapse', ['rare_earths'])
    """
    library = builtin_replays()
    path = library.get(str(source), Path(source))
    if not path.is_file():
        raise ScenarioError(
            f"{source}: no such replay file or built-in name (built-in: {', '.join(library)})"
        )
    text, _ = read_text(path, ScenarioError, "a YAML replay file")
    data = parse_yaml(text, path, ScenarioError)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping of fields at the top level")
    data.setdefault("name", path.stem)
    try:
        return Replay.model_validate({**data, "source_path": str(path.resolve())})
    except ValidationError as err:
        raise ScenarioError(one_line(err, str(path))) from None


def episode_model(replay: Replay) -> CompiledModel:
    """The replay's deterministic path of its scenario: the episode's start and horizon, its
    channels on their schedules (the others scheduled off), exposures at their means."""
    library = builtin_scenarios()
    base = library.get(replay.scenario, Path(replay.source_path).parent / replay.scenario)
    if not Path(base).is_file():
        raise ScenarioError(f"{replay.source_path}: scenario: no such scenario {replay.scenario!r}")
    data = yaml.safe_load(Path(base).read_text(encoding="utf-8"))
    # A replay is the scenario's nominal path: judgements written as distributions at their
    # nominal values, no study settings.
    data, _ = find_parameters(data, str(base))
    data.pop("uncertainty", None)
    unknown = set(replay.channels) - set(data["channels"])
    if unknown:
        raise ScenarioError(
            f"{replay.source_path}: channels: {sorted(unknown)} are not channels of "
            f"{replay.scenario}; known: {', '.join(data['channels'])}"
        )
    data |= {"start": replay.start, "horizon_months": replay.horizon_months}
    data["name"] = f"replay {replay.name}"
    if replay.economy is not None:
        data["economy"] = replay.economy
    data.setdefault("exposure_uncertainty", {})["sigma"] = 0.0
    for name, channel in data["channels"].items():
        periods = replay.channels.get(name, [])
        channel["schedule"] = [p.model_dump() for p in periods]
        channel.pop("initial", None)
        if name in replay.regions:
            exposure = channel["exposure"]
            factors = exposure.setdefault("regions", {}) if isinstance(exposure, dict) else {}
            if not isinstance(exposure, dict):
                channel["exposure"] = exposure = {"default": exposure, "regions": factors}
            keep = set(replay.regions[name])
            nodes = exposure.get("nodes", {})
            exposure["nodes"] = {r: v for r, v in nodes.items() if r in keep}
            for region in _regions(replay, data):
                if region not in keep:
                    factors[region] = 0.0
    try:
        scenario = Scenario.model_validate(
            {**data, "source_text": yaml.safe_dump(data), "source_path": str(base)}
        )
    except ValidationError as err:
        raise ScenarioError(one_line(err, replay.source_path)) from None
    return compile_model(scenario)


def _regions(replay: Replay, data: dict) -> tuple[str, ...]:
    from riskengine.economy import load_economy

    folder = Path(replay.source_path).parent
    return load_economy(data.get("economy", "wiod2023_7x12"), folder).regions


def run_replay(
    replay: Replay | str | Path, backend: str = "cpu", model: CompiledModel | None = None
) -> list[ReplayResult]:
    """Run a replay: the model's figure for each of its observations.

    Parameters
    ----------
    replay
        A :class:`Replay`, a built-in replay's name or a replay file.
    backend
        ``cpu``, ``cuda`` or ``reference``.
    model
        The episode's model, where a study changes it (for example the stocks, to see how much
        an observation depends on them); by default :func:`episode_model` of the replay.

    Examples
    --------
    >>> results = run_replay("rare_earths_2025", backend="reference")
    >>> all(r.passed for r in results)
    True
    """
    from riskengine.engine import simulate

    if not isinstance(replay, Replay):
        replay = load_replay(replay)
    model = episode_model(replay) if model is None else model
    ds = simulate(model, paths=1, seed=0, backend=backend, resolution="month")
    loss = ds.loss.values[0].astype(np.float64)  # (month, sector, region), the economy's unit
    share = ds.value_added_share.values  # (sector, region)
    monthly = model.arrays.loss_scale.reshape(len(model.regions), len(model.sectors)).T
    return [
        ReplayResult(replay.name, obs, _change(obs, replay, model, loss, share, monthly))
        for obs in replay.observations
    ]


def _change(obs, replay, model, loss, share, monthly) -> float:
    """The model's % change of the observation's quantity over its months."""
    first = _months(replay.start, obs.start)
    last = _months(replay.start, obs.end)
    if not 0 <= first <= last < replay.horizon_months:
        raise ScenarioError(
            f"{replay.source_path}: observation {obs.name!r}: its months lie outside the "
            "replay's horizon; move them or lengthen horizon_months"
        )
    lost = loss[first : last + 1].sum(axis=0)  # (sector, region)
    months = last - first + 1
    regions, sectors = list(model.regions), list(model.sectors)
    mask = np.zeros((len(sectors), len(regions)), bool)
    if obs.measure == "output":
        for region, names in (obs.nodes or {}).items():
            for sector in names:
                mask[_index(sectors, sector, obs, replay), _index(regions, region, obs, replay)] = 1
        base = monthly[mask].sum() * months
        return float(-100.0 * lost[mask].sum() / base)
    for region in obs.regions or ():
        if region == "world":
            mask[:] = True
        else:
            mask[:, _index(regions, region, obs, replay)] = True
    base = (monthly * share)[mask].sum() * months
    return float(-100.0 * (lost * share)[mask].sum() / base)


def _index(labels: list[str], name: str, obs, replay) -> int:
    if name not in labels:
        raise ScenarioError(
            f"{replay.source_path}: observation {obs.name!r}: unknown label {name!r}; known: "
            f"{', '.join(labels)}"
        )
    return labels.index(name)


def _months(start: dt.date, month: dt.date) -> int:
    return (month.year - start.year) * 12 + month.month - start.month
