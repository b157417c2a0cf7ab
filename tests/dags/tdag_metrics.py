"""DAGs of the metrics tests: DAG ids of their own, so their counts are theirs alone."""

from __future__ import annotations

from orchestrator import dag, task


@task
def step(*xs: int) -> int:
    return sum(xs) + 1


@task(retries=1, retry_backoff=0.05)
def always_fails(x: int) -> int:
    raise ValueError(f"fails on purpose after {x}")


@task
def items(n: int) -> list[int]:
    return list(range(n))


@task
def sq(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task(queue="metrics-nobody-listens")
def stuck() -> None:
    """Its queue has no worker: it stays queued (the oldest-queued gauge's subject)."""


@dag(id="metrics_ok")
def metrics_ok() -> None:
    """root -> left, right -> join: three tasks released by their parents."""
    root = step.override(task_id="root")()
    left = step.override(task_id="left")(root)
    right = step.override(task_id="right")(root)
    step.override(task_id="join")(left, right)


@dag(id="metrics_fail")
def metrics_fail() -> None:
    """root -> always_fails (two attempts) -> after (upstream_failed, never attempted)."""
    step.override(task_id="after")(always_fails(step.override(task_id="root")()))


@dag(id="metrics_map")
def metrics_map(n: int = 3) -> None:
    """items -> sq[0..n-1] (laid out by the mapped task sq) -> total."""
    total(sq.map(items(n)))


@dag(id="metrics_stuck")
def metrics_stuck() -> None:
    stuck()
