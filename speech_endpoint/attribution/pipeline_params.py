"""A diarization pipeline's parameters set from DIARIZATION_PARAMS: checked against what the
loaded pipeline declares (`specs`, read through pyannote.pipeline's parameter classes, the
same API on pyannote 3 and 4), then merged over its current values. Pure logic apart from
`specs`; instantiating the pipeline is `compat`'s job.

Names are dotted paths of pyannote's nested parameters ("clustering.threshold"), which is how
pyannote's own config.yaml and `pipeline.parameters()` group them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Constructor settings users try to put here; they are not instantiable parameters.
_ELSEWHERE = {"segmentation_step": "DIARIZATION_STEP"}


@dataclass(frozen=True)
class ParamSpec:
    """What a pipeline declares for one parameter: "float" / "int" with the range pyannote
    searches it in (a tuning range, not a validity limit), "choice" with its choices, or
    "fixed" (frozen by the pipeline)."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    value: Any = None


class ParamsError(ValueError):
    """DIARIZATION_PARAMS names or sets a parameter the pipeline does not have."""


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """{"clustering": {"threshold": 0.6}} -> {"clustering.threshold": 0.6}."""
    flat: dict[str, Any] = {}
    for name, value in nested.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def nest(flat: dict[str, Any]) -> dict:
    """The inverse of `flatten`."""
    nested: dict = {}
    for path, value in flat.items():
        *groups, name = path.split(".")
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return nested


def check(overrides: dict, specs: dict[str, ParamSpec]) -> tuple[dict[str, Any], list[str]]:
    """The overrides as {dotted name: value}, each value of its parameter's type (an int is
    taken for a float), and notes on values outside pyannote's tuning range. Raises
    ParamsError naming the first bad key and listing the valid names."""
    valid = ", ".join(sorted(specs))
    checked, notes = {}, []
    for name, value in flatten(overrides).items():
        spec = specs.get(name)
        if spec is None:
            group = [n for n in specs if n.startswith(f"{name}.")]
            if group and isinstance(value, (int, float, str, bool)):
                raise ParamsError(f"'{name}' is a group of parameters ({', '.join(sorted(group))}), "
                                  "not a value: give an object such as "
                                  f"{{\"{name}\": {{\"{group[0].split('.')[-1]}\": ...}}}}")
            hint = f" (set it with {_ELSEWHERE[name.split('.')[-1]]})" if name.split(".")[-1] in _ELSEWHERE else ""
            raise ParamsError(f"unknown parameter '{name}'{hint}; this pipeline has: {valid}")
        checked[name] = _typed(name, value, spec)
        if spec.kind in ("float", "int") and not (spec.low <= checked[name] <= spec.high):
            notes.append(f"{name} = {checked[name]:g} is outside the range pyannote tunes it in "
                         f"[{spec.low:g}, {spec.high:g}]")
    return checked, notes


def _typed(name: str, value: Any, spec: ParamSpec) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if spec.kind == "float":
        if not number:
            raise ParamsError(f"'{name}' must be a number, not {_type(value)}")
        return float(value)
    if spec.kind == "int":
        if not number or float(value) != int(value):
            raise ParamsError(f"'{name}' must be a whole number, not {value if number else _type(value)}")
        return int(value)
    if spec.kind == "choice":
        if value not in spec.choices:
            raise ParamsError(f"'{name}' must be one of {', '.join(map(str, spec.choices))}")
        return value
    if spec.kind == "fixed" and value != spec.value:
        raise ParamsError(f"'{name}' is fixed by this pipeline at {spec.value!r}")
    return value


def _type(value: Any) -> str:
    names = {bool: "true/false", str: "a string", list: "a list", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def merge(current: dict, overrides: dict[str, Any]) -> dict:
    """The pipeline's current nested parameters with the (dotted) overrides applied: every
    parameter not overridden keeps its value."""
    flat = flatten(current)
    flat.update(overrides)
    return nest(flat)


def specs(pipeline: Any) -> dict[str, Any]:
    """{dotted name: ParamSpec} of what a pyannote pipeline declares it can be instantiated
    with (`pipeline.parameters()`: pyannote.pipeline's Uniform, Integer, Categorical, Frozen
    and kin, the same API on pyannote 3 and 4)."""
    out = {}
    for name, param in flatten(pipeline.parameters()).items():
        kind = type(param).__name__
        if kind in ("Uniform", "LogUniform", "DiscreteUniform"):
            out[name] = ParamSpec("float", param.low, param.high)
        elif kind == "Integer":
            out[name] = ParamSpec("int", param.low, param.high)
        elif kind == "Categorical":
            out[name] = ParamSpec("choice", choices=tuple(param.choices))
        elif kind == "Frozen":
            out[name] = ParamSpec("fixed", value=param.value)
        else:  # a kind this code does not know: any value is passed on as given
            out[name] = ParamSpec("any")
    return out
