"""Uncertain parameters of a scenario: the numbers written as distributions, the scale groups,
the outer exposure factors of a study, and the scenario at one parameter point.

A :class:`Parameter` sets one or more numbers of the scenario's data (its ``targets``, paths of
keys into the YAML mapping): a parameter written in place of a number sets that number; a scale
group (``uncertainty.groups``) or an outer exposure factor sets every number it scales to its
file value times the factor. :func:`scenario_at` builds the validated scenario of one point.

Valid ranges: a distribution is truncated to (a bounded one must lie inside) the range of its
field, read from the scenario's pydantic fields (``ge``, ``gt``, ``le``, ``lt``) or, for
node-value blocks and the pair tables, from :data:`BLOCK_RANGES`; a group's factor is truncated
so that no value it scales leaves its field's range.

This module imports numpy, pydantic and riskengine's distributions, errors and scenario modules.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import annotated_types as at
import numpy as np
from pydantic import BaseModel, ValidationError

from riskengine.distributions import Distribution
from riskengine.errors import ScenarioError
from riskengine.scenario import NodeValues, Scenario, one_line

__all__ = [
    "BLOCK_RANGES",
    "Parameter",
    "check_parameters",
    "exposure_parameters",
    "field_range",
    "find_parameters",
    "scenario_at",
]

# Valid ranges of the values of node-value blocks (checked per node by compile_model) and of the
# pair tables, by field name: (low, high, low open, high open).
BLOCK_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "exposure": (0.0, 1.0, False, False),
    "months": (0.0, 120.0, False, False),
    "recovery_speed": (0.0, 1.0, True, False),
    "sigma": (0.0, 5.0, False, False),
    "pd0": (0.0, 1.0, True, True),
    "correlation": (-1.0, 1.0, True, True),
    "retaliation": (0.0, math.inf, False, False),
}
_UNBOUNDED = (-math.inf, math.inf, False, False)
_REGION_FACTOR = (0.0, math.inf, False, False)


@dataclass(frozen=True)
class Parameter:
    """One uncertain input of a study.

    ``name`` is the YAML path of the number (``channels.chips.p_on``) or the group's name;
    ``targets`` the data paths it sets; ``base`` their file values for a factor (empty for a
    number); ``clip`` the open-range guard applied to a drawn number.
    """

    name: str
    distribution: Distribution
    targets: tuple[tuple, ...]
    base: tuple[float, ...] = ()
    clip: tuple[float, float] = (-math.inf, math.inf)

    @property
    def is_factor(self) -> bool:
        return bool(self.base)

    def values(self, u: np.ndarray) -> np.ndarray:
        """The parameter's values at points ``u`` of the unit interval."""
        return np.clip(self.distribution.ppf(u), *self.clip)


def _dotted(path: Sequence) -> str:
    return ".".join(str(p) for p in path)


def _unwrap(annotation):
    """The annotation without ``Optional``; the metadata of an ``Annotated`` float member."""
    meta = []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        for a in members:
            if typing.get_origin(a) is typing.Annotated:
                for m in a.__metadata__:
                    meta += list(getattr(m, "metadata", [m]))
        annotation = members[0] if len(members) == 1 else annotation
    return annotation, meta


def _numeric(annotation) -> bool:
    """Whether a field holds a number (a float or int, possibly in a union or Annotated)."""
    if annotation in (float, int):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _numeric(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_numeric(a) for a in typing.get_args(annotation))
    return False


def field_range(path: Sequence) -> tuple[float, float, bool, bool]:
    """``(low, high, low open, high open)`` of the scenario number at ``path`` (keys into the
    YAML mapping). Infinite where the field has no bound.

    Examples
    --------
    >>> field_range(("channels", "chips", "p_on"))
    (0.0, 1.0, False, False)
    >>> field_range(("channels", "chips", "exposure", "nodes", "CHN", "ELEC"))
    (0.0, 1.0, False, False)
    >>> field_range(("channels", "chips", "severity", "median"))
    (0.0, 1.0, True, True)
    """
    cls: type[BaseModel] = Scenario
    keys = list(path)
    while keys:
        key = keys.pop(0)
        field = cls.model_fields.get(str(key))
        if field is None:
            raise KeyError(_dotted(path))
        annotation, meta = _unwrap(field.annotation)
        meta += list(field.metadata)
        if str(key) in ("correlation", "retaliation"):
            return BLOCK_RANGES[str(key)]
        while typing.get_origin(annotation) in (dict, list) and keys:
            keys.pop(0)
            annotation, more = _unwrap(typing.get_args(annotation)[-1])
            meta += more
        if annotation is NodeValues:
            if keys and keys[0] == "regions":
                return _REGION_FACTOR
            return BLOCK_RANGES.get(str(key), _UNBOUNDED)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            cls = annotation
            continue
        if keys or not _numeric(annotation):
            raise KeyError(_dotted(path))
        lo, hi, lo_open, hi_open = -math.inf, math.inf, False, False
        for m in meta:
            if isinstance(m, at.Ge):
                lo = float(m.ge)
            elif isinstance(m, at.Gt):
                lo, lo_open = float(m.gt), True
            elif isinstance(m, at.Le):
                hi = float(m.le)
            elif isinstance(m, at.Lt):
                hi, hi_open = float(m.lt), True
        return lo, hi, lo_open, hi_open
    raise KeyError(_dotted(path))


def _guard(lo: float, hi: float, lo_open: bool, hi_open: bool) -> tuple[float, float]:
    """The closed interval a drawn value is clipped to, inside an open bound by a hair."""
    eps = 1e-9
    return (lo + eps * max(1.0, abs(lo)) if lo_open else lo,
            hi - eps * max(1.0, abs(hi)) if hi_open else hi)  # fmt: skip


def _distribution(spec, where: str, source: str) -> Distribution:
    try:
        return Distribution.model_validate(spec)
    except ValidationError as err:
        loc, _, msg = one_line(err, "").removeprefix(": ").partition(": ")
        field = where if loc == "(top level)" else f"{where}.{loc}"
        raise ScenarioError(f"{source}: {field}: {msg}") from None


def find_parameters(data: dict, source: str) -> tuple[dict, list[Parameter]]:
    """The scenario data with every distribution replaced by its nominal value, and the
    parameters (one per distribution, truncated to its field's range).

    ``uncertainty`` (whose groups hold distributions by design) is left as it is.
    """
    found: list[Parameter] = []

    def walk(value, path: tuple):
        if isinstance(value, dict) and "dist" in value:
            where = _dotted(path)
            d = _distribution(value, where, source)
            try:
                lo, hi, lo_open, hi_open = field_range(path)
            except KeyError:
                raise ScenarioError(
                    f"{source}: {where}: not a scenario number; a distribution may stand only "
                    "where a number is expected"
                ) from None
            try:
                d = d.bounded(lo, hi, where)
            except ValueError as exc:
                raise ScenarioError(f"{source}: {exc}") from None
            p = Parameter(where, d, (path,), clip=_guard(lo, hi, lo_open, hi_open))
            found.append(p)
            return float(np.clip(d.nominal_value, *p.clip))
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) if path or k != "uncertainty" else v
                    for k, v in value.items()}  # fmt: skip
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    return walk(data, ()), found


def _get(data, path: Sequence):
    for key in path:
        data = data[key]
    return data


def _set(data, path: Sequence, value) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _leaves(data, path: tuple) -> list[tuple]:
    """The numbers under ``path`` (region factors of a node-value block excluded)."""
    value = _get(data, path)
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [path]
    if isinstance(value, dict):
        keys = [k for k in value if k != "regions"]
        return [leaf for k in keys for leaf in _leaves(data, (*path, k))]
    if isinstance(value, list):
        return [leaf for i in range(len(value)) for leaf in _leaves(data, (*path, i))]
    return []


def _factor(name: str, d: Distribution, data: dict, paths: Sequence[tuple], where: str,
            taken: Mapping[tuple, str] | None = None) -> Parameter:  # fmt: skip
    """A factor parameter scaling every number under ``paths``, truncated so that none leaves its
    field's valid range; none may be one that ``taken`` (target -> parameter) sets already."""
    targets = [leaf for p in paths for leaf in _leaves(data, p)]
    for t in targets:
        if taken and t in taken:
            raise ValueError(
                f"{where}: scales {_dotted(t)}, which {taken[t]} sets already; give that number "
                "a distribution or a group, not both"
            )
    base = [float(_get(data, t)) for t in targets]
    k_lo, k_hi = 0.0, math.inf
    for t, v in zip(targets, base, strict=True):
        lo, hi, lo_open, hi_open = field_range(t)
        lo, hi = _guard(lo, hi, lo_open, hi_open)
        if v > 0:
            k_lo, k_hi = max(k_lo, lo / v), min(k_hi, hi / v)
        elif v < 0:
            k_lo, k_hi = max(k_lo, hi / v), min(k_hi, lo / v)
    if not targets or not any(base):
        raise ValueError(f"{where}: scales no non-zero number; name fields that hold some")
    bounded = d.bounded(k_lo, k_hi, f"{where} (its factor keeps every value it scales valid)")
    return Parameter(name, bounded, tuple(targets), tuple(base))


def check_parameters(scenario: Scenario, found: list[Parameter]) -> tuple[Parameter, ...]:
    """The scenario's parameters: ``found`` (numbers written as distributions) and one factor
    per group of ``uncertainty.groups``, checked against each other."""
    src = scenario.source_path
    data = scenario.model_dump(exclude_unset=True)
    params = list(found)
    taken = {p.targets[0]: p.name for p in found}
    for name, group in scenario.uncertainty.groups.items():
        where = f"uncertainty.groups.{name}"
        if group.by.nominal is not None:
            raise ScenarioError(
                f"{src}: {where}.by.nominal: a group's factor is 1 in a plain run; drop nominal"
            )
        paths = []
        for i, text in enumerate(group.scale):
            path = tuple(text.split("."))
            try:
                _get(data, path)
            except (KeyError, TypeError):
                raise ScenarioError(
                    f"{src}: {where}.scale.{i}: {text!r} is not given in the file; name a field "
                    "the scenario writes (its YAML path, dots between keys)"
                ) from None
            paths.append(path)
        try:
            p = _factor(name, group.by, data, paths, where, taken)
        except ValueError as exc:
            raise ScenarioError(f"{src}: {exc}") from None
        taken.update(dict.fromkeys(p.targets, name))
        params.append(p)
    return tuple(params)


def exposure_parameters(scenario: Scenario, sigma: Mapping[str, float]) -> tuple[Parameter, ...]:
    """The outer exposure factors of a study: for each channel ``c`` with ``sigma[c] > 0`` whose
    exposure no parameter touches, a mean-one lognormal factor ``exposure.c`` (log-sd
    ``sigma[c]``) on its whole exposure table, truncated to the table's valid range."""
    data = scenario.model_dump(exclude_unset=True)
    touched = {t[:3] for p in scenario.parameters for t in p.targets}
    out = []
    for name, s in sigma.items():
        path = ("channels", name, "exposure")
        if s <= 0 or path in touched:
            continue
        d = Distribution(dist="lognormal", median=math.exp(-(s**2) / 2), sigma=s)
        try:
            out.append(_factor(f"exposure.{name}", d, data, [path], f"channels.{name}.exposure"))
        except ValueError:
            continue  # a channel with no exposure at all: nothing to scale
    return tuple(out)


def scenario_at(
    scenario: Scenario,
    parameters: Sequence[Parameter],
    values: Sequence[float],
    *,
    exposure_per_path: bool = True,
) -> Scenario:
    """The validated scenario with each parameter at its value (a number, or a group's
    factor); without ``exposure_per_path``, the per-path exposure multipliers are off (the
    outer layer carries exposure uncertainty).

    Raises
    ------
    ScenarioError
        The point makes the scenario invalid (named with the parameters' values).
    """
    data = copy.deepcopy(scenario.model_dump(exclude_unset=True))
    data.pop("uncertainty", None)
    if not exposure_per_path:
        data.pop("exposure_uncertainty", None)
    for p, v in zip(parameters, values, strict=True):
        if p.is_factor:
            for t, b in zip(p.targets, p.base, strict=True):
                _set(data, t, b * float(v))
        else:
            _set(data, p.targets[0], float(v))
    try:
        return Scenario.model_validate(
            {**data, "source_text": scenario.source_text, "source_path": scenario.source_path}
        )
    except ValidationError as err:
        point = ", ".join(f"{p.name}={v:.6g}" for p, v in zip(parameters, values, strict=True))
        line = one_line(err, scenario.source_path)
        raise ScenarioError(f"{line} (at the point {point})") from None
