"""Who may act on a run (an operator cancels, a viewer cannot, in the page or the API),
and the pages on a phone."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from orchestrator.api.auth import csrf_token
from orchestrator.client import Client
from tests.browser.conftest import PHONE, Browsing, Runs, Server, wait_task
from tests.support import Ledger

pytestmark = pytest.mark.browser


def accept_dialogs(page: Page) -> None:
    # Playwright dismisses dialogs by default; a confirm() before cancelling must pass.
    page.on("dialog", lambda dialog: dialog.accept())


def test_operator_cancels_running_run(web: Browsing, runs: Runs,
                                      session_client: Client) -> None:
    run_id = runs.submit("browser_slow")
    wait_task(session_client, run_id, "hold", "running")
    page = web.open("operator")
    page.goto(f"/runs/{run_id}")
    header = page.locator("#run")
    expect(header).to_have_attribute("data-state", "running")
    accept_dialogs(page)
    page.locator("button#cancel").click()
    expect(header).to_have_attribute("data-state", "cancelled")
    expect(page.locator('svg.graph g.node[data-task-id="hold"]')) \
        .to_have_attribute("data-state", "cancelled")
    assert session_client.store.run_state(run_id) == "cancelled"
    web.shot(page)


def test_viewer_has_no_cancel_button_and_api_refuses(web: Browsing, runs: Runs,
                                                     session_client: Client,
                                                     server: Server) -> None:
    run_id = runs.submit("browser_slow")
    wait_task(session_client, run_id, "hold", "running")
    page = web.open("viewer")
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run")).to_have_attribute("data-state", "running")
    expect(page.locator('section.task[data-task-id="hold"]')).to_be_visible()
    expect(page.locator("button#cancel")).to_have_count(0)
    expect(page.locator("button#rerun")).to_have_count(0)
    web.shot(page)

    api = httpx.post(f"{server.url}/api/v1/runs/{run_id}/cancel",
                     headers={"Authorization": f"Bearer {server.viewer_token}"}, timeout=10)
    assert api.status_code == 403, api.text
    assert api.headers["content-type"].startswith("application/problem+json")
    # The page's own form route refuses too: the viewer's session cookie with the right
    # CSRF value, so only the role is wrong.
    form = page.request.post(f"/runs/{run_id}/cancel", max_redirects=0,
                             form={"csrf": csrf_token(server.viewer_token)})
    assert form.status == 403, form.text()
    assert session_client.store.run_state(run_id) == "running"
    assert session_client.get_run(run_id).tasks["hold"].state == "running"


def overflow(page: Page) -> tuple[int, int]:
    width, inner = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")
    return int(width), int(inner)


def test_pages_fit_a_phone(web: Browsing, runs: Runs, session_client: Client,
                           ledger: Ledger) -> None:
    """At 390 px the body never scrolls sideways: wide content (the graph, the grid, a
    traceback, log lines) scrolls in its own container."""
    ok = runs.submit("browser_ok")  # the widest graph and grid of the test DAGs
    ledger.open_gate(ok, "go")
    failed = runs.submit("browser_fail")
    for run_id in (ok, failed):
        session_client.wait(run_id, timeout=60)
    page = web.open("operator", viewport=PHONE, is_mobile=True, has_touch=True)
    paths = ["/login", "/", "/dags/browser_ok", "/dags/browser_params",
             "/dags/browser_ok/grid", f"/runs/{ok}", f"/runs/{failed}",
             f"/runs/{failed}/tasks/explode/log"]
    wide = {}
    for path in paths:
        page.goto(path)
        expect(page.locator("body")).to_be_visible()
        width, inner = overflow(page)
        # A page without a viewport meta tag lays out at 980 px and would pass below.
        assert inner == PHONE["width"], f"{path}: laid out {inner} px wide on a phone"
        if width > inner:
            wide[path] = width
        if path == f"/runs/{failed}":
            web.shot(page)
    assert not wide, f"pages wider than the phone ({PHONE['width']} px): {wide}"
