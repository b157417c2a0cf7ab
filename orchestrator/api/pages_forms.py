"""The DAG page's params form: one field per declared param, typed from its text.

A form sends text. Each param's declared type says how to read it (``integer`` and
``number`` as numbers, ``boolean`` from a select, ``array``, ``object`` and ``any`` as
JSON in a textarea, ``string`` as typed); what cannot be read is that field's error.
What can is then checked by the very validation the API and the client use
(:func:`orchestrator.model.params.validate`), and each problem it finds is shown next to
the field it names. Nothing is written unless every field is right.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator import errors
from orchestrator.model import params as params_
from orchestrator.model.spec import DagSpec, ParamSpec

PREFIX = "param."
_INT = re.compile(r"[+-]?\d{1,20}")
_JSON_TYPES = frozenset({"array", "object", "any"})


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    widget: str
    """"input", "textarea" (JSON) or "select" (booleans)."""
    value: str
    """The text shown: what was submitted, else the default."""
    inputmode: str | None = None


def _default_text(p: ParamSpec) -> str:
    if p.required or (p.default is None and p.type != "any"):
        return ""
    if p.type == "string":
        return str(p.default)
    if p.type == "boolean":
        return "true" if p.default else "false"
    if p.type in _JSON_TYPES:
        return json.dumps(p.default, indent=2, ensure_ascii=False)
    return json.dumps(p.default)


def fields(spec: DagSpec, submitted: Mapping[str, str] | None = None) -> list[Field]:
    out = []
    for name, p in spec.params.items():
        widget = ("textarea" if p.type in _JSON_TYPES else
                  "select" if p.type == "boolean" else "input")
        mode = {"integer": "numeric", "number": "decimal"}.get(p.type)
        value = submitted.get(name, "") if submitted is not None else _default_text(p)
        out.append(Field(name, p.type, p.required, p.description, widget, value, mode))
    return out


def submitted_text(form: Mapping[str, Any], spec: DagSpec) -> dict[str, str]:
    """The form's text per declared param (other form fields are not params)."""
    return {name: str(form.get(PREFIX + name, "")) for name in spec.params}


def _read(p: ParamSpec, text: str) -> tuple[Any, str | None]:
    """(value, problem) for one field's text."""
    if p.type == "string":
        return text, None
    stripped = text.strip()
    if p.type == "integer":
        if _INT.fullmatch(stripped):
            return int(stripped), None
        return None, f"must be an integer (like 42), not {_shown(stripped)}"
    if p.type == "number":
        if _INT.fullmatch(stripped):
            return int(stripped), None
        try:
            number = float(stripped)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number, None
        return None, f"must be a number (like 2.5), not {_shown(stripped)}"
    if p.type == "boolean":
        if stripped in ("true", "false"):
            return stripped == "true", None
        return None, "must be true or false"
    try:
        return json.loads(stripped), None
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(
            exc, json.JSONDecodeError) else ""
        return None, f"must be JSON{where}: {getattr(exc, 'msg', 'nested too deep')}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse(spec: DagSpec, text: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(params to submit, problems by param). An empty field is left out, so the param's
    default applies (and a required one is reported missing by the validation)."""
    values: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for name, p in spec.params.items():
        raw = text.get(name, "")
        if raw.strip() == "" and not (p.type == "string" and raw and not p.required):
            continue
        value, problem = _read(p, raw)
        if problem is not None:
            problems.setdefault(name, []).append(problem)
        else:
            values[name] = value
    return values, problems


def attribute(spec: DagSpec, problems: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each validation problem under the param it names (``param 'n' ...``); the others
    (unknown params, the total size) for the form as a whole."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    names = sorted(spec.params, key=len, reverse=True)
    for problem in problems:
        for name in names:
            if f"param {name!r}" in problem:
                by_field.setdefault(name, []).append(problem)
                break
        else:
            general.append(problem)
    return by_field, general


def check(spec: DagSpec, text: Mapping[str, str], max_bytes: int,
          ) -> tuple[dict[str, Any], dict[str, list[str]], list[str]]:
    """(params, problems by field, form problems): read the fields, then validate what
    could be read the way a submit does (fields already wrong are not reported twice)."""
    values, by_field = parse(spec, text)
    try:
        params_.validate(spec, values, max_bytes=max_bytes)
    except errors.ParamsError as exc:
        found, general = attribute(spec, exc.problems)
        for name, items in found.items():
            if name not in by_field:
                by_field[name] = items
        return values, by_field, general
    return values, by_field, []
