"""The run view as a user sees it: triggering from the DAG page, live states, a failed
task's traceback and log lines, inline param errors, the runs grid, a followed log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from orchestrator.client import Client
from tests.browser.conftest import FLOWER, Browsing, Runs, wait_task
from tests.support import Ledger

pytestmark = pytest.mark.browser

RUN_URL = re.compile(r"/runs/([0-9a-f]{32})$")
OK_TASKS = ["start", "left", "right", "join", "numbers", "square", "total"]
MARK = "window.__orchNoReload"
"""Set on a page before it should update itself: gone if the page navigated."""


def set_mark(page: Page) -> None:
    page.evaluate(f"{MARK} = true")


def still_same_page(page: Page) -> bool:
    return bool(page.evaluate(f"{MARK} === true"))


def run_id_of(page: Page) -> str:
    match = RUN_URL.search(page.url)
    assert match, f"not on a run page: {page.url}"
    return match.group(1)


def test_run_submitted_from_dag_page_turns_green_live(web: Browsing, runs: Runs,
                                                      session_client: Client,
                                                      ledger: Ledger) -> None:
    page = web.open("operator")
    page.goto("/dags/browser_ok")
    for task_id in OK_TASKS:
        expect(page.locator(f'svg.graph g.node[data-task-id="{task_id}"]')).to_have_count(1)
    form = page.locator("form#trigger")
    form.locator('[name="param.n"]').fill("4")
    form.locator("button[type=submit]").click()
    page.wait_for_url(RUN_URL)
    run_id = runs.track(run_id_of(page))
    run = session_client.get_run(run_id)
    assert (run.dag_id, run.params) == ("browser_ok", {"n": 4})  # typed from the form's text

    # The first task waits for the gate: the page shows the run going, then sees it end.
    header = page.locator("#run")
    expect(header).to_have_attribute("data-run-id", run_id)
    expect(header).to_have_attribute("data-state", "running")
    set_mark(page)
    ledger.open_gate(run_id, "go")
    expect(header).to_have_attribute("data-state", "success")
    for task_id in OK_TASKS:
        node = page.locator(f'svg.graph g.node[data-task-id="{task_id}"]')
        expect(node).to_have_attribute("data-state", "success")
    assert still_same_page(page), "the run page reloaded instead of updating live"
    web.shot(page)

    page.goto("/")
    newest = page.locator('[data-dag-id="browser_ok"] .run-dot').first
    expect(newest).to_have_attribute("data-state", "success")


def test_failing_task_shows_traceback_and_log_lines(web: Browsing, runs: Runs,
                                                    session_client: Client) -> None:
    run_id = runs.submit("browser_fail")
    session_client.wait(run_id, timeout=60)
    # From the DAG list, a new user reaches the traceback in one click and the log lines
    # in two: the newest dot of the DAG, then the attempt's log link.
    page = web.open("viewer")
    page.goto("/")
    expect(page.locator('#load-errors [data-dag-file*="tdag_broken.yaml"]')).to_have_count(1)
    page.locator('[data-dag-id="browser_fail"] .run-dot[data-state="failed"]').first.click()
    page.wait_for_url(RUN_URL)
    assert run_id_of(page) == run_id, "the newest dot is not the newest run"
    expect(page.locator("#run")).to_have_attribute("data-state", "failed")
    expect(page.locator('svg.graph g.node[data-task-id="explode"]')) \
        .to_have_attribute("data-state", "failed")
    attempt = page.locator('section.task[data-task-id="explode"] .attempt[data-attempt="1"]')
    expect(attempt.locator(".error")).to_contain_text("browser: the fuse blew")
    traceback = attempt.locator("pre.traceback")
    expect(traceback).to_be_visible()
    expect(traceback).to_contain_text("ValueError: browser: the fuse blew")
    expect(traceback).to_contain_text('raise ValueError("browser: the fuse blew")')
    celery_id = session_client.get_run(run_id).tasks["explode"].attempts[0].celery_id
    expect(attempt.locator("a.flower-task")).to_have_attribute("href", f"{FLOWER}/task/{celery_id}")
    expect(attempt.locator("a.flower-worker")).to_have_attribute(
        "href", re.compile(re.escape(f"{FLOWER}/worker/") + ".+"))
    web.shot(page)

    attempt.locator("a.log-link").click()
    log = page.locator("pre#log")
    expect(log).to_contain_text("browser: preparing the fuse")
    expect(log).to_contain_text("browser: fuse lit")  # a logging record, not only print
    expect(log).not_to_have_attribute("data-live", "true")  # the attempt is over
    web.shot(page, "-log")


def test_trigger_form_rejects_bad_param_inline(web: Browsing, runs: Runs,
                                               session_client: Client) -> None:
    def count() -> int:
        return len(session_client.runs(dag_id="browser_params", limit=1000))

    before = count()
    page = web.open("operator")
    page.goto("/dags/browser_params")
    form = page.locator("form#trigger")
    form.locator('[name="param.count"]').fill("many")
    form.locator('[name="param.mode"]').fill("slow")
    form.locator("button[type=submit]").click()
    error = page.locator('.field-error[data-param="count"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("integer", re.I))
    expect(page.locator('.field-error[data-param="mode"]:visible')).to_have_count(0)
    assert "/runs/" not in page.url
    assert count() == before, "a rejected trigger created a run"
    web.shot(page)

    # The same form with the value fixed does create the run (so the check above can fail).
    form.locator('[name="param.count"]').fill("5")
    form.locator('[name="param.mode"]').fill("slow")
    form.locator("button[type=submit]").click()
    page.wait_for_url(RUN_URL)
    run = session_client.get_run(runs.track(run_id_of(page)))
    assert run.params == {"count": 5, "mode": "slow"}
    assert count() == before + 1


def test_grid_shows_20_runs(web: Browsing, runs: Runs, session_client: Client) -> None:
    ids = [runs.submit("browser_grid") for _ in range(20)]
    for run_id in ids:
        session_client.wait(run_id, timeout=60)
    page = web.open("viewer")
    page.goto("/dags/browser_grid/grid")
    rows = page.locator("table#grid tr[data-run-id]")
    expect(rows).to_have_count(20)
    shown = [rows.nth(i).get_attribute("data-run-id") for i in range(20)]
    assert shown == ids[::-1], "the grid is not the 20 runs, newest first"
    newest = page.locator(f'table#grid tr[data-run-id="{ids[-1]}"]')
    expect(newest.locator('td[data-task-id="join"][data-state="success"]')).to_have_count(1)
    expect(newest.locator('td[data-task-id="square"] .counts')).to_have_text("3/3")
    expect(rows.locator('td[data-task-id][data-state="success"]')).to_have_count(20 * 7)
    colour = newest.locator('td[data-task-id="join"]').evaluate(
        "td => getComputedStyle(td).backgroundColor")
    assert colour not in ("", "transparent", "rgba(0, 0, 0, 0)"), "cells are not coloured"
    web.shot(page)


def test_log_view_follows_running_task(web: Browsing, runs: Runs, session_client: Client,
                                       ledger: Ledger) -> None:
    run_id = runs.submit("browser_follow")
    wait_task(session_client, run_id, "talk", "running")
    page = web.open("viewer")
    page.goto(f"/runs/{run_id}/tasks/talk/log")
    log = page.locator("pre#log")
    expect(log).to_have_attribute("data-live", "true")
    expect(log).to_contain_text("browser: first line")
    expect(log).not_to_contain_text("browser: second line")
    set_mark(page)
    ledger.open_gate(run_id, "more")
    expect(log).to_contain_text("browser: second line")
    web.shot(page)
    ledger.open_gate(run_id, "end")
    expect(log).not_to_have_attribute("data-live", "true")
    assert still_same_page(page), "the log view reloaded instead of following"
    assert log.inner_text().count("browser: first line") == 1, "a line was shown twice"
