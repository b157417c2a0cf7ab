r"""The classic nightly ETL with the sql and http task kinds: extract the day's orders from
an HTTP API, transform them in Python, load them into the ``warehouse`` database.

    extract (http) -> transform (python) -> load (sql) -> summary (sql)
    create_table (sql) -------------------/

Neither the API's address nor the warehouse's are in this file, the state database or a
message: tasks name the connections ``orders_api`` and ``warehouse``, and the worker reads
them where it runs (``ORCH_CONN_ORDERS_API``, ``ORCH_CONN_WAREHOUSE`` or the connections
file). ``python dags/etl_demo.py`` (``make etl``) runs it end to end: it starts a local
fixture API, points ``orders_api`` at it and ``warehouse`` at a SQLite file.

``load`` is an upsert keyed on the order id, so a retry or a message delivered twice
leaves the same rows.
"""

from __future__ import annotations

from typing import Any

from orchestrator import dag, http_task, sql_task, task

CREATE = """
CREATE TABLE IF NOT EXISTS orders (
    id          VARCHAR(64) PRIMARY KEY,
    day         VARCHAR(10) NOT NULL,
    customer    VARCHAR(200) NOT NULL,
    total_cents INTEGER NOT NULL
)"""

UPSERT = """
INSERT INTO orders (id, day, customer, total_cents)
VALUES (:id, :day, :customer, :total_cents)
ON CONFLICT (id) DO UPDATE SET day = excluded.day, customer = excluded.customer,
                               total_cents = excluded.total_cents"""

SUMMARY = """
SELECT day, COUNT(*) AS orders, SUM(total_cents) AS total_cents
FROM orders WHERE day = :day GROUP BY day"""


@task
def transform(payload: dict[str, Any], day: str) -> list[dict[str, Any]]:
    """The API's orders as warehouse rows: amounts in cents, cancelled ones left out."""
    return [{"id": str(o["id"]), "day": day, "customer": o["customer"].strip(),
             "total_cents": round(float(o["amount"]) * 100)}
            for o in payload["orders"] if o.get("status") != "cancelled"]


@dag(id="orders_etl")
def orders_etl(day: str = "2026-12-01") -> None:
    """Extract a day's orders over HTTP, transform them, load them into the warehouse."""
    orders = http_task("extract", conn="orders_api", path="/orders", params={"day": day},
                       expect=[200], retries=3, retry_backoff=0.5, timeout=30)
    table = sql_task("create_table", conn="warehouse", query=CREATE)
    load = sql_task("load", conn="warehouse", query=UPSERT, rows=transform(orders, day),
                    retries=2, timeout=60)
    table >> load
    summary = sql_task("summary", conn="warehouse", query=SUMMARY, params={"day": day})
    load >> summary
