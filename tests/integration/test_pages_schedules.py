"""The run view's pools page, and what a DAG's pages say of its schedule, pause state and a
run's logical time (in process against the conftest stack's database)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from orchestrator.client import Client
from tests.integration.pages_support import Web, page

pytestmark = pytest.mark.integration


def test_the_pools_page_shows_slots_usage_and_waiters(web: Web, client: Client) -> None:
    name = f"page_pool_{uuid.uuid4().hex[:8]}"
    client.set_pool(name, 4, "the warehouse")
    shown = page(web.as_role("viewer"), "/pools")
    row = shown.find("tr", data_pool=name)
    assert row.attrs["data-used"] == "0" and row.attrs["data-waiting"] == "0"
    assert "4" in row.text and "the warehouse" in row.text
    default = shown.find("tr", data_pool="default")
    assert "unbounded" in default.text
    assert shown.find("a", href="/pools").attrs.get("aria-current") == "page"
    client.store.delete_pool(name)


def test_a_paused_scheduled_dag_says_so_on_its_pages(web: Web, client: Client) -> None:
    client.store.register_dags([client.dag("tev_consumer")])
    client.store.set_paused("tev_consumer", True)
    try:
        op = web.as_role("operator")
        for path in ("/", "/dags/tev_consumer", "/dags/tev_consumer/grid"):
            shown = page(op, path)
            where = shown.find(data_dag_id="tev_consumer") if path == "/" else shown
            assert where.find(cls="paused-badge").text.strip() == "paused", path
            assert "tev-ping" in where.find(cls="schedule").text, path
    finally:
        client.store.set_paused("tev_consumer", False)
    assert page(web.as_role("operator"), "/dags/tev_consumer").find_all(
        cls="paused-badge") == []


def test_a_run_page_shows_its_trigger_and_logical_time(web: Web, client: Client) -> None:
    # a logical time is unique per DAG: one of this test's own, in the past
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3, microseconds=uuid.uuid4().int % 10**9)
          ).replace(microsecond=0)
    run_id = client._wiring.commands.submit(client.dag("api_quick"), {"n": 1},
                                            logical_time=at).run_id
    client.wait(run_id, timeout=60)
    shown = page(web.as_role("viewer"), f"/runs/{run_id}")
    assert shown.find(cls="run-trigger").text.strip() == "manual"
    assert at.strftime("%Y-%m-%d") in shown.find(cls="logical-time").text
    assert shown.find(cls="data-interval").text.count(at.strftime("%Y-%m-%d")) == 2


def test_a_dag_page_lists_its_backfills_and_a_run_links_its_own(web: Web,
                                                               client: Client) -> None:
    done = client.backfill("bf_yearly", dt.datetime(1701, 1, 1), dt.datetime(1704, 1, 1),
                           max_active=3)
    assert done.backfill_id is not None
    row = page(web.as_role("viewer"), "/dags/bf_yearly").find(
        "tr", data_backfill_id=done.backfill_id)
    assert "/3" in row.text and row.attrs["data-state"] in ("running", "success")
    run = next(r for r in client.runs(dag_id="bf_yearly", limit=500)
               if r.logical_time == dt.datetime(1701, 1, 1, tzinfo=dt.UTC))
    client.wait(run.id, timeout=60)
    shown = page(web.as_role("viewer"), f"/runs/{run.id}")
    assert shown.find(cls="run-trigger").text.startswith("backfill")
    assert shown.find("a", "backfill-link").attrs["href"] == "/dags/bf_yearly#backfills"
