"""The task kinds that talk to outside systems: ``sql`` (a statement on a named
connection, through SQLAlchemy) and ``http`` (one request, through httpx).

A task names its connection; the URL and its credentials are read where the task runs
(``execution.connections``), so neither is in the DAG's version, the state database or a
message. The values a statement binds, and a request's body and query, are the task's
arguments (``kwargs``), so they wire dependencies like a python task's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator import errors
from orchestrator.model import secret_spec

CONN_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
"""Connection names: ``warehouse`` is ``ORCH_CONN_WAREHOUSE`` in the environment."""
_CONN_NAME = re.compile(CONN_NAME_PATTERN)

MAX_QUERY_CHARS = 1024 * 1024

SQL_ROWS = "rows"
"""The keyword holding an ``executemany`` list of mappings (``rows:``)."""
HTTP_BODY = "json"
HTTP_QUERY = "params"
HTTP_QUERY_PREFIX = "params."
"""A request's JSON body is the keyword ``json`` (one value); each query parameter is a
keyword ``params.<name>`` (so each may be a reference of its own)."""

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# RFC 9110 token characters: anything else (a CR or LF above all) would let a value
# written in a DAG add headers or a body of its own.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SqlSpec(_Frozen):
    conn: str = Field(description="name of the connection it runs on")
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS,
                       description="one statement; values only as :name bound parameters")
    file: str | None = Field(default=None, description="the .sql file it was read from")


class HttpSpec(_Frozen):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str | None = Field(default=None, description="the whole URL (or conn + path)")
    conn: str | None = Field(default=None, description="a connection giving the base URL")
    path: str = Field(default="", description="appended to the connection's URL")
    headers: dict[str, secret_spec.EnvValue] = Field(default_factory=dict)
    expect: tuple[int, ...] = Field(default=(), description="statuses that succeed "
                                    "(default: any 2xx)")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def conn_problem(name: str) -> str | None:
    if not _CONN_NAME.fullmatch(name):
        return f"connection name {name!r} must match {CONN_NAME_PATTERN}"
    return None


def check_sql(task_id: str, sql: SqlSpec, kwargs: dict[str, Any], at: dict[str, Any]) -> None:
    problem = conn_problem(sql.conn)
    if problem:
        raise errors.DagError(f"task {task_id!r}: {problem}", **at)
    if "\0" in sql.query or not sql.query.strip():
        raise errors.DagError(f"task {task_id!r}: the query is empty or has a NUL", **at)
    for name in kwargs:
        if name != SQL_ROWS and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise errors.DagError(f"task {task_id!r}: bound parameter name {name!r} is not "
                                  "an identifier (the query names it as :name)", **at)


def check_http(task_id: str, http: HttpSpec, kwargs: dict[str, Any],
               at: dict[str, Any]) -> None:
    def fail(msg: str) -> errors.DagError:
        return errors.DagError(f"task {task_id!r}: http: {msg}", **at)

    _check_target(http, fail)
    for name, value in http.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise fail(f"header name {name[:100]!r} is not an HTTP token")
        if isinstance(value, str) and any(c in value for c in "\r\n\0"):
            raise fail(f"header {name!r} has a CR, LF or NUL")
    for code in http.expect:
        if not 100 <= code <= 599:
            raise fail(f"expect: {code} is not an HTTP status")
    unknown = {k for k in kwargs if k != HTTP_BODY and not k.startswith(HTTP_QUERY_PREFIX)}
    if unknown:
        raise fail(f"unknown argument(s) {sorted(unknown)}; a request takes json and params")
    if HTTP_BODY in kwargs and http.method in ("GET", "HEAD", "OPTIONS"):
        raise fail(f"a {http.method} request has no json body")


def _check_target(http: HttpSpec, fail: Callable[[str], errors.DagError]) -> None:
    if (http.url is None) == (http.conn is None):
        raise fail("give exactly one of url (the whole URL) or conn (plus path)")
    if http.url is not None:
        if not re.match(r"https?://[^/\s]", http.url, re.IGNORECASE):
            raise fail(f"url must start with http:// or https://, got {http.url[:200]!r}")
        if http.path:
            raise fail("path goes with conn; put it in url")
    if http.conn is not None:
        problem = conn_problem(http.conn)
        if problem:
            raise fail(problem)
    for text in (http.url or "", http.path):
        if any(c in text for c in "\r\n\0 "):
            raise fail("a URL or path has a space, CR, LF or NUL")
