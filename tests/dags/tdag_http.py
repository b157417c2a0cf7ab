"""DAGs of the http task tests (tests/integration/test_http_workers.py): requests on the
connection ``fixture_api``, which the test gives its workers in a connections file (the
server's port is known only then; nothing here reads the environment)."""

from __future__ import annotations

from typing import Any

from orchestrator import dag, http_task, task

CONNECTION = "fixture_api"


@task
def order_of(listing: dict[str, Any]) -> dict[str, Any]:
    return {"order": listing["orders"][0], "count": len(listing["orders"])}


@dag(id="http_calls")
def http_calls(key: str = "none") -> None:
    """A GET whose query comes from a run param, a POST of what a python task made of
    its JSON, a text answer, and an answer quoting the headers it was sent."""
    listing = http_task("fetch", conn=CONNECTION, path="/orders",
                        params={"key": key, "tag": ["a", "b"]})
    http_task("post", conn=CONNECTION, path="/echo", method="POST", json=order_of(listing),
              expect=[201])
    http_task("hello", conn=CONNECTION, path="/hello")
    http_task("headers", conn=CONNECTION, path="/headers")
