"""The shop's nightly charge run.

``charge`` is the task that must happen once: it keys the charge on the run id and the
order, so a second run of its body (a retry, or a worker lost mid-task and the attempt
taken over) finds the charge made and makes none. Every run of the body is counted too,
so tests can show the difference.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from orchestrator import context, dag, task


class CardDeclined(Exception):
    """The payment provider refused the charge."""


def _ledger(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS charges (run_id TEXT, order_id TEXT, amount REAL,"
               " PRIMARY KEY (run_id, order_id))")
    db.execute("CREATE TABLE IF NOT EXISTS executions (run_id TEXT, task TEXT, attempt INT)")
    return db


def _write(ledger: str, statement: str, values: tuple[Any, ...]) -> None:
    db = _ledger(ledger)
    try:
        with db:  # one transaction, committed
            db.execute(statement, values)
    finally:
        db.close()


def count(ledger: str, table: str, run_id: str) -> int:
    """Rows of ``charges`` or ``executions`` for one run."""
    if table not in ("charges", "executions"):
        raise ValueError(table)
    db = _ledger(ledger)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?",
                              (run_id,)).fetchone()[0])
    finally:
        db.close()


@task(retries=2, retry_backoff=0.1, retry_jitter=False)
def fetch_rate() -> float:
    """The exchange rate, from a service that fails its first two calls of every run."""
    if context().attempt < 3:
        raise ConnectionError("rate service unavailable")
    return 1.1


@task(retries=1, retry_backoff=0.1, retry_jitter=False)
def charge(order: str, amount: float, rate: float, ledger: str, decline: bool,
           hold: str) -> dict[str, Any]:
    """Charge ``order`` once per run, however often this body runs. ``hold``: a file the
    body waits for once the charge is made (a test holds the task there, mid-task)."""
    ctx = context()
    total = round(amount * rate, 2)
    _write(ledger, "INSERT INTO executions VALUES (?, ?, ?)",
           (ctx.run_id, ctx.task_id, ctx.attempt))
    if decline:
        raise CardDeclined(f"card declined for {order}")
    # The side effect, idempotent: keyed on (run, order), made at most once per run.
    _write(ledger, "INSERT OR IGNORE INTO charges VALUES (?, ?, ?)", (ctx.run_id, order, total))
    if hold:
        deadline = time.monotonic() + 120
        while not Path(hold).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{hold} never appeared")
            time.sleep(0.05)
    return {"order": order, "charged": total}


@task
def send_receipt(charged: dict[str, Any]) -> str:
    return f"receipt for {charged['order']}: {charged['charged']}"


@task(trigger_rule="one_failed")
def alert_finance(order: str) -> str:
    return f"finance alerted about {order}"


@task(trigger_rule="all_done")
def close_books(ledger: str) -> int:
    """Runs whatever happened: the number of charges this run made."""
    return count(ledger, "charges", context().run_id)


@dag(id="nightly_charges")
def nightly_charges(order: str = "order-1", amount: float = 10.0, ledger: str = "ledger.db",
                    decline: bool = False, hold: str = "") -> None:
    charged = charge(order, amount, fetch_rate(), ledger, decline, hold)
    receipt = send_receipt(charged)
    alert = alert_finance(order)
    charged >> alert
    [receipt, alert] >> close_books(ledger)
