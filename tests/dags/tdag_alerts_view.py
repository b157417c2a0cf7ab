"""A DAG whose failure alerts two ways, for the alerts' API, CLI and run view: a signed
webhook on run_failed and a Slack-style one on task_failed, their addresses read from
the coordinator's environment (the tests' receivers)."""

from __future__ import annotations

from orchestrator import dag, task

VIEW_HOOK = {"url": {"env": "TEST_VIEW_HOOK_URL"}, "secret": {"env": "TEST_VIEW_HOOK_SECRET"}}


@task
def load_orders() -> int:
    raise RuntimeError("the orders warehouse refused the connection")


@task
def publish(count: int) -> str:
    return f"published {count} orders"


@dag(notify=[{"on": ["run_failed"], "webhook": VIEW_HOOK},
             {"on": ["task_failed"], "slack": {"url": {"env": "TEST_VIEW_SLACK_URL"}}}])
def alerts_view() -> None:
    publish(load_orders())
