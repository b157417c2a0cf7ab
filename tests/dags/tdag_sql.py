"""The sql kind's DAGs run by real workers (tests/integration/test_sql_worker.py), beside
tdag_sql.yaml: rows made by a python task loaded with params added, a count read back;
and failures: a statement the database refuses (not retried), statements past their
timeout (PostgreSQL's, and SQLite's, which only the task's own interrupt can stop: Celery's
soft time limit is a signal, handled once the C call returns), a task that prints and
returns its connection's URL (masked in both).

Their connections, ``sqltest_wh`` (the test's own PostgreSQL database) and
``sqltest_lite``, are given to the workers in a connections file: nothing here reads the
environment at import."""

from __future__ import annotations

from typing import Any

from orchestrator import context, dag, sql_task, task

CONN = "sqltest_wh"
LITE = "sqltest_lite"
"""A SQLite file of the test's: its statement blocks in C, where no signal reaches it."""
CREATE = ("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, "
          "label VARCHAR(200) NOT NULL, tag VARCHAR(50) NOT NULL)")
SLEEPY_MARK = "sqltest_sleepy"


@task
def make_rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "label": f"item {i}"} for i in range(1, n + 1)]


@task
def pick_id() -> int:
    return 100


@dag(id="sql_python")
def sql_python(n: int = 3, tag: str = "py") -> None:
    table = sql_task("create", conn=CONN, query=CREATE)
    load = sql_task("load", conn=CONN, rows=make_rows(n), params={"tag": tag}, retries=1,
                    query="INSERT INTO items (id, label, tag) VALUES (:id, :label, :tag)")
    table >> load
    total = sql_task("total", conn=CONN, params={"tag": tag},
                     query="SELECT COUNT(*) AS n, MIN(label) AS first, MAX(id) AS last "
                           "FROM items WHERE tag = :tag")
    load >> total


@task
def show_connection() -> str:
    url = context().connection(CONN).url
    print(f"connecting to {url}")
    return url


@dag(id="sql_failures")
def sql_failures() -> None:
    show_connection()
    sql_task("refused", conn=CONN, query="SELECT * FROM no_such_table", retries=2)
    sql_task("sleepy", conn=CONN, query=f"SELECT pg_sleep(30) /* {SLEEPY_MARK} */",
             timeout=1)
    sql_task("counting", conn=LITE, timeout=1,
             query="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                   "WHERE x < 10000000000) SELECT count(*) AS n FROM c")
