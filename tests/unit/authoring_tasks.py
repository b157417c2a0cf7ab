"""Task functions the authoring and Dag.test unit tests share."""

from __future__ import annotations

from typing import Any

from orchestrator import context, task

CALLS: list[str] = []


@task
def add(x: int, y: int = 0) -> int:
    CALLS.append("add")
    return x + y


@task
def double(x: int) -> int:
    CALLS.append("double")
    return x * 2


@task(retries=3, retry_backoff=2.0, timeout=10, queue="q1")
def configured(x: Any = None) -> Any:
    return x


@task(task_id="renamed_by_decorator")
def nameless() -> str:
    return "n"


@task
def mark(label: str) -> str:
    CALLS.append(label)
    return label


@task
def gather(*parts: Any, **named: Any) -> dict[str, Any]:
    return {"parts": list(parts), "named": named}


@task
def whoami() -> list[Any]:
    ctx = context()
    return [ctx.dag_id, ctx.task_id, ctx.attempt, ctx.run_id.startswith("local-"), ctx.params]


@task
def explode() -> None:
    raise RuntimeError("task failed on purpose")
