"""An attempt waiting out its retry backoff does not start before it is due, even for a
correctly signed message that names it (the test holds the key): the worker defers
that message to the due time the database holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState, TaskState
from orchestrator.transport import dispatch
from tests.support import Ledger, wait_until

pytestmark = [pytest.mark.security, pytest.mark.integration]


def test_a_message_for_the_next_attempt_does_not_skip_the_backoff(
        own_stack: LocalStack, ledger: Ledger) -> None:
    own_stack.add_worker("backoff", concurrency=2)
    settings = own_stack.settings
    app = dispatch.make_producer_app(settings, settings.broker.url or "")
    with Client(settings) as client:
        dag = client.dag("slowretry")  # fails_first: one retry, 3 s later, no jitter
        run_id = client.submit("slowretry")

        def waiting() -> bool:
            t = client.get_run(run_id).tasks["fails_first"]
            return t.state == TaskState.UP_FOR_RETRY and t.attempt == 2

        wait_until(waiting, timeout=60, what="the first attempt to fail")
        due = client.get_run(run_id).tasks["fails_first"].queued_at
        assert due is not None
        dispatch.Dispatcher(app, settings).send(dag, run_id, [("fails_first", 2)])
        sent = dt.datetime.now(dt.UTC)
        assert sent < due, "the test must send its message inside the backoff"
        run = client.wait(run_id, timeout=60)
    app.close()
    assert run.state == RunState.SUCCESS
    task = run.tasks["fails_first"]
    assert task.queued_at == due  # the due time the second attempt was scheduled for
    (second,) = [a for a in task.attempts if a.attempt == 2]
    assert second.started_at >= due
    assert [e["attempt"] for e in ledger.of(run_id, "fails_first")] == [1, 2]
    log = (Path(own_stack.log_dir or "") / "backoff.log").read_text(errors="replace")
    assert f"fails_first run {run_id} attempt 2: not due until" in log  # ours came early
