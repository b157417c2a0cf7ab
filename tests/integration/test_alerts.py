"""Alerts end to end: real workers and a real coordinator deliver to real receivers on
127.0.0.1 (an HTTP server and aiosmtpd), on SQLite and PostgreSQL.

The stack has a database of its own: a coordinator delivers every notification in its
database, and the tests' other coordinators do not have these receivers' addresses."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.store import Store
from tests.receivers import Receiver, smtp_server
from tests.support import environ, fresh_database, make_settings, wait_until

pytestmark = pytest.mark.integration

SECRET = "hook-signing-secret-for-tests"


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receiver, Receiver, object]]:
    with Receiver() as hook, Receiver() as slack, smtp_server() as (smtp_url, box), \
            environ(TEST_HOOK_URL=hook.url, TEST_HOOK_SECRET=SECRET, TEST_SLACK_URL=slack.url):
        yield hook, slack, (smtp_url, box)


@pytest.fixture(scope="module")
def alert_stack(broker_url: str, database_url: str, receivers: tuple[Receiver, Receiver, object],
                ledger: object, tmp_path_factory: pytest.TempPathFactory,
                ) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("alerts")
    smtp_url, _ = receivers[2]  # type: ignore[misc]
    with fresh_database(database_url, folder) as url:
        settings = make_settings(broker_url, url, smtp_url=smtp_url, alert_backoff=0.2,
                                 alert_timeout=2.0, public_url="http://run-view.test")
        with LocalStack(settings, workers=1, concurrency=2, coordinator=True,
                        log_dir=str(folder)) as s:
            yield s


@pytest.fixture
def alert_client(alert_stack: LocalStack) -> Iterator[Client]:
    with Client(alert_stack.settings) as c:
        yield c


def _store(stack: LocalStack) -> Store:
    return Store(stack.settings.database.url)


def _delivered(stack: LocalStack, run_id: str, n: int) -> list[object]:
    store = _store(stack)
    try:
        def done() -> list[object] | None:
            rows = store.notifications(run_id)
            finished = [r for r in rows if r.state in ("delivered", "failed")]
            return rows if len(rows) >= n and len(finished) == len(rows) else None

        return wait_until(done, 60, "the run's notifications all delivered")  # type: ignore[no-any-return]
    finally:
        store.dispose()


def test_a_failing_run_alerts_each_channel_once_signed_and_linked(
        alert_client: Client, alert_stack: LocalStack,
        receivers: tuple[Receiver, Receiver, object]) -> None:
    hook, slack, (_, box) = receivers  # type: ignore[misc]
    run = alert_client.submit("alerts_failing")
    assert alert_client.wait(run, timeout=60).state == RunState.FAILED
    # webhook: task_retried, task_failed, run_failed; slack and email: run_failed;
    # callbacks: on_retry, the task's on_failure, the DAG's on_failure, fine's on_success
    rows = _delivered(alert_stack, run, 9)
    assert sorted((r.channel, r.event) for r in rows) == sorted([  # type: ignore[attr-defined]
        ("webhook", "task_retried"), ("webhook", "task_failed"), ("webhook", "run_failed"),
        ("slack", "run_failed"), ("email", "run_failed"), ("callback", "task_retried"),
        ("callback", "task_failed"), ("callback", "run_failed"),
        ("callback", "task_succeeded")])
    assert all(r.state == "delivered" for r in rows), rows  # type: ignore[attr-defined]

    got = hook.of_run(run)
    assert sorted(g.json["event"] for g in got) == ["run_failed", "task_failed",
                                                    "task_retried"]
    ids = {g.headers["X-Orchestrator-Event-Id"] for g in got}
    assert len(ids) == 3
    for g in got:
        want = hmac.new(SECRET.encode(), g.body, hashlib.sha256).hexdigest()
        assert g.headers["X-Orchestrator-Signature"] == f"sha256={want}"
        assert g.json["id"] == g.headers["X-Orchestrator-Event-Id"]
        assert g.json["url"] == f"http://run-view.test/runs/{run}"
    failed = next(g.json for g in got if g.json["event"] == "run_failed")
    assert failed["task_id"] == "always_fails"
    assert "the warehouse said no" in failed["error"]

    (message,) = [g.json["text"] for g in slack.of_run(run)]
    assert "alerts_failing" in message and "always_fails" in message
    assert "the warehouse said no" in message and f"http://run-view.test/runs/{run}" in message

    (mail,) = box.of_run(run)
    assert mail["To"] == "ops@example.com"
    assert "alerts_failing" in mail["Subject"] and "failed" in mail["Subject"]
    text = mail.get_content()
    assert "always_fails" in text and "the warehouse said no" in text
    assert f"http://run-view.test/runs/{run}" in text


def test_callbacks_run_in_a_worker_with_the_runs_context(
        alert_client: Client, alert_stack: LocalStack) -> None:
    run = alert_client.submit("alerts_failing")
    alert_client.wait(run, timeout=60)
    _delivered(alert_stack, run, 9)
    ledger = Path(os.environ["ORCH_TEST_LEDGER_DIR"]) / f"{run}.callbacks"
    lines = sorted(line.split()[:2] + line.split()[3:] for line in
                   ledger.read_text().splitlines())
    assert lines == [["run_failed", "always_fails", run, "alerts_failing"],
                     ["task_failed", "always_fails", run, "alerts_failing"],
                     ["task_retried", "always_fails", run, "alerts_failing"],
                     ["task_succeeded", "fine", run, "alerts_failing"]]


def test_a_callback_that_raises_is_recorded_and_the_run_still_succeeds(
        alert_client: Client, alert_stack: LocalStack,
        receivers: tuple[Receiver, Receiver, object]) -> None:
    run = alert_client.submit("alerts_ok")
    assert alert_client.wait(run, timeout=60).state == RunState.SUCCESS
    rows = _delivered(alert_stack, run, 3)  # webhook run_succeeded, 2 on_success
    by = {(r.channel, r.event): r for r in rows}  # type: ignore[attr-defined]
    assert by[("callback", "run_succeeded")].state == "delivered"
    assert by[("callback", "task_succeeded")].state == "delivered"
    assert by[("webhook", "run_succeeded")].state == "delivered"
    assert ("callback", "run_failed") not in by
    assert [g.json["event"] for g in receivers[0].of_run(run)] == ["run_succeeded"]
    assert alert_client.get_run(run).state == RunState.SUCCESS


def test_a_missed_deadline_alerts_once_and_an_early_failure_never(
        alert_client: Client, alert_stack: LocalStack, ledger: object,
        receivers: tuple[Receiver, Receiver, object]) -> None:
    hook = receivers[0]
    late = alert_client.submit("alerts_deadline")
    early = alert_client.submit("alerts_early_failure")
    assert alert_client.wait(early, timeout=60).state == RunState.FAILED
    wait_until(lambda: hook.of_run(late), 30, "the deadline alert")
    ledger.open_gate(late, "go")  # type: ignore[attr-defined]
    assert alert_client.wait(late, timeout=60).state == RunState.SUCCESS
    _delivered(alert_stack, late, 2)
    assert sorted(g.json["event"] for g in hook.of_run(late)) == ["deadline_missed",
                                                                  "run_succeeded"]
    store = _store(alert_stack)
    try:
        assert store.notifications(early) == []
    finally:
        store.dispose()
