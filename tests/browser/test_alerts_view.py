"""The run page's Alerts section in Chromium, for a real failing run: a worker runs
tdag_alerts_view's alerts_view and fails, a real coordinator delivers its two alerts to
real receivers on 127.0.0.1 (the webhook answers 200; the Slack-style one answers 500
until the alert is given up), and the page, opened while they are still on their way,
shows each one's state and every try as they happen, without a reload.

The stack has a database of its own: its coordinator delivers every notification in it,
and the shared stack's runs have none of these receivers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from orchestrator.client import Client
from orchestrator.devstack.processes import spawn, terminate
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.browser.conftest import FLOWER, Browsing, Server, _healthy
from tests.receivers import Receiver
from tests.support import environ, free_port, fresh_database, make_settings, wait_until

pytestmark = pytest.mark.browser

SECRET = "alerts-view-webhook-secret"
MAX_TRIES = 3


@pytest.fixture(scope="module")
def alerting(broker_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[Client, Server, Receiver, Receiver]]:
    folder = tmp_path_factory.mktemp("alerts-view")
    # read by the coordinator when it delivers (it inherits this environment)
    with Receiver() as hook, Receiver([500] * 50) as slack, \
            fresh_database(database_url, folder) as url, \
            environ(TEST_VIEW_HOOK_URL=hook.url, TEST_VIEW_HOOK_SECRET=SECRET,
                    TEST_VIEW_SLACK_URL=slack.url):
        settings = make_settings(broker_url, url, alert_backoff=0.3,
                                 alert_max_tries=MAX_TRIES, alert_timeout=2.0)
        with LocalStack(settings, workers=1, concurrency=1, coordinator=True,
                        log_dir=str(folder)) as stack, Client(stack.settings) as client:
            port = free_port()
            log = folder / "server.log"
            proc = spawn(["orchestrator", "server", "--host", "127.0.0.1",
                          "--port", str(port)],
                         stack.settings.with_env(ORCH_FLOWER_URL=FLOWER),
                         log_path=str(log))
            base = f"http://127.0.0.1:{port}"
            try:
                wait_until(lambda: _healthy(base, proc, log), 60, "the server's /healthz")
                _, operator = client.store.create_token("alerts-view-operator", "operator")
                _, viewer = client.store.create_token("alerts-view-viewer", "viewer")
                yield client, Server(base, operator, viewer), hook, slack
            finally:
                terminate(proc)


def test_a_failed_runs_alerts_show_each_try_as_it_happens(
        browser: Browser, screenshot_dir: Path,
        alerting: tuple[Client, Server, Receiver, Receiver]) -> None:
    client, server, hook, slack = alerting
    web = Browsing(browser, server, screenshot_dir, "alerts")
    try:
        run_id = client.submit("alerts_view")
        page = web.open("viewer")
        page.goto(f"/runs/{run_id}")
        section = page.locator("section#alerts")
        expect(section.locator("h2")).to_contain_text("Alerts")
        assert client.wait(run_id, timeout=60).state == RunState.FAILED

        # the page fetches the section again by itself until nothing is on its way
        webhook = section.locator('li.alert-item[data-channel="webhook"]')
        chat = section.locator('li.alert-item[data-channel="slack"]')
        expect(webhook).to_have_attribute("data-state", "delivered")
        expect(chat).to_have_attribute("data-state", "failed")
        expect(section).to_have_attribute("data-settled", "true")

        expect(webhook.locator(".alert-event")).to_have_text("run failed")
        expect(webhook.locator(".alert-task code")).to_have_text("load_orders")
        expect(webhook.locator(".alert-head .badge")).to_have_text("delivered")
        expect(webhook.locator("tr.delivery")).to_have_count(1)
        expect(webhook.locator("tr.delivery td.status")).to_have_text("200")
        expect(webhook.locator("details.alert-deliveries")).not_to_have_attribute("open", "")

        expect(chat.locator(".alert-event")).to_have_text("task failed")
        expect(chat.locator(".alert-times")).to_contain_text(f"{MAX_TRIES} tries")
        expect(chat.locator(".alert-last-error")).to_contain_text("the receiver answered 500")
        tries = chat.locator("tr.delivery")
        expect(tries).to_have_count(MAX_TRIES)  # open: a failed alert shows why at once
        for i in range(MAX_TRIES):
            row = tries.nth(i)
            expect(row).to_be_visible()
            expect(row).to_have_attribute("data-outcome", "failed")
            expect(row.locator("td.status")).to_have_text("500")
        for item in (webhook, chat):
            expect(item.locator(".alert-says")).to_contain_text(
                "RuntimeError: the orders warehouse refused the connection")
        # what the receivers got is what the page says
        assert len(hook.of_run(run_id)) == 1 and len(slack.of_run(run_id)) == MAX_TRIES
        ids = {n.channel: n.id for n in client.notifications(run_id)}
        assert hook.of_run(run_id)[0].headers["X-Orchestrator-Event-Id"] == ids["webhook"]
        expect(webhook.locator(".alert-id code")).to_have_text(ids["webhook"])
        content = page.content()
        assert hook.url not in content and slack.url not in content and SECRET not in content

        section.scroll_into_view_if_needed()
        web.shot(page)
        # the task named links to its section on the same page
        webhook.locator(".alert-task a").click()
        expect(page).to_have_url(f"{server.url}/runs/{run_id}#task-load_orders")
    finally:
        web.close()
