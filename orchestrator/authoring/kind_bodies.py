"""The bodies of ``sql`` and ``http`` tasks as YAML and Python write them, compiled to a
task mapping's ``sql``/``http`` and ``kwargs`` (the values they bind or send).

A ``.sql`` file is read when the DAG is loaded, relative to the DAG's own file and never
outside its folder (a DAG file must not read the worker's files into a task), so the
statement is part of the DAG's version and every worker runs the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.model import task_kinds

MAX_SQL_FILE_BYTES = 1024 * 1024

Fail = Callable[[str], Exception]
ToArg = Callable[[Any], Any]


def read_sql_file(name: str, source: str | None, fail: Fail) -> str:
    """The text of ``name``, a path relative to the folder of the DAG file ``source``."""
    if source is None or source.startswith("<"):
        raise fail(f"sql_file {name!r}: a DAG that is not read from a file has no folder to "
                   "find it in; give the query itself")
    folder = Path(source).resolve().parent
    path = (folder / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(folder):
        raise fail(f"sql_file {name!r} is outside the DAG's folder {folder}")
    if not path.is_file():  # a FIFO or a device would hang or never end
        raise fail(f"sql_file {name!r} is not a file in {folder}")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SQL_FILE_BYTES + 1)
    except OSError as exc:
        raise fail(f"sql_file {name!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_SQL_FILE_BYTES:
        raise fail(f"sql_file {name!r} is bigger than {MAX_SQL_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"sql_file {name!r} is not UTF-8 text") from None


def sql_body(body: Any, sql_file: Any, source: str | None, to_arg: ToArg,
             fail: Fail) -> dict[str, Any]:
    """``sql: {conn, query | file, params, rows}`` (and ``sql_file: path.sql``)."""
    if not isinstance(body, Mapping):
        raise fail("sql must be a mapping: {conn: NAME, query: \"...\", params: {...}}")
    unknown = set(body) - {"conn", "query", "file", "params", "rows"}
    if unknown:
        raise fail(f"sql: unknown key(s) {sorted(unknown, key=str)}; allowed: conn, query, "
                   "file, params, rows")
    file = body.get("file", sql_file)
    if ("query" in body) == (file is not None):
        raise fail("sql: give exactly one of query (the statement) or file / sql_file "
                   "(a .sql file beside the DAG)")
    if file is not None and not isinstance(file, str):
        raise fail(f"sql_file must be a path, got {file!r}")
    query = body.get("query") if file is None else read_sql_file(file, source, fail)
    params = body.get("params") or {}
    if not isinstance(params, Mapping):
        raise fail("sql: params must be a mapping of :name to value")
    kwargs = {str(k): to_arg(v) for k, v in params.items()}
    if "rows" in body:
        kwargs[task_kinds.SQL_ROWS] = to_arg(body["rows"])
    return {"kind": "sql", "sql": {"conn": body.get("conn"), "query": query, "file": file},
            "kwargs": kwargs}


def http_body(body: Any, to_arg: ToArg, secret_arg: ToArg, fail: Fail) -> dict[str, Any]:
    """``http: {method, url | conn + path, headers, json, params, expect}``."""
    if not isinstance(body, Mapping):
        raise fail("http must be a mapping: {method: GET, url: ..., expect: [200]}")
    allowed = {"method", "url", "conn", "path", "headers", "expect", task_kinds.HTTP_BODY,
               task_kinds.HTTP_QUERY}
    unknown = set(body) - allowed
    if unknown:
        raise fail(f"http: unknown key(s) {sorted(unknown, key=str)}; allowed: "
                   f"{', '.join(sorted(allowed))}")
    headers = body.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise fail("http: headers must be a mapping of name to value")
    expect = body.get("expect", [])
    expect = [expect] if isinstance(expect, int) else expect
    out = {k: body[k] for k in ("method", "url", "conn", "path") if k in body}
    out["headers"] = {str(k): secret_arg(v) if isinstance(v, Mapping) and "secret" in v else v
                      for k, v in headers.items()}
    out["expect"] = expect
    query = body.get(task_kinds.HTTP_QUERY) or {}
    if not isinstance(query, Mapping):
        raise fail("http: params (the query) must be a mapping of name to value")
    kwargs = {f"{task_kinds.HTTP_QUERY_PREFIX}{k}": to_arg(v) for k, v in query.items()}
    if task_kinds.HTTP_BODY in body:
        kwargs[task_kinds.HTTP_BODY] = to_arg(body[task_kinds.HTTP_BODY])
    return {"kind": "http", "http": out, "kwargs": kwargs}
