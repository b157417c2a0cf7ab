"""The pools page in a real browser: a full pool, its holder and its waiter, as an operator
sees them (and the screenshot the README shows)."""

from __future__ import annotations

import pytest

from orchestrator.client import Client
from tests.browser.conftest import Browsing, Runs, wait_task

pytestmark = pytest.mark.browser


def test_a_full_pool_shows_its_holder_and_waiter(web: Browsing, runs: Runs,
                                                 session_client: Client) -> None:
    session_client.set_pool("tdag_loss_pool", 1, "one at a time: the loss tests' pool")
    holder, waiter = runs.submit("pool_loss"), runs.submit("pool_loss")
    wait_task(session_client, holder, "holder", "running")
    wait_task(session_client, waiter, "holder", "waiting")
    page = web.open("viewer")
    page.goto("/pools")
    row = page.locator("tr[data-pool=tdag_loss_pool]")
    assert row.get_attribute("data-used") == "1"
    assert row.get_attribute("data-waiting") == "1"
    assert "full" in (row.get_attribute("class") or "")
    assert row.locator("meter").get_attribute("aria-label") == "1 of 1 slots in use"
    assert page.locator("tr[data-pool=default] td").first.inner_text() == "unbounded"
    web.shot(page)
