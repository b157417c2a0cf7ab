"""DAGs that alert: webhook, Slack-style and email rules read from the coordinator's
environment (the receivers' addresses are the test's), and callbacks that write to
the run's ledger."""

from __future__ import annotations

import os

from _support import record, wait_gate

from orchestrator import Alert, context, dag, task

HOOK = {"url": {"env": "TEST_HOOK_URL"}, "secret": {"env": "TEST_HOOK_SECRET"}}


def noted(alert: Alert) -> None:
    """A callback: what it was called for goes to the ledger, with its context."""
    path = os.path.join(os.environ["ORCH_TEST_LEDGER_DIR"], f"{alert.run_id}.callbacks")
    ctx = context()
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{alert.event} {alert.task_id} {alert.id} {ctx.run_id} {ctx.dag_id}\n")


def broken_callback(alert: Alert) -> None:
    raise RuntimeError(f"the callback for {alert.event} fails, on purpose")


@task(retries=1, retry_backoff=0.05, retry_jitter=False, on_failure=noted, on_retry=noted)
def always_fails() -> None:
    record()
    raise ValueError("the warehouse said no")


@task(on_success=noted)
def fine() -> str:
    return "ok"


@dag(notify=[
    {"on": ["run_failed", "task_failed", "task_retried"], "webhook": HOOK},
    {"on": ["run_failed"], "slack": {"url": {"env": "TEST_SLACK_URL"}}},
    {"on": ["run_failed"], "email": {"to": ["ops@example.com"]}},
], on_failure=noted)
def alerts_failing() -> None:
    fine() >> always_fails()


@dag(notify=[{"on": ["run_failed", "run_succeeded"], "webhook": HOOK}],
     on_success=noted, on_failure=broken_callback)
def alerts_ok() -> None:
    fine()


@task
def waits() -> None:
    wait_gate("go")


@dag(deadline=2, notify=[{"on": ["deadline_missed", "run_failed", "run_succeeded"],
                          "webhook": HOOK}])
def alerts_deadline() -> None:
    waits()


@task
def fails_fast() -> None:
    raise RuntimeError("fails before its deadline")


@dag(deadline=3600, notify=[{"on": ["deadline_missed"], "webhook": HOOK}])
def alerts_early_failure() -> None:
    fails_fast()
