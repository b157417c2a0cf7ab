r"""A scheduled pipeline and an asset pair: ``nightly_orders`` runs every night at 02:30 in
Zurich and its ``load`` task updates the asset ``warehouse/orders``; ``orders_report``
is scheduled on that asset, so each successful load starts one report run, created in the
transaction that records the load's success.

    extract -> load (outlets: warehouse/orders)   ==>   orders_report: summarize

Backfill last month with ``orchestrator backfill nightly_orders --start 2026-11-01
--end 2026-12-01 --max-active 4``.
"""

from __future__ import annotations

from orchestrator import context, dag, task


@task
def extract() -> dict[str, str | int]:
    ctx = context()
    start, end = ctx.interval_start, ctx.interval_end
    return {"from": start.isoformat() if start else "", "to": end.isoformat() if end else "",
            "orders": 42}


@task(outlets=["warehouse/orders"], retries=2)
def load(batch: dict[str, str | int]) -> int:
    return int(batch["orders"])


@dag(id="nightly_orders", schedule="30 2 * * *", timezone="Europe/Zurich", catchup="latest",
     max_active_runs=1)
def nightly_orders() -> None:
    """Extract the day's orders (its data interval) and load them."""
    load(extract())


@task
def summarize() -> str:
    assets = (context().payload or {}).get("assets", [])
    return f"report over {len(assets)} update(s) of warehouse/orders"


@dag(id="orders_report", schedule={"assets": ["warehouse/orders"], "when": "any"})
def orders_report() -> None:
    """One report per load of the orders."""
    summarize()
