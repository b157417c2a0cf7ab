"""``sql_task`` and ``http_task``: the sql and http kinds inside a ``@dag`` body.

::

    @dag
    def etl():
        rows = transform(extract())
        sql_task("load", conn="warehouse", rows=rows,
                 query="INSERT INTO orders (id, total) VALUES (:id, :total)")

Like a call of a ``@task`` function, each adds a node and returns its
:class:`~orchestrator.Output`; values may be Outputs and Params (each a whole value).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator import errors
from orchestrator.authoring import kind_bodies, python
from orchestrator.model import task_kinds

_NOT_GIVEN: Any = object()


def _builder(what: str) -> python._Builder:
    builder = python._building.get()
    if builder is None:
        raise errors.DagError(f"{what}() works only inside a @dag function")
    return builder


def _fail(task_id: str, dag_id: str) -> kind_bodies.Fail:
    return lambda msg: errors.DagError(f"task {task_id!r}: {msg}", dag_id=dag_id)


def sql_task(task_id: str, *, conn: str, query: str | None = None, file: str | None = None,
             params: Mapping[str, Any] | None = None, rows: Any = _NOT_GIVEN,
             **options: Any) -> python.Output:
    """A statement on connection ``conn``, in one transaction per attempt. ``query`` (or
    ``file``, a .sql file beside this DAG's file) names its values ``:name``; ``params``
    binds them (never formatted into the text). ``rows``: a list of mappings (an upstream
    task's result, say) to run the statement once per row (``executemany``), ``params``
    adding to each. The result: the rows as a list of objects, or the rowcount. Options
    as ``@task``'s (retries, timeout, ...)."""
    builder = _builder("sql_task")
    body: dict[str, Any] = {"conn": conn, "params": dict(params or {})}
    body.update({"query": query} if query is not None else {})
    body.update({"file": file} if file is not None else {})
    body.update({"rows": rows} if rows is not _NOT_GIVEN else {})
    caller = sys._getframe(1)
    compiled = kind_bodies.sql_body(body, None, caller.f_code.co_filename, lambda v: v,
                                    _fail(task_id, builder.dag_id))
    return builder.add_body(task_id, compiled, options, caller.f_lineno)


def http_task(task_id: str, *, url: str | None = None, conn: str | None = None,
              path: str = "", method: str = "GET", headers: Mapping[str, Any] | None = None,
              json: Any = _NOT_GIVEN, params: Any = _NOT_GIVEN,
              expect: Sequence[int] = (), **options: Any) -> python.Output:
    """One request: to ``url``, or to connection ``conn``'s URL plus ``path``. ``json``:
    the body; ``params``: the query; ``headers``: literals or ``secret(...)``. A status
    outside ``expect`` (default: any 2xx) fails the task; retries cover 5xx answers and
    timeouts. The result: the JSON body, or the text."""
    builder = _builder("http_task")
    body: dict[str, Any] = {"method": method, "path": path, "headers": dict(headers or {}),
                            "expect": list(expect)}
    body.update({"url": url} if url is not None else {})
    body.update({"conn": conn} if conn is not None else {})
    for key, value in ((task_kinds.HTTP_BODY, json), (task_kinds.HTTP_QUERY, params)):
        if value is not _NOT_GIVEN:
            body[key] = value
    compiled = kind_bodies.http_body(body, lambda v: v, lambda v: v,
                                     _fail(task_id, builder.dag_id))
    return builder.add_body(task_id, compiled, options, sys._getframe(1).f_lineno)
