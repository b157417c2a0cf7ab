"""Run parameters: checked against a DAG's declared params before anything is written.

One rule for every value a run carries in (submitted params and declared defaults):
JSON that both databases store and give back unchanged, within the limits of
:mod:`orchestrator.model.limits`. The check is one iterative walk, so no input can make
it recurse, and every problem is found, not only the first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import StrictBool, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from orchestrator import errors
from orchestrator.model import limits

if TYPE_CHECKING:
    from orchestrator.model import spec as spec_

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate cannot be encoded as UTF-8: PostgreSQL refuses it, SQLite keeps it."""


def is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def canonical(value: Any) -> bytes:
    """The value as compact UTF-8 JSON: what the size limits count."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p!r}]" for p in path)


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _string_problem(s: str) -> str | None:
    if "\x00" in s:
        return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
    if not s.isascii() and _SURROGATE.search(s):
        return "contains a lone surrogate, which is not valid Unicode"
    return None


def _scalar_problem(v: Any) -> str | None:
    if isinstance(v, str):
        return _string_problem(v)
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        ok = limits.MIN_INT <= v <= limits.MAX_INT
        return None if ok else "is an integer outside the 64-bit range"
    if isinstance(v, float):
        return None if math.isfinite(v) else f"is not JSON-serialisable: {v!r}"
    return f"is not JSON-serialisable: {_short(v)}"


def _fine(v: Any) -> bool:
    """The common scalars, checked without a call (most of a big value is these)."""
    t = type(v)
    if t is str:
        return "\x00" not in v and v.isascii()
    if t is int:
        return bool(limits.MIN_INT <= v <= limits.MAX_INT)
    return v is None or t is bool or (t is float and math.isfinite(v))


def problems_in(value: Any, name: str, max_depth: int = limits.MAX_PARAMS_DEPTH) -> list[str]:
    """Every reason ``value`` is not a storable JSON value, each naming ``name`` and the
    place inside it: NaN or infinity, NUL, a lone surrogate, an integer beyond 64 bits,
    a key that is not a string, nesting deeper than ``max_depth``, a non-JSON type."""
    problems: list[str] = []

    def report(path: tuple[str | int, ...], problem: str) -> None:
        problems.append(f"{name}{_where(path)} {problem}")

    if not isinstance(value, list | tuple | dict):
        problem = None if _fine(value) else _scalar_problem(value)
        if problem:
            report((), problem)
        return problems
    # Containers only on the stack, 1 deep for the value itself; scalars checked in place.
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        v, depth, path = stack.pop()
        if depth > max_depth:
            report(path, f"is nested more than {max_depth} deep")
            continue
        nested: list[tuple[Any, int, tuple[str | int, ...]]] = []
        pairs = v.items() if isinstance(v, dict) else enumerate(v)
        for k, item in pairs:
            if type(k) is not int or isinstance(v, dict):
                key_problem = (_string_problem(k) if isinstance(k, str)
                               else f"is not a string: {_short(k)}")
                if key_problem:
                    report(path, f"has a key that {key_problem}")
                    if not isinstance(k, str):
                        continue
            if _fine(item):
                continue
            if isinstance(item, list | tuple | dict):
                nested.append((item, depth + 1, (*path, k)))
            else:
                problem = _scalar_problem(item)
                if problem:
                    report((*path, k), problem)
        stack.extend(reversed(nested))
    return problems


_TYPES: dict[str, TypeAdapter[Any]] = {
    "string": TypeAdapter(StrictStr),
    "integer": TypeAdapter(StrictInt),
    "number": TypeAdapter(StrictInt | float),
    "boolean": TypeAdapter(StrictBool),
    "array": TypeAdapter(list[Any]),
    "object": TypeAdapter(dict[str, Any]),
}


def type_problem(name: str, ptype: str, value: Any) -> str | None:
    if ptype not in _TYPES:
        return None
    try:
        _TYPES[ptype].validate_python(value, strict=True)
    except PydanticValidationError:
        return f"{name} must be {ptype}, got {type(value).__name__} {_short(value)}"
    return None


def _raise(dag_id: str, problems: list[str]) -> None:
    shown = problems[:limits.MAX_PROBLEMS_LISTED]
    more = len(problems) - len(shown)
    message = "; ".join(shown) + (f"; and {more} more problem(s)" if more else "")
    raise errors.ParamsError(f"invalid params for DAG {dag_id!r}: {message}", problems=problems)


def validate(spec: spec_.DagSpec, params: Mapping[str, Any] | None, *,
             max_bytes: int | None = None) -> dict[str, Any]:
    """Fill defaults and check every value; raise :class:`ParamsError` listing every
    problem. ``max_bytes``: the largest the params may be as :func:`canonical` JSON."""
    given = dict(params or {})
    problems: list[str] = []
    for name in sorted((k for k in given if k not in spec.params), key=repr):
        problems.append(f"unknown param {name!r}" if isinstance(name, str)
                        else f"param name {name!r} is not a string")
    out: dict[str, Any] = {}
    for name, p in spec.params.items():
        if name not in given:
            if p.required:
                problems.append(f"missing required param {name!r}")
            else:
                out[name] = p.default
            continue
        value = given[name]
        wrong_type = type_problem(f"param {name!r}", p.type, value)
        problems += [wrong_type] if wrong_type else problems_in(value, f"param {name!r}")
        out[name] = value
    if not problems and max_bytes is not None:
        size = len(canonical(out))
        if size > max_bytes:
            problems.append(f"the params are {size} bytes as JSON, more than "
                            f"ORCH_MAX_PARAMS_BYTES ({max_bytes})")
    if problems:
        _raise(spec.id, problems)
    return out


def check_key(key: str) -> None:
    """An idempotency key must fit its column and be text both databases store."""
    problem = _string_problem(key) if isinstance(key, str) else "is not a string"
    if problem is None and not key:
        problem = "is empty"
    if problem is None and len(key) > limits.MAX_IDEMPOTENCY_KEY_LENGTH:
        problem = f"is longer than {limits.MAX_IDEMPOTENCY_KEY_LENGTH} characters"
    if problem is not None:
        raise errors.InvalidArgument(f"idempotency key {_short(key)} {problem}")
