"""Run parameters: checked against a DAG's declared params before anything is written."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import StrictBool, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from orchestrator import errors

if TYPE_CHECKING:
    from orchestrator.model import spec as spec_


def is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


_TYPES: dict[str, TypeAdapter[Any]] = {
    "string": TypeAdapter(StrictStr),
    "integer": TypeAdapter(StrictInt),
    "number": TypeAdapter(StrictInt | float),
    "boolean": TypeAdapter(StrictBool),
    "array": TypeAdapter(list[Any]),
    "object": TypeAdapter(dict[str, Any]),
}


def validate(spec: spec_.DagSpec, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fill defaults and check types; raise :class:`ParamsError` listing every problem."""
    given = dict(params or {})
    problems: list[str] = []
    for name in sorted(set(given) - set(spec.params)):
        problems.append(f"unknown param {name!r}")
    out: dict[str, Any] = {}
    for name, p in spec.params.items():
        if name not in given:
            if p.required:
                problems.append(f"missing required param {name!r}")
            else:
                out[name] = p.default
            continue
        value = given[name]
        if p.type in _TYPES:
            try:
                _TYPES[p.type].validate_python(value, strict=True)
            except PydanticValidationError:
                problems.append(f"param {name!r} must be {p.type}, got "
                                f"{type(value).__name__} {value!r}")
                continue
        if (isinstance(value, float) and not math.isfinite(value)) or not is_json(value):
            problems.append(f"param {name!r} is not JSON-serialisable: {value!r}")
            continue
        out[name] = value
    if problems:
        raise errors.ParamsError(f"invalid params for DAG {spec.id!r}: " + "; ".join(problems),
                                 problems=problems)
    return out
