"""Values into a statement (its bound parameters) and rows out of it (JSON, within the
result cap).

In: a string, number, boolean or null binds as itself; a list or an object binds as its
JSON text (for a JSON column: drivers disagree on what a list means, an array or a
tuple). ``rows`` is a list of objects, one execution each, the task's ``params`` added to
every one (a param wins over a row's key of the same name).

Out, as JSON: ``Decimal`` -> an integer when whole, else a number when a float holds it
exactly, else its exact decimal string (never silently rounded); NaN and infinities (float
or decimal) -> ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; datetime, date, time -> ISO 8601
strings (an aware datetime keeps its offset); timedelta (PostgreSQL ``interval``, MySQL
``TIME``) -> seconds; bytes -> base64; UUID -> its canonical string; arrays and JSON values
-> lists and objects (converted the same way); a set (MySQL ``SET``) -> a sorted list;
anything else -> its ``str()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from orchestrator import errors
from orchestrator.kinds.sql_errors import not_retryable
from orchestrator.model import task_kinds

BATCH_ROWS = 500
"""Rows fetched at a time (a server-side cursor's buffer, too)."""

NO_ROWS: Any = object()


class ResultTooBig(errors.InvalidResult):
    """The rows a query returned are more than the worker stores."""


def bound(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The statement's parameters, and the rows of an ``executemany`` (None: no ``rows``)."""
    params = {k: bind_value(v) for k, v in values.items() if k != task_kinds.SQL_ROWS}
    rows = values.get(task_kinds.SQL_ROWS, NO_ROWS)
    if rows is NO_ROWS:
        return params, None
    if not isinstance(rows, list | tuple):
        raise not_retryable(errors.SqlTaskFailed(
            f"rows must be a list of objects (one execution each), got "
            f"{_kind(rows)}"))
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or not all(isinstance(k, str) for k in row):
            raise not_retryable(errors.SqlTaskFailed(
                f"rows[{i}] is {_kind(row)}, not an object of :name values"))
        out.append({**{k: bind_value(v) for k, v in row.items()}, **params})
    return params, out


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def bind_value(value: Any) -> Any:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def collect(result: sa.CursorResult[Any], cap: int) -> list[dict[str, Any]]:
    """The rows as objects, fetched :data:`BATCH_ROWS` at a time and counted as compact
    JSON as they come: past ``cap`` bytes, ResultTooBig, without reading the rest."""
    keys = list(result.keys())
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise not_retryable(errors.SqlTaskFailed(
            f"the query returns more than one column named {', '.join(map(repr, twice))}; "
            "give each its own name (AS ...), as each row becomes an object"))
    rows: list[dict[str, Any]] = []
    size = 2  # the list's brackets
    while True:
        batch = result.fetchmany(BATCH_ROWS)
        if not batch:
            return rows
        for values in batch:
            row = {k: json_value(v) for k, v in zip(keys, values, strict=True)}
            text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
            size += (len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
                     ) + (1 if rows else 0)
            if size > cap:
                raise not_retryable(ResultTooBig(
                    f"the query returned more than {cap} bytes of rows as JSON (the most a "
                    f"task's result may be, ORCH_MAX_RESULT_BYTES); it stopped reading after "
                    f"{len(rows)} rows: select fewer rows or columns, or write them to a "
                    "table"))
            rows.append(row)


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _not_finite(value)
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((json_value(v) for v in value), key=str)
    return str(value)


def _not_finite(value: float | decimal.Decimal) -> str:
    # is_nan, not a comparison: comparing a signalling NaN Decimal raises
    nan = value.is_nan() if isinstance(value, decimal.Decimal) else math.isnan(value)
    return "NaN" if nan else "Infinity" if value > 0 else "-Infinity"


def _decimal(value: decimal.Decimal) -> int | float | str:
    if not value.is_finite():
        return _not_finite(value)
    if value == value.to_integral_value() and value.adjusted() < 64:
        return int(value)
    as_float = float(value)
    if math.isfinite(as_float) and decimal.Decimal(repr(as_float)) == value:
        return as_float
    return str(value)
