"""A DAG with a retry, a branch, a map and a failure: every kind of transition."""

from __future__ import annotations

from _support import record

from orchestrator import context, dag, task


@task(retries=1, retry_backoff=0.05, retry_jitter=False)
def flaky_once() -> str:
    record()
    if context().attempt == 1:
        raise RuntimeError("the first attempt fails")
    return "taken"


@task(branch=True)
def pick(which: str) -> str:
    return which


@task
def leaf(*_: object) -> str:
    return "ok"


@task
def numbers() -> list[int]:
    return [1, 2, 3]


@task
def triple(x: int) -> int:
    return 3 * x


@task
def crash() -> None:
    raise ValueError("no retries, on purpose")


@dag(id="hooked")
def hooked() -> None:
    p = pick(flaky_once())
    taken, not_taken = leaf.override(task_id="taken")(), leaf.override(task_id="not_taken")()
    p >> [taken, not_taken]
    leaf.override(task_id="below_not_taken")(not_taken)
    leaf.override(task_id="sum")(triple.map(numbers()))
    leaf.override(task_id="after_crash")(crash())
